"""Two ways to load a path, and the CPU each proxy spent on it.

Open loop (``python -m meshkit.loadgen`` at a fixed rate) gives latency as a
user would see it, queueing included. Closed loop (wrk at saturation) gives
the most requests per second the path can carry. Both run as separate
processes so the load's own CPU is never counted against a proxy; a proxy's
CPU is read from outside with psutil before and after, and divided by the
requests it carried.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

from topology import PROXY_URL, SERVICE, SERVICE_PORT, Proc, Target, flush_telemetry

from meshkit.errors import LabError

LOADGEN_TIMEOUT_S = 5.0


def cpu_seconds(procs: tuple[Proc, ...]) -> dict[str, tuple[float, float]]:
    return {p.role: p.cpu_times() for p in procs}


def access_log_counts(before: dict[str, int] | None, after: dict[str, int] | None) -> dict[str, int]:
    """Access-log lines written and records dropped during a run (empty for a path without access logs).

    Lines equal to the requests carried (twice, one per sidecar) say the
    logging the run paid for was complete."""
    if before is None or after is None:
        return {}
    return {"access_log_lines": after["logged"] - before["logged"], "access_log_dropped": after["dropped"] - before["dropped"]}


def cpu_us_per_request(
    before: dict[str, tuple[float, float]], after: dict[str, tuple[float, float]], requests: int
) -> dict[str, float]:
    """Microseconds of CPU per request for each proxy, summed as ``pair``, and the pair's user/system split.

    The split says where a difference between proxies lies: system time is
    the kernel's (socket reads, writes, epoll), user time is the proxy's own code.
    """
    if not before or requests <= 0:
        return {}
    user = {role: (after[role][0] - before[role][0]) * 1e6 / requests for role in before}
    system = {role: (after[role][1] - before[role][1]) * 1e6 / requests for role in before}
    per = {role: user[role] + system[role] for role in before}
    per["pair"] = sum(per.values())
    per["pair_user"] = sum(user.values())
    per["pair_system"] = sum(system.values())
    return per


def loadgen_argv(target: Target, rate: float, duration_s: float) -> list[str]:
    argv = [sys.executable, "-m", "meshkit.loadgen", target.url, "--rate", f"{rate:g}"]
    argv += ["--duration", f"{duration_s:g}", "--timeout", f"{LOADGEN_TIMEOUT_S:g}", "--json"]
    if target.proxy is not None:
        argv += ["--proxy", f"{target.proxy[0]}:{target.proxy[1]}"]
    return argv


def open_loop(target: Target, rate: float, duration_s: float) -> dict[str, object]:
    """The load generator's summary for one path at one rate, plus each proxy's CPU per request."""
    logged = flush_telemetry(target)
    before = cpu_seconds(target.proxies)
    try:
        done = subprocess.run(
            loadgen_argv(target, rate, duration_s), capture_output=True, text=True, timeout=duration_s + 60
        )
    except subprocess.TimeoutExpired as exc:
        raise LabError(f"the load generator did not finish {duration_s:g} s of load within a minute more") from exc
    logged_after = flush_telemetry(target)
    after = cpu_seconds(target.proxies)
    if done.returncode != 0:
        raise LabError(f"the load generator failed ({done.returncode}): {done.stderr.strip()[-500:]}")
    stats = json.loads(done.stdout)
    return {
        "target": target.name,
        "rate": rate,
        **stats,
        "cpu_us_per_request": cpu_us_per_request(before, after, int(stats["count"])),
        **access_log_counts(logged, logged_after),
    }


def wrk_script(workdir: Path) -> Path:
    """A wrk script that sends proxy-form requests, as an app behind HTTP_PROXY does."""
    path = workdir / "proxy-form.lua"
    path.write_text(f'wrk.path = "{PROXY_URL}"\nwrk.headers["Host"] = "{SERVICE}:{SERVICE_PORT}"\n')
    return path


def wrk_argv(wrk: str, target: Target, threads: int, connections: int, duration_s: float, workdir: Path) -> list[str]:
    argv = [wrk, "-t", str(threads), "-c", str(connections), "-d", f"{duration_s:g}s", "--latency"]
    if target.proxy is None:
        return [*argv, target.url]
    host, port = target.proxy
    return [*argv, "-s", str(wrk_script(workdir)), f"http://{host}:{port}/"]


UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}


def parse_wrk(text: str) -> dict[str, float | int]:
    """Requests, requests/s, errors and latency percentiles from wrk's report.

    Errors are socket errors plus non-2xx/3xx responses: both mean the path
    did not carry the request.
    """
    total = re.search(r"(\d+) requests in ([\d.]+)(\w+)", text)
    rps = re.search(r"Requests/sec:\s+([\d.]+)", text)
    if total is None or rps is None:
        raise LabError(f"could not read wrk's report:\n{text.strip()[-500:]}")
    errors = 0
    sockets = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    if sockets:
        errors += sum(int(n) for n in sockets.groups())
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    if non2xx:
        errors += int(non2xx.group(1))
    result: dict[str, float | int] = {"requests": int(total.group(1)), "rps": float(rps.group(1)), "errors": errors}
    for pct, value, unit in re.findall(r"^\s+(50|90|99)%\s+([\d.]+)(us|ms|s|m)\s*$", text, re.MULTILINE):
        result[f"p{pct}_ms"] = float(value) * UNITS_MS[unit]
    return result


def saturate(
    wrk: str, target: Target, threads: int, connections: int, duration_s: float, workdir: Path
) -> dict[str, object]:
    """wrk's numbers for one path, plus each proxy's CPU per request and memory after."""
    logged = flush_telemetry(target)
    before = cpu_seconds(target.proxies)
    argv = wrk_argv(wrk, target, threads, connections, duration_s, workdir)
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=duration_s + 30)
    except subprocess.TimeoutExpired as exc:
        raise LabError(f"wrk did not finish {duration_s:g} s of load within 30 s more") from exc
    logged_after = flush_telemetry(target)
    after = cpu_seconds(target.proxies)
    if done.returncode != 0:
        raise LabError(f"wrk failed ({done.returncode}): {(done.stderr or done.stdout).strip()[-500:]}")
    stats = parse_wrk(done.stdout)
    return {
        "target": target.name,
        **stats,
        "cpu_us_per_request": cpu_us_per_request(before, after, int(stats["requests"])),
        **access_log_counts(logged, logged_after),
    }


def memory(target: Target) -> dict[str, dict[str, float | None]]:
    """Resident memory of each proxy now, and its high-water mark."""
    return {p.role: {"rss_mb": p.rss_mb(), "peak_rss_mb": p.peak_rss_mb()} for p in target.proxies}
