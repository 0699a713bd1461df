"""What meshkit.core's per-request functions cost, in microseconds per call,
on the heads a Bookinfo request carries through a sidecar pair: the client
sidecar's proxy-form request from productpage to reviews, the server
sidecar's origin-form request with the ids and peer line the client added,
and the reviews app's response.

    python benchmarks/core_micro.py                    # the code as it is
    python benchmarks/core_micro.py --before da8afc5   # and beside it, the same calls at a commit

With `--before`, the modules of meshkit.core at that commit are read with
`git show` and loaded beside the current ones, and every case runs both ways
in the same process, repeats interleaved, so a busy machine slows both
alike. Time is the thread's CPU time (time.thread_time), so waiting for a
core that other processes hold is not counted, and each figure is the best of
the repeats (timeit's advice: the others are the machine's noise, not the
code's cost). Where a function is new, the
"before" column is what a sidecar called at that commit for the same job.

The table goes to stdout and to benchmarks/results/core_micro.md, the
numbers to core_micro.json.
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import time
import timeit
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from meshkit.core import framing, paths, tracing  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
REPEATS = 25

# productpage -> client sidecar: httpx's own headers, then the ones Bookinfo
# forwards (meshkit.demo.headers): ids, trace context, user agent, cookie, end-user.
CLIENT_TARGET = b"http://reviews:9080/reviews/0"
CLIENT_HEADERS = [
    (b"Host", b"reviews:9080"),
    (b"Accept", b"*/*"),
    (b"Accept-Encoding", b"gzip, deflate"),
    (b"Connection", b"keep-alive"),
    (b"User-Agent", b"Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0"),
    (b"x-request-id", b"6f1b1c2e-8a4d-4c1e-9f0a-3b2c1d0e9f8a"),
    (b"traceparent", b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
    (b"cookie", b"session=eyJ1c2VyIjoiamFzb24ifQ; user=jason"),
    (b"end-user", b"jason"),
]
# client sidecar -> server sidecar: what build_request_head wrote for the request above.
SERVER_TARGET = b"/reviews/0"
SERVER_HEADERS = [
    (b"host", b"reviews:9080"),
    (b"Accept", b"*/*"),
    (b"Accept-Encoding", b"gzip, deflate"),
    (b"User-Agent", b"Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0"),
    (b"cookie", b"session=eyJ1c2VyIjoiamFzb24ifQ; user=jason"),
    (b"end-user", b"jason"),
    (b"x-request-id", b"6f1b1c2e-8a4d-4c1e-9f0a-3b2c1d0e9f8a"),
    (b"traceparent", b"00-4bf92f3577b34da6a3ce929d0e0e4736-a3ce929d0e0e4736-01"),
    (b"x-meshkit-peer", b"w=productpage-v1;n=default;s=productpage;v=v1"),
]
# reviews (uvicorn) -> server sidecar.
RESPONSE_HEADERS = [
    (b"date", b"Mon, 06 May 2024 10:00:00 GMT"),
    (b"server", b"uvicorn"),
    (b"content-length", b"295"),
    (b"content-type", b"application/json"),
]
INBOUND_PATHS = [b"/reviews/0", b"/api/v1/items/42?x=1"]


def load_at(rev: str, name: str) -> types.ModuleType:
    """Module `name` as it was at commit `rev`, loaded beside the current one."""
    path = name.replace(".", "/") + ".py"
    source = subprocess.run(["git", "show", f"{rev}:{path}"], cwd=ROOT, capture_output=True, check=True).stdout
    module = types.ModuleType(f"{name}_at_{rev}")
    exec(compile(source, f"{rev}:{path}", "exec"), module.__dict__)
    return module


def close_delimited(method: bytes, status: int, response: Any) -> bool:
    """The sidecar's own last step of relaying a response head (exchange.py's _close_delimited, kept here as the 'before' of relay_response_head)."""
    if method == b"HEAD" or status < 200 or status in (204, 304):
        return False
    return bool(response.content_length is None and not response.chunked)


def cases(f: types.ModuleType, t: types.ModuleType, p: types.ModuleType) -> dict[str, Callable[[], object]]:
    """One zero-argument call per row, against the given framing, tracing and paths modules."""
    parse = f.parse_request_head
    rng = random.Random(12)
    bits = rng.getrandbits
    out: dict[str, Callable[[], object]] = {
        "request head, client hop (proxy form, 9 headers)": lambda: parse(b"GET", "1.1", CLIENT_TARGET, CLIENT_HEADERS),
        "request head, server hop (origin form, 9 headers)": lambda: parse(b"GET", "1.1", SERVER_TARGET, SERVER_HEADERS),
        "split_target, proxy form": lambda: f.split_target(b"GET", CLIENT_TARGET),
    }
    if hasattr(f, "relay_response_head"):
        relay = f.relay_response_head
        out["response head: parse, framing, reuse, close-delimited"] = lambda: relay(b"GET", "1.1", 200, "1.1", RESPONSE_HEADERS, True)
    else:
        def four_calls() -> object:
            parsed = f.parse_response_head("1.1", RESPONSE_HEADERS, True)
            return (
                f.response_framing(b"GET", "1.1", 200, parsed),
                f.upstream_reusable(b"GET", 200, parsed),
                close_delimited(b"GET", 200, parsed),
            )

        out["response head: parse, framing, reuse, close-delimited"] = four_calls
    out["parse_response_head alone"] = lambda: f.parse_response_head("1.1", RESPONSE_HEADERS, True)
    ids = getattr(t, "ids_for_hop", t.hop_ids)
    incoming = CLIENT_HEADERS[5][1], CLIENT_HEADERS[6][1]
    out["request/trace ids, ids came in"] = lambda: ids(incoming[0], incoming[1], None, bits)
    out["request/trace ids, new trace"] = lambda: ids(None, None, None, bits)
    out["hop_ids (HopIds), ids came in"] = lambda: t.hop_ids(incoming[0], incoming[1], None, bits)
    # A sidecar is asked for the same paths again and again, which paths remembers
    # (paths._remembered): "seen before" is that case, "first time" forgets first.
    remembered: dict[bytes, object] = getattr(p, "_remembered", {})

    def first_time(target: bytes) -> object:
        remembered.clear()
        return p.normalize_target(target)

    for target in INBOUND_PATHS:
        out[f"normalize_target {target.decode()}, seen before"] = lambda target=target: p.normalize_target(target)  # type: ignore[misc]
        out[f"normalize_target {target.decode()}, first time"] = lambda target=target: first_time(target)  # type: ignore[misc]
    out["normalize_target /public/%2e%2e/admin (general route), first time"] = lambda: first_time(b"/public/%2e%2e/admin")
    return out


def best_us(call: Callable[[], object], number: int) -> float:
    """µs per call of one repeat, in this thread's CPU time: time spent waiting
    for a core that other processes hold is not counted."""
    return timeit.timeit(call, number=number, timer=time.thread_time) / number * 1e6


def measure(before: str | None, number: int) -> dict[str, Any]:
    now = cases(framing, tracing, paths)
    then: dict[str, Callable[[], object]] = {}
    if before is not None:
        old_framing = load_at(before, "meshkit.core.framing")
        then = cases(old_framing, load_at(before, "meshkit.core.tracing"), load_at(before, "meshkit.core.paths"))
    rows = []
    for name, call in now.items():
        after_runs, before_runs = [], []
        for _ in range(REPEATS):
            after_runs.append(best_us(call, number))
            if name in then:
                before_runs.append(best_us(then[name], number))
        row: dict[str, Any] = {"case": name, "after_us": min(after_runs)}
        if before_runs:
            row["before_us"] = min(before_runs)
            row["saved_us"] = row["before_us"] - row["after_us"]
            row["ratio"] = row["after_us"] / row["before_us"]
        rows.append(row)
    return {"before": before, "number": number, "repeats": REPEATS, "python": sys.version.split()[0], "rows": rows}


def table(result: dict[str, Any]) -> str:
    before = result["before"]
    lines = [
        "# meshkit.core per-request functions, µs per call",
        "",
        "Written by `benchmarks/core_micro.py`; best of %d timeit repeats of %d calls in thread CPU time, Python %s."
        % (result["repeats"], result["number"], result["python"]),
    ]
    if before:
        lines.append(f"`before` is meshkit.core at {before}, run in the same process, repeats interleaved.")
    lines += ["", "| case | before µs | after µs | saved µs | after/before |", "|---|---|---|---|---|"]
    for row in result["rows"]:
        if "before_us" in row:
            lines.append(f"| {row['case']} | {row['before_us']:.2f} | {row['after_us']:.2f} | {row['saved_us']:.2f} | {row['ratio']:.2f} |")
        else:
            lines.append(f"| {row['case']} | - | {row['after_us']:.2f} | - | - |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", help="a commit to compare with, e.g. da8afc5")
    parser.add_argument("--number", type=int, default=3_000, help="calls per repeat")
    parser.add_argument("--out", type=Path, default=RESULTS, help="where core_micro.md and .json go")
    args = parser.parse_args()
    result = measure(args.before, args.number)
    text = table(result)
    print(text)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "core_micro.md").write_text(text)
    (args.out / "core_micro.json").write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
