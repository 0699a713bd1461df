"""Soak: a sidecar pair under steady load with connection churn and malformed requests.

A lab (local backend) with one small demo workload, `soak-v1`, and the lab's
`curl` client, both with sidecars: load -> curl's sidecar (outbound) ==mTLS==>
soak-v1's sidecar (inbound) -> the soak-v1 app. An open-loop generator in this
process sends RATE requests per second for DURATION_S, each due at
t0 + i/RATE, as three kinds of traffic (`kind_of`):

- one request per connection (`connection: close`), so new connections arrive
  all the time;
- keep-alive connections, each closed by the client after KEEPALIVE_REQUESTS
  requests, so long-lived connections come and go too;
- one request in a hundred malformed (bad framing from HARDENING.md: both
  Content-Length and Transfer-Encoding, a list Content-Length, a space in a
  header name, a hexadecimal chunk size), which the sidecar must answer with
  400 and then close.

Every SAMPLE_S it samples each sidecar's resident memory and open file
descriptors (psutil, from outside) and prints a status line. What it asserts
in the test (tests/integration/test_soak.py, which calls `run`) and records
here: RSS growth of each sidecar between the warmed-up baseline (after
WARMUP_S) and the end of the load, file descriptors back to their value
before the load once it stops, and telemetry without loss: requests answered
= records each sidecar counted = records the control plane received.

    python benchmarks/soak.py                       # the full soak, about 12 minutes
    python benchmarks/soak.py --duration 60 --warmup 20 --out soak-out   # a short one

Writes DIR/soak.md (default benchmarks/results).
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:  # run as a script; tests/integration/test_soak.py puts it there to import this module
    sys.path.insert(0, str(HERE))

import psutil  # noqa: E402
from machine import machine_facts  # noqa: E402

from meshkit.demo.apps import Latency, WorkloadSpec  # noqa: E402
from meshkit.errors import MeshkitError  # noqa: E402
from meshkit.lab import Lab  # noqa: E402
from meshkit.progress import StatusLine  # noqa: E402

RATE = 200.0
DURATION_S = 600.0
# RSS is compared from here on: by then the pools, buffers and memos the load
# needs have grown to their size, so what grows after is what a leak would be.
WARMUP_S = 60.0
SAMPLE_S = 10.0
# A client closes a keep-alive connection after this many requests.
KEEPALIVE_REQUESTS = 20
# One request in MALFORMED_EVERY is malformed; of the rest, one in CLOSE_EVERY closes its connection.
MALFORMED_EVERY = 100
CLOSE_EVERY = 3
TIMEOUT_S = 10.0
# After the load: how long file descriptors may take to come back (pooled
# upstream connections close after their idle timeout; mTLS ones keep longer).
FD_SETTLE_S = 180.0
# Issue 14's bound on a sidecar's RSS growth over the soak.
RSS_GROWTH_LIMIT_MB = 2.0

APP = WorkloadSpec(name="soak-v1", service="soak", version="v1", service_account="soak", latency=Latency(1.0, 4.0))
CLIENT = "curl"
HOST = f"{APP.service}:{APP.port}"
MIB = 2**20

# Bad framing the sidecar must refuse with 400 and close (HARDENING.md, "HTTP/1.1 framing").
MALFORMED = (
    f"POST http://{HOST}/soak HTTP/1.1\r\nHost: {HOST}\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    f"POST http://{HOST}/soak HTTP/1.1\r\nHost: {HOST}\r\nContent-Length: 3,2\r\n\r\nabc",
    f"GET http://{HOST}/soak HTTP/1.1\r\nHost: {HOST}\r\nBad Header: x\r\n\r\n",
    f"POST http://{HOST}/soak HTTP/1.1\r\nHost: {HOST}\r\nTransfer-Encoding: chunked\r\n\r\n0x5\r\nhello\r\n0\r\n\r\n",
)


def kind_of(i: int) -> str:
    """What request i is: "malformed", "close" (its own connection) or "keepalive"."""
    if i % MALFORMED_EVERY == MALFORMED_EVERY // 2:
        return "malformed"
    return "close" if i % CLOSE_EVERY == 0 else "keepalive"


def request_bytes(i: int, kind: str) -> bytes:
    if kind == "malformed":
        return MALFORMED[(i // MALFORMED_EVERY) % len(MALFORMED)].encode()
    close = "Connection: close\r\n" if kind == "close" else ""
    return f"GET http://{HOST}/soak/{i % 10} HTTP/1.1\r\nHost: {HOST}\r\n{close}\r\n".encode()


class BadResponse(Exception):
    """The answer could not be read as HTTP/1.1."""


async def read_response(reader: asyncio.StreamReader) -> tuple[int, bool]:
    """(status, whether the server said it closes) of one response, its body read whole."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    if len(parts) < 2 or not parts[1].isdigit():
        raise BadResponse(f"status line {lines[0]!r}")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
    closes = headers.get("connection", "").lower() == "close"
    if headers.get("transfer-encoding", "").lower() == "chunked":
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            await reader.readexactly(size + 2)
            if size == 0:
                break
    elif "content-length" in headers:
        await reader.readexactly(int(headers["content-length"]))
    elif closes:
        await reader.read()
    return int(parts[1]), closes


@dataclass
class Connection:
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    used: int = 0

    def close(self) -> None:
        self.writer.close()


@dataclass
class Tally:
    """What the generator sent and what came back, by kind."""

    sent: dict[str, int] = field(default_factory=lambda: {"close": 0, "keepalive": 0, "malformed": 0})
    codes: dict[str, dict[int, int]] = field(default_factory=lambda: {"close": {}, "keepalive": {}, "malformed": {}})
    errors: dict[str, int] = field(default_factory=dict)
    malformed_not_closed: int = 0
    connections: int = 0

    def answered(self, kind: str, code: int) -> None:
        self.codes[kind][code] = self.codes[kind].get(code, 0) + 1

    def failed(self, exc: BaseException) -> None:
        name = type(exc).__name__
        self.errors[name] = self.errors.get(name, 0) + 1

    @property
    def total_sent(self) -> int:
        return sum(self.sent.values())

    @property
    def total_answered(self) -> int:
        return sum(sum(c.values()) for c in self.codes.values())

    def doc(self) -> dict[str, Any]:
        return {
            "sent": dict(self.sent),
            "codes": {k: {str(code): n for code, n in sorted(v.items())} for k, v in self.codes.items()},
            "errors": dict(self.errors),
            "malformed_not_closed": self.malformed_not_closed,
            "connections": self.connections,
        }


class Generator:
    """Open-loop load through the client sidecar's outbound listener."""

    def __init__(self, proxy: tuple[str, int], tally: Tally) -> None:
        self.proxy = proxy
        self.tally = tally
        self.idle: list[Connection] = []

    async def connect(self) -> Connection:
        reader, writer = await asyncio.open_connection(*self.proxy)
        self.tally.connections += 1
        return Connection(reader, writer)

    async def one(self, i: int) -> None:
        kind = kind_of(i)
        self.tally.sent[kind] += 1
        conn: Connection | None = None
        try:
            async with asyncio.timeout(TIMEOUT_S):
                conn = self.idle.pop() if kind == "keepalive" and self.idle else await self.connect()
                conn.writer.write(request_bytes(i, kind))
                status, closes = await read_response(conn.reader)
                conn.used += 1
                if kind == "malformed" and not (closes and await conn.reader.read() == b""):
                    self.tally.malformed_not_closed += 1
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, BadResponse, ValueError, TimeoutError) as exc:
            self.tally.failed(exc)
            if conn is not None:
                conn.close()
            return
        self.tally.answered(kind, status)
        if kind == "keepalive" and not closes and conn.used < KEEPALIVE_REQUESTS:
            self.idle.append(conn)
        else:
            conn.close()

    def close(self) -> None:
        for conn in self.idle:
            conn.close()
        self.idle.clear()


@dataclass(frozen=True)
class Sidecar:
    """One sidecar of the pair, measured from outside."""

    role: str  # "client" (outbound) or "server" (inbound)
    node: str
    pid: int

    def sample(self) -> tuple[float, int]:
        """(RSS in MiB, open file descriptors)."""
        proc = psutil.Process(self.pid)
        return proc.memory_info().rss / MIB, proc.num_fds()


def sample_row(t: float, sidecars: list[Sidecar], tally: Tally) -> dict[str, Any]:
    row: dict[str, Any] = {"t_s": round(t, 1), "sent": tally.total_sent, "answered": tally.total_answered,
                           "errors": sum(tally.errors.values()), "connections": tally.connections}  # fmt: skip
    for sidecar in sidecars:
        rss, fds = sidecar.sample()
        row[f"{sidecar.role}_rss_mb"] = round(rss, 2)
        row[f"{sidecar.role}_fds"] = fds
    return row


def status_text(row: dict[str, Any], duration_s: float) -> str:
    return (f"soak {row['t_s']:.0f}/{duration_s:.0f} s: {row['sent']} sent, {row['answered']} answered, "
            f"{row['errors']} errors, {row['connections']} connections; client sidecar {row['client_rss_mb']:.1f} MB "
            f"{row['client_fds']} fds, server sidecar {row['server_rss_mb']:.1f} MB {row['server_fds']} fds")  # fmt: skip


async def drive(proxy: tuple[str, int], rate: float, duration_s: float, sidecars: list[Sidecar],
                status: Callable[[str], None]) -> tuple[Tally, list[dict[str, Any]]]:  # fmt: skip
    """Send the load; sample the sidecars every SAMPLE_S. Returns the tally and the samples."""
    tally = Tally()
    gen = Generator(proxy, tally)
    samples = [sample_row(0.0, sidecars, tally)]
    tasks: set[asyncio.Task[None]] = set()
    total = int(rate * duration_s)
    t0 = time.monotonic()
    next_sample = SAMPLE_S
    for i in range(total):
        due = t0 + i / rate
        now = time.monotonic()
        if now - t0 >= next_sample:
            samples.append(sample_row(now - t0, sidecars, tally))
            status(status_text(samples[-1], duration_s))
            next_sample += SAMPLE_S
        if due > now:
            await asyncio.sleep(due - now)
        task = asyncio.create_task(gen.one(i))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
    if tasks:
        await asyncio.wait(tasks)
    samples.append(sample_row(time.monotonic() - t0, sidecars, tally))
    status(status_text(samples[-1], duration_s))
    gen.close()
    return tally, samples


def telemetry_counts(lab: Lab) -> dict[str, dict[str, int]]:
    """Per node: records the sidecar says it recorded and dropped, and what the control plane received and missed."""
    frame = lab.telemetry_drops()
    counts: dict[str, dict[str, int]] = {}
    for row in frame.itertuples():
        node = counts.setdefault(str(row.node), {"recorded": 0, "received": 0, "gaps": 0, "dropped": 0})
        for key in node:
            node[key] += int(getattr(row, key))
    return counts


def settle_fds(sidecars: list[Sidecar], baseline: dict[str, int], limit_s: float) -> tuple[dict[str, int], float]:
    """Wait until every sidecar holds at most its baseline of descriptors (or `limit_s` passes)."""
    started = time.monotonic()
    while True:
        now = {s.role: s.sample()[1] for s in sidecars}
        waited = time.monotonic() - started
        if all(now[r] <= baseline[r] for r in baseline) or waited >= limit_s:
            return now, waited
        time.sleep(1.0)


def run(home: Path, rate: float = RATE, duration_s: float = DURATION_S, warmup_s: float = WARMUP_S,
        status: Callable[[str], None] | None = None) -> dict[str, Any]:  # fmt: skip
    """The whole soak on a lab of its own in `home`: the results document (see `verdicts`)."""
    status = status or StatusLine()
    started = time.monotonic()
    lab = Lab(home=home).up()
    try:
        status("starting the lab: soak-v1 and curl with sidecars")
        lab.deploy(APP, inject=True)
        lab.inject(CLIENT)
        spec = lab.load_spec(APP.service, "/soak")
        assert spec.proxy is not None, "curl has a sidecar: its outbound listener is the proxy"
        assert lab.call(APP.service, "/soak").status == 200
        processes = lab.resources(sample=0.1)
        sidecar_rows = processes[processes["role"] == "sidecar"]
        sidecars = [
            Sidecar(role, f"{row.namespace}/{row.instance}", int(row.pid))
            for role, workload in (("client", CLIENT), ("server", APP.name))
            for row in sidecar_rows[sidecar_rows["workload"] == workload].itertuples()
        ]
        assert len(sidecars) == 2, sidecar_rows
        time.sleep(2.0)  # the readiness call's connections settle
        fds_before = {s.role: s.sample()[1] for s in sidecars}
        telemetry_before = telemetry_counts(lab)
        status(f"load: {rate:g} rps for {duration_s:g} s")
        tally, samples = asyncio.run(drive(spec.proxy, rate, duration_s, sidecars, status))
        status(f"load done; waiting up to {FD_SETTLE_S:g} s for file descriptors to come back")
        fds_after, settled_s = settle_fds(sidecars, fds_before, FD_SETTLE_S)
        idle_after = {s.role: round(s.sample()[0], 2) for s in sidecars}
        telemetry_after = telemetry_counts(lab)
        telemetry = {
            s.role: {k: telemetry_after.get(s.node, {}).get(k, 0) - telemetry_before.get(s.node, {}).get(k, 0)
                     for k in ("recorded", "received", "gaps", "dropped")}
            for s in sidecars
        }  # fmt: skip
        store = lab.telemetry_drops().attrs
    finally:
        lab.down()
    doc: dict[str, Any] = {
        "machine": machine_facts(None, None),
        "settings": {"rate": rate, "duration_s": duration_s, "warmup_s": warmup_s, "sample_s": SAMPLE_S,
                     "keepalive_requests": KEEPALIVE_REQUESTS, "malformed_every": MALFORMED_EVERY,
                     "close_every": CLOSE_EVERY, "timeout_s": TIMEOUT_S},  # fmt: skip
        # glibc's allocator settings the sidecars inherited, if any: they change how RSS grows.
        "malloc_env": {k: v for k, v in sorted(os.environ.items()) if k.startswith("MALLOC_")},
        "sidecars": {s.role: s.node for s in sidecars},
        "tally": tally.doc(),
        "samples": samples,
        "fds": {"before": fds_before, "after": fds_after, "settled_s": round(settled_s, 1)},
        "rss_idle_after_mb": idle_after,
        "telemetry": telemetry,
        "store": {k: store.get(k) for k in ("records", "capacity", "evicted")},
        "took_s": round(time.monotonic() - started, 1),
    }
    doc["verdicts"] = verdicts(doc)
    return doc


def baseline_sample(samples: list[dict[str, Any]], warmup_s: float) -> dict[str, Any]:
    """The first sample taken at or after the warm-up."""
    return next(s for s in samples if s["t_s"] >= warmup_s)


def verdicts(doc: dict[str, Any]) -> dict[str, Any]:
    """The figures the soak is judged on, from the results document alone (pure, so a report can be re-rendered)."""
    samples = doc["samples"]
    base = baseline_sample(samples, doc["settings"]["warmup_s"])
    end = samples[-1]
    tally = doc["tally"]
    ok = sum(n for kind in ("close", "keepalive") for code, n in tally["codes"][kind].items() if code == "200")
    valid = tally["sent"]["close"] + tally["sent"]["keepalive"]
    malformed_400 = tally["codes"]["malformed"].get("400", 0)
    return {
        "rss_baseline_mb": {r: base[f"{r}_rss_mb"] for r in ("client", "server")},
        "rss_end_mb": {r: end[f"{r}_rss_mb"] for r in ("client", "server")},
        "rss_growth_mb": {r: round(end[f"{r}_rss_mb"] - base[f"{r}_rss_mb"], 2) for r in ("client", "server")},
        "rss_baseline_at_s": base["t_s"],
        "fds_back": all(doc["fds"]["after"][r] <= doc["fds"]["before"][r] for r in doc["fds"]["before"]),
        "valid_sent": valid,
        "valid_200": ok,
        "malformed_sent": tally["sent"]["malformed"],
        "malformed_400": malformed_400,
        "malformed_not_closed": tally["malformed_not_closed"],
        "errors": sum(tally["errors"].values()),
        # The server sidecar sees only valid requests; the client sidecar also records the 400s it answered itself.
        "server_recorded": doc["telemetry"]["server"]["recorded"],
        "client_recorded": doc["telemetry"]["client"]["recorded"],
        "lost": sum(doc["telemetry"][r]["recorded"] - doc["telemetry"][r]["received"]
                    + doc["telemetry"][r]["gaps"] + doc["telemetry"][r]["dropped"] for r in ("client", "server")),  # fmt: skip
    }


def within(ok: bool) -> str:
    return "within" if ok else "**over**"


def markdown(doc: dict[str, Any]) -> str:
    v = doc["verdicts"]
    growth = v["rss_growth_mb"]
    records = (
        "Malformed requests left no record in either sidecar: each counted exactly the valid requests."
        if v["client_recorded"] == v["server_recorded"] == v["valid_200"]
        else f"The client sidecar counted {v['client_recorded']} records and the server sidecar {v['server_recorded']}, "
        f"for {v['valid_200']} valid requests answered and {v['malformed_400']} malformed ones refused."
    )
    s = doc["settings"]
    m = doc["machine"]
    lines = [
        "# Soak: a sidecar pair under churn",
        "",
        f"`benchmarks/soak.py`, {m['date']}: {m['cpu']}, {m['cores']} cores, {m['memory_gb']} GB, "
        f"{m['kernel']}, Python {m['python']}. Took {doc['took_s']:.0f} s.",
        "",
        f"curl's sidecar (outbound) ==mTLS==> soak-v1's sidecar (inbound) -> soak-v1 (a demo app), in a lab, "
        f"at {s['rate']:g} rps open loop for {s['duration_s']:g} s: one request in {s['close_every']} on a "
        f"connection of its own (`connection: close`), the others on keep-alive connections the client closes "
        f"after {s['keepalive_requests']} requests, and one in {s['malformed_every']} malformed (bad framing, "
        f"four kinds, each on a new connection)."
        + (f" The sidecars ran with {', '.join(f'`{k}={v}`' for k, v in doc['malloc_env'].items())}." if doc.get("malloc_env") else ""),
        "",
        "## Verdicts",
        "",
        "| figure | client sidecar | server sidecar | bound |",
        "| --- | --- | --- | --- |",
        f"| RSS at {v['rss_baseline_at_s']:.0f} s -> at the end of the load (MB) | {v['rss_baseline_mb']['client']:.2f} -> "
        f"{v['rss_end_mb']['client']:.2f} | {v['rss_baseline_mb']['server']:.2f} -> {v['rss_end_mb']['server']:.2f} | |",
        f"| RSS growth (MB) | {growth['client']:+.2f} ({within(growth['client'] < RSS_GROWTH_LIMIT_MB)}) "
        f"| {growth['server']:+.2f} ({within(growth['server'] < RSS_GROWTH_LIMIT_MB)}) | < {RSS_GROWTH_LIMIT_MB:g} |",
        f"| open fds before the load / {doc['fds']['settled_s']:g} s after it | {doc['fds']['before']['client']} / "
        f"{doc['fds']['after']['client']} | {doc['fds']['before']['server']} / {doc['fds']['after']['server']} | back to before |",
        f"| records the sidecar counted | {v['client_recorded']} | {v['server_recorded']} | |",
        f"| records the control plane received | {doc['telemetry']['client']['received']} | "
        f"{doc['telemetry']['server']['received']} | = counted |",
        f"| gaps / dropped | {doc['telemetry']['client']['gaps']} / {doc['telemetry']['client']['dropped']} | "
        f"{doc['telemetry']['server']['gaps']} / {doc['telemetry']['server']['dropped']} | 0 / 0 |",
        "",
        f"Requests: {v['valid_sent']} valid sent, {v['valid_200']} answered 200; {v['malformed_sent']} malformed sent, "
        f"{v['malformed_400']} answered 400 ({v['malformed_not_closed']} left open by the sidecar); "
        f"{v['errors']} errors; {doc['tally']['connections']} connections opened. Records lost: {v['lost']}. "
        f"The control plane's store held {doc['store']['records']} records (capacity {doc['store']['capacity']}, "
        f"{doc['store']['evicted']} evicted as the bound says). {records}",
        "",
        "## Over time",
        "",
        "| t (s) | sent | answered | errors | connections | client RSS (MB) | client fds | server RSS (MB) | server fds |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in doc["samples"]:
        lines.append(f"| {r['t_s']:.0f} | {r['sent']} | {r['answered']} | {r['errors']} | {r['connections']} | "
                     f"{r['client_rss_mb']:.2f} | {r['client_fds']} | {r['server_rss_mb']:.2f} | {r['server_fds']} |")
    lines.append("")
    return "\n".join(lines)


def table(doc: dict[str, Any]) -> str:
    """The samples as a plain table for the terminal."""
    head = f"{'t s':>6} {'sent':>8} {'answered':>8} {'errors':>6} {'client MB':>9} {'fds':>4} {'server MB':>9} {'fds':>4}"
    rows = [f"{r['t_s']:>6.0f} {r['sent']:>8} {r['answered']:>8} {r['errors']:>6} {r['client_rss_mb']:>9.2f} "
            f"{r['client_fds']:>4} {r['server_rss_mb']:>9.2f} {r['server_fds']:>4}" for r in doc["samples"]]
    return "\n".join([head, *rows, "", f"verdicts: {doc['verdicts']}"])


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="benchmarks/soak.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=float, default=RATE)
    parser.add_argument("--duration", type=float, default=DURATION_S, help="seconds of load")
    parser.add_argument("--warmup", type=float, default=WARMUP_S, help="seconds before the RSS baseline")
    parser.add_argument("--out", type=Path, default=HERE / "results", help="where soak.md goes")
    args = parser.parse_args(argv)
    if not 0 < args.warmup < args.duration or not math.isfinite(args.rate) or args.rate <= 0:
        parser.error("needs 0 < --warmup < --duration and a positive --rate")
    status = StatusLine()
    try:
        with tempfile.TemporaryDirectory(prefix="meshkit-soak-") as tmp:
            doc = run(Path(tmp) / "lab", args.rate, args.duration, args.warmup, status)
    except MeshkitError as exc:
        status.done()
        print(f"soak: {exc}", file=sys.stderr)
        return 1
    status.done()
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "soak.md").write_text(markdown(doc))
    print(table(doc))
    print(f"\nwrote {args.out / 'soak.md'} in {doc['took_s']:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
