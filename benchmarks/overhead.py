"""What a meshkit sidecar pair costs on this machine, beside HAProxy doing the same job.

Five paths to one fixed-response upstream, measured in one run so they share
the machine's state: direct, through a meshkit sidecar pair in plaintext and
with mutual TLS, and through a HAProxy pair in plaintext and with mutual TLS
(see topology.py). For each path: latency at fixed rates with the open-loop
generator, then throughput, CPU per request and memory at saturation with
wrk; for the mTLS sidecar pair also the TLS handshakes made during each run.
With ``--baseline REF`` the sidecar pairs also run from an earlier commit's
code, beside this checkout's, so a change is measured before and after in
one run. The results go to ``results/overhead.md`` and ``overhead.json``
beside this file (or ``--out DIR``).

    python benchmarks/overhead.py                          # the full run, about 3 minutes
    python benchmarks/overhead.py --baseline da8afc5       # and the sidecars of da8afc5, about 5
    python benchmarks/overhead.py --quick                  # a short smoke run
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import machine
import measure
import reporting
import telemetry_micro
import topology
from certs import BenchCA

from meshkit.errors import MeshkitError

HERE = Path(__file__).resolve().parent
RATES = (500.0, 1000.0)
DURATION_S = 10.0
WRK_THREADS = 2
WRK_CONNECTIONS = 32
WRK_DURATION_S = 10.0
# A short run first on each path opens its connection pools, so the first
# measured requests do not pay for connection set-up the rest never see.
WARMUP_S = 1.0
QUICK = {"rates": (200.0,), "duration_s": 2.0, "wrk_duration_s": 3.0, "warmup_s": 0.0}


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="benchmarks/overhead.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="one low rate, short runs: a smoke test")
    parser.add_argument("--no-haproxy", action="store_true", help="skip the HAProxy pair (and use a Python upstream)")
    parser.add_argument("--no-wrk", action="store_true", help="skip the saturation runs")
    parser.add_argument("--no-mtls", action="store_true", help="skip the mutual-TLS pairs (meshkit and HAProxy)")
    parser.add_argument(
        "--telemetry", action="store_true",
        help="the cost of telemetry: a sidecar pair writing access logs and one with telemetry off, beside the default pair",
    )
    parser.add_argument(
        "--baseline", metavar="REF",
        help="also run the sidecar pairs from this git commit's code (checked out in a temporary worktree): before and after",
    )
    parser.add_argument("--out", type=Path, default=HERE / "results", help="where to write overhead.md and .json")
    args = parser.parse_args(argv)
    settings = QUICK if args.quick else {
        "rates": RATES, "duration_s": DURATION_S, "wrk_duration_s": WRK_DURATION_S, "warmup_s": WARMUP_S,
    }  # fmt: skip
    for key, value in settings.items():
        setattr(args, key, value)
    return args


class Status:
    """One line on stderr saying what runs now; rewritten in place on a terminal."""

    def __init__(self, steps: int) -> None:
        self.steps = steps
        self.step = 0
        self.tty = sys.stderr.isatty()

    def __call__(self, text: str) -> None:
        self.step += 1
        line = f"[{self.step}/{self.steps}] {text}"
        sys.stderr.write(f"\r\x1b[K{line}" if self.tty else f"{line}\n")
        sys.stderr.flush()

    def done(self) -> None:
        if self.tty:
            sys.stderr.write("\r\x1b[K")
            sys.stderr.flush()


def plan(args: argparse.Namespace, haproxy: str | None, before: topology.SidecarCode | None) -> list[Callable[..., topology.Target]]:
    """The proxied paths to start, in the order they are measured: each "before" pair right after
    its "after" twin, so the two see the same machine state; HAProxy after the pairs it is compared with."""
    codes = [topology.THIS_CHECKOUT] + ([before] if before is not None else [])
    steps: list[Callable[..., topology.Target]] = []

    def sidecars(telemetry: str | None = None, ca: BenchCA | None = None, only_after: bool = False) -> None:
        for code in codes[:1] if only_after else codes:
            steps.append(lambda procs, port, code=code: topology.sidecar_pair(procs, port, telemetry, ca, code))

    sidecars()
    if haproxy:
        steps.append(lambda procs, port: topology.haproxy_pair(procs, haproxy, port))
    if args.telemetry:
        sidecars("logs")
        sidecars("off", only_after=True)
    if not args.no_mtls:
        ca = BenchCA()
        sidecars(ca=ca)
        if haproxy:
            steps.append(lambda procs, port: topology.haproxy_pair(procs, haproxy, port, ca=ca))
    return steps


def run(args: argparse.Namespace) -> dict[str, Any]:
    haproxy = None if args.no_haproxy else machine.ensure_tool("haproxy", "haproxy", "--no-haproxy")
    wrk = None if args.no_wrk else machine.ensure_tool("wrk", "wrk", "--no-wrk")
    with ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="meshkit-bench-")))
        before = stack.enter_context(topology.git_tree(args.baseline, tmp)) if args.baseline else None
        # Entered last, so every process is stopped before the baseline's tree is removed.
        procs = stack.enter_context(topology.Processes(tmp))
        steps = plan(args, haproxy, before)
        paths = 1 + len(steps)
        status = Status(1 + paths * len(args.rates) + (paths if wrk else 0) + (1 if args.telemetry else 0))
        status("starting the upstream and the proxies" + (f" (and the sidecars of {before.ref})" if before else ""))
        upstream_port, upstream = topology.start_upstream(procs, haproxy)
        targets = [topology.direct(upstream_port)] + [step(procs, upstream_port) for step in steps]
        idle = {t.name: {p.role: p.rss_mb() for p in t.proxies} for t in targets}
        open_loop = []
        for rate in args.rates:
            for target in targets:
                status(f"open loop: {target.label} at {rate:g} rps for {args.duration_s:g} s")
                if args.warmup_s:
                    # A warm-up at the same rate right before: the pools (and the
                    # mTLS pair's handshakes) are as wide as this rate needs, and
                    # a pool that shrank while other paths ran has grown back.
                    measure.open_loop(target, rate, args.warmup_s)
                open_loop.append(counting_handshakes(target, lambda: measure.open_loop(target, rate, args.duration_s)))
        saturation = []
        if wrk:
            for target in targets:
                status(f"saturation: {target.label}, wrk for {args.wrk_duration_s:g} s")
                saturation.append(
                    counting_handshakes(
                        target, lambda: measure.saturate(wrk, target, WRK_THREADS, WRK_CONNECTIONS, args.wrk_duration_s, Path(tmp))
                    )
                )
        memory = {
            t.name: {role: {"idle_mb": idle[t.name][role], **m} for role, m in measure.memory(t).items()}
            for t in targets
            if t.proxies
        }
    status.done()
    doc = {
        "machine": machine.machine_facts(haproxy, wrk),
        "labels": {t.name: t.label for t in targets},
        "settings": {
            "rates": list(args.rates),
            "baseline": None if before is None else {"ref": args.baseline, "commit": before.ref},
            "telemetry": "sidecar: metrics; sidecar-logs: metrics and access logs; sidecar-notel: telemetry off"
            if args.telemetry
            else "metrics",
            "duration_s": args.duration_s,
            "warmup_s": args.warmup_s,
            "wrk": {"threads": WRK_THREADS, "connections": WRK_CONNECTIONS, "duration_s": args.wrk_duration_s}
            if wrk
            else None,
        },
        "upstream": upstream,
        "open_loop": open_loop,
        "saturation": saturation,
        "memory": memory,
    }
    if args.telemetry:
        status("telemetry in process: ns per request")
        try:
            doc["telemetry_micro"] = telemetry_micro.measure(50_000)
        except Exception as exc:  # its API follows meshkit's telemetry: a change there must not lose the run
            doc["telemetry_micro"] = {"error": f"{type(exc).__name__}: {exc}"}
    return reporting.derive(doc)


def counting_handshakes(target: topology.Target, run: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """`run()`'s row, with the TLS handshakes the meshkit sidecars made during it (mTLS pair only)."""
    before = topology.tls_handshakes(target)
    row = run()
    if before is not None:
        after = topology.tls_handshakes(target)
        row["tls_handshakes"] = None if after is None else after - before
    return row


def write(doc: dict[str, Any], out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "overhead.json").write_text(json.dumps(doc, indent=2, ensure_ascii=False, allow_nan=False) + "\n")
    (out / "overhead.md").write_text(reporting.markdown_report(doc))


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    # SIGTERM unwinds like Ctrl-C, so every process we started is stopped.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    started = time.monotonic()
    try:
        doc = run(args)
    except MeshkitError as exc:
        print(f"overhead: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\noverhead: interrupted; every process it started is stopped", file=sys.stderr)
        return 130
    write(doc, args.out)
    print(reporting.text_report(doc))
    print(f"\nwrote {args.out / 'overhead.md'} and overhead.json in {time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
