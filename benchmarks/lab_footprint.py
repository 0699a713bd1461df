"""What one learner's Bookinfo lab costs a machine, and how many learners a machine holds.

One lab as a notebook leaves it: Bookinfo with a sidecar beside every
workload and the lab's client (curl) in the mesh, 15 processes in all. Beside
it runs what a learner on JupyterHub also has: a notebook kernel (started
with jupyter_client, after a lesson's imports, holding a Lab) and a
single-user Jupyter server.

- memory: resident memory (RSS) per role from `lab.resources()` (control
  plane, sidecars, apps), plus the kernel's and the Jupyter server's; and PSS
  (a shared page counted once, split between its sharers), the fairer sum;
- CPU idle: every process over one window with nothing sent;
- CPU busy: the same window while the kernel runs `lab.load("productpage",
  "/productpage", rate=20)` (a typical notebook load), the kernel's own CPU
  included, since the load generator runs in it.

From these, `capacity()` estimates learners per machine size, memory-bound
and CPU-bound, under the assumptions written next to its constants.

Usage: python benchmarks/lab_footprint.py [--window 10] [--rate 20] [--out DIR] [--render]
Writes DIR/footprint.md and DIR/footprint.json (default benchmarks/results).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import queue
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import psutil  # noqa: E402
from jupyter_client.manager import KernelManager  # noqa: E402
from machine import machine_facts  # noqa: E402

from meshkit.errors import LabError, MeshkitError  # noqa: E402
from meshkit.lab import Lab  # noqa: E402
from meshkit.progress import StatusLine  # noqa: E402

MIB = 1024 * 1024

MACHINES = ((2, 4), (4, 8), (8, 32), (16, 64))
"""(cores, GiB) of the machine sizes the estimate is made for."""
RESERVED_GIB = 1.0
"""Memory kept for the operating system, JupyterHub's hub and its proxy (TLJH's
hub and configurable-http-proxy hold about 150-250 MB together) and page cache."""
CPU_TARGET = 0.7
"""Share of the cores the learners' labs may use on average. The lessons measure
latency: above about 70% busy, queueing on the CPU shows up in every p99 a
learner reads, and a burst (the instructor says "now run it") needs room."""
BUSY_SHARES = (0.25, 0.5)
"""Share of learners running a load at the same moment. A lesson's load cells run
5-20 s each, a few times in a 20-40 minute notebook (about 10% of the time alone),
but a room moves together: 25% is a room working at its own pace, 50% the
moment after the instructor says "run the next cell"."""

KERNEL_SETUP = """
from meshkit import Lab
from meshkit.quiz import Quiz
import meshkit.notebook
import pandas as pd
import plotly.graph_objects as go
lab = Lab(home={home!r})
quiz = Quiz("04", lab)
frame = lab.load("productpage", "/productpage", rate={rate}, duration=3)
go.Figure(go.Histogram(x=frame["latency_ms"]))
"""
"""What a kernel holds a few cells into a lesson: meshkit, pandas, plotly, a quiz and a load's results."""


# -- the arithmetic (pure) -------------------------------------------------------------------


def per_learner(measured: dict[str, Any]) -> dict[str, float]:
    """One learner's memory (MiB, the larger of idle and busy) and CPU (% of one core), idle and busy."""
    def total(phase: str, field: str) -> float:
        return sum(row[field] for row in measured[phase].values())

    return {
        "memory_mb": max(total("idle", "memory_mb"), total("busy", "memory_mb")),
        "pss_mb": max(total("idle", "pss_mb"), total("busy", "pss_mb")),
        "cpu_idle_percent": total("idle", "cpu_percent"),
        "cpu_busy_percent": total("busy", "cpu_percent"),
    }


def capacity(cores: int, memory_gib: float, learner: dict[str, float], busy_share: float) -> dict[str, int]:
    """Learners a machine holds: by memory (RSS, all phases' larger), by CPU (average use
    at `busy_share` of learners loading at once within CPU_TARGET of the cores), and the smaller."""
    free_mb = (memory_gib - RESERVED_GIB) * 1024
    by_memory = max(0, math.floor(free_mb / learner["memory_mb"]))
    average = learner["cpu_idle_percent"] + busy_share * (learner["cpu_busy_percent"] - learner["cpu_idle_percent"])
    by_cpu = max(0, math.floor(cores * 100 * CPU_TARGET / average))
    return {"by_memory": by_memory, "by_cpu": by_cpu, "learners": min(by_memory, by_cpu)}


# -- measuring -------------------------------------------------------------------------------


def pss_mb(pid: int) -> float:
    """Proportional set size: shared pages split between the processes that share them."""
    try:
        return psutil.Process(pid).memory_full_info().pss / MIB
    except (psutil.Error, AttributeError):
        return float("nan")


def cpu_seconds(pid: int) -> float:
    times = psutil.Process(pid).cpu_times()
    return times.user + times.system


def by_role(lab: Lab, window_s: float, extra: dict[str, int]) -> dict[str, dict[str, float]]:
    """CPU (% of one core) and memory per role over one window: the lab's roles, and
    the `extra` processes (name -> pid) read over the same window."""
    before = {name: cpu_seconds(pid) for name, pid in extra.items()}
    started = time.monotonic()
    frame = lab.resources(sample=window_s)
    wall = time.monotonic() - started
    rows: dict[str, dict[str, float]] = {}
    for role, group in frame.groupby("role"):
        rows[str(role)] = {
            "processes": len(group),
            "cpu_percent": float(group["cpu_percent"].sum()),
            "memory_mb": float(group["memory_mb"].sum()),
            "pss_mb": sum(pss_mb(int(pid)) for pid in group["pid"]),
        }
    for name, pid in extra.items():
        proc = psutil.Process(pid)
        rows[name] = {
            "processes": 1,
            "cpu_percent": (cpu_seconds(pid) - before[name]) / wall * 100,
            "memory_mb": proc.memory_info().rss / MIB,
            "pss_mb": pss_mb(pid),
        }
    return rows


@contextlib.contextmanager
def kernel(home: Path, rate: float) -> Iterator[tuple[Any, int]]:
    """A python3 kernel that has run a lesson's first cells against the lab in `home`."""
    manager = KernelManager(kernel_name="python3")
    manager.start_kernel(env={**os.environ, "MESHKIT_HEADLESS": "1", "MESHKIT_HOME": str(home),
                              "MESHKIT_PROGRESS": str(home.parent / "progress.jsonl")})
    client = manager.client()
    client.start_channels()
    try:
        client.wait_for_ready(timeout=60)
        run_cell(client, KERNEL_SETUP.format(home=str(home), rate=rate), timeout=120)
        yield client, manager.provisioner.process.pid
    finally:
        client.stop_channels()
        manager.shutdown_kernel(now=True)


def run_cell(client: Any, code: str, timeout: float) -> None:
    reply = client.execute_interactive(code, timeout=timeout, output_hook=lambda _msg: None)
    if reply["content"]["status"] != "ok":
        raise LabError(f"the kernel failed on a lesson cell: {reply['content'].get('evalue', reply['content']['status'])}")


def wait_reply(client: Any, msg_id: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            message = client.get_shell_msg(timeout=1)
        except queue.Empty:
            continue
        if message["parent_header"].get("msg_id") == msg_id:
            if message["content"]["status"] != "ok":
                raise LabError(f"the kernel's load failed: {message['content'].get('evalue')}")
            return
    raise LabError(f"the kernel's load did not finish in {timeout:.0f} s")


def jupyter_server_mb(scratch: Path) -> float:
    """RSS of a single-user JupyterLab server a few seconds after it started (no notebook open)."""
    command = shutil.which("jupyter-lab", path=str(Path(sys.executable).parent)) or shutil.which("jupyter-lab")
    if command is None:
        return float("nan")
    log = scratch / "jupyter.log"
    args = [command, "--no-browser", "--port=0", f"--ServerApp.root_dir={scratch}", "--IdentityProvider.token=footprint"]
    if os.geteuid() == 0:
        args.append("--allow-root")
    with open(log, "wb") as out:
        proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, cwd=scratch, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not re.search(r"http://127\.0\.0\.1:\d+/", log.read_text(errors="replace")):
            if proc.poll() is not None:
                return float("nan")
            time.sleep(0.5)
        time.sleep(3)
        return psutil.Process(proc.pid).memory_info().rss / MIB
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


def measure(window_s: float, rate: float, status: StatusLine) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="meshkit-footprint-") as scratch:
        home = Path(scratch) / "lab"
        lab = Lab(home=home)
        try:
            status("starting Bookinfo with sidecars")
            lab.up()
            lab.deploy("bookinfo", inject=True)
            lab.inject("curl")
            started_cpu_s = float(lab.resources(sample=0.1)["cpu_seconds"].sum())
            status("starting a notebook kernel and running a lesson's first cells")
            with kernel(home, rate) as (client, kernel_pid):
                time.sleep(2)
                status(f"idle: {window_s:g} s with nothing sent")
                idle = by_role(lab, window_s, {"notebook kernel": kernel_pid})
                status(f"busy: productpage at {rate:g}/s from the kernel, {window_s:g} s")
                duration = window_s + 4
                msg_id = client.execute(f'busy = lab.load("productpage", "/productpage", rate={rate}, duration={duration})')
                time.sleep(2)
                busy = by_role(lab, window_s, {"notebook kernel": kernel_pid})
                wait_reply(client, msg_id, timeout=duration + 60)
            status("starting a JupyterLab server to weigh it")
            server = jupyter_server_mb(Path(scratch))
        finally:
            lab.down()
    for phase in (idle, busy):
        # Its CPU is not measured: it idles, and works only while a browser renders widgets.
        phase["Jupyter server"] = {"processes": 1, "cpu_percent": 0.0, "cpu_measured": False, "memory_mb": server, "pss_mb": server}
    return {"idle": idle, "busy": busy, "startup_cpu_s": started_cpu_s}


# -- the report ------------------------------------------------------------------------------

ROLE_ORDER = ("control plane", "sidecar", "app", "notebook kernel", "Jupyter server")


def render(results: dict[str, Any]) -> str:
    """The markdown results file, from the recorded results (also used by --render)."""
    facts = results["machine"]
    machine = f"{facts['cpu']}, {facts['cores']} cores, {facts['memory_gb']} GiB, {facts['kernel']}, Python {facts['python']}"
    measured = results["measured"]
    learner = per_learner(measured)
    load = results["load_average_1m"]
    lines = [
        "# One learner's footprint, and learners per machine",
        "",
        "Written by `benchmarks/lab_footprint.py`: one Bookinfo lab with a sidecar beside every workload and the",
        "lab's client, a notebook kernel that ran a lesson's first cells, and a JupyterLab server (a JupyterHub",
        "user's single-user server).",
        "",
        f"Machine: {machine}",
        f"Date: {facts['date']}",
        f"Load average (1 min) before and after: {load['before']} and {load['after']} (other engineers' tests shared",
        "these 2 cores; CPU shares below are the measured processes' own time, which other work does not add to,",
        "but a busy machine can make each request a little dearer)",
        "",
        f"Idle: every process over {results['window_s']:g} s with no traffic. Busy: the same window while the kernel",
        f"runs `lab.load(\"productpage\", \"/productpage\", rate={results['rate']:g})`: each page load is 4 requests",
        "through 3 pairs of sidecars (productpage -> details, -> reviews -> ratings).",
        "CPU is % of one core (100 = one core busy). RSS counts shared pages in every process; PSS splits them.",
        "The Jupyter server's CPU is not measured (it idles; it works when a browser renders widgets).",
        "",
        "| role | processes | CPU idle % | CPU busy % | RSS idle MiB | RSS busy MiB | PSS busy MiB |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for role in ROLE_ORDER:
        idle, busy = measured["idle"].get(role), measured["busy"].get(role)
        if idle is None or busy is None:
            continue
        cpu_idle, cpu_busy = (f"{row['cpu_percent']:.1f}" if row.get("cpu_measured", True) else "-" for row in (idle, busy))
        lines.append(
            f"| {role} | {busy['processes']} | {cpu_idle} | {cpu_busy} "
            f"| {idle['memory_mb']:.0f} | {busy['memory_mb']:.0f} | {busy['pss_mb']:.0f} |"
        )
    lab_mb = sum(measured["busy"][r]["memory_mb"] for r in ("control plane", "sidecar", "app") if r in measured["busy"])
    lines += [
        f"| **one learner** | {sum(r['processes'] for r in measured['busy'].values())} | {learner['cpu_idle_percent']:.1f} "
        f"| {learner['cpu_busy_percent']:.1f} | | {learner['memory_mb']:.0f} | {learner['pss_mb']:.0f} |",
        "",
        f"The lab alone (control plane, sidecars, apps) holds {lab_mb:.0f} MiB RSS; a learner's whole share,",
        f"with the kernel and the Jupyter server, {learner['memory_mb']:.0f} MiB RSS ({learner['pss_mb']:.0f} MiB PSS).",
        "",
        f"Starting the lab (up, Bookinfo with sidecars, the client injected) cost its processes {measured['startup_cpu_s']:.1f} s",
        "of CPU in all: when a whole room runs a notebook's first cell at once, that is the burst to plan for",
        f"(a room of 30 on 8 cores: about {measured['startup_cpu_s'] * 30 / 8:.0f} s before every lab is up).",
        "",
        "## Learners per machine",
        "",
        "Assumptions (the constants at the top of the script):",
        "",
        f"- memory: {RESERVED_GIB:g} GiB kept for the system, the hub and its proxy; each learner takes the RSS above",
        "  (the larger of idle and busy). RSS over-counts shared pages, so this is the cautious side; PSS would fit",
        f"  {learner['memory_mb'] / learner['pss_mb']:.1f}x as many by memory.",
        f"- CPU: the learners' average use stays within {CPU_TARGET:.0%} of the cores, so latency measurements stay",
        "  honest and a room's burst has room; a learner uses the idle CPU, plus the busy CPU for the share of",
        "  learners loading at once. A lesson's load cells run 5-20 s a few times per notebook (about 10% of a",
        "  learner's time), but a room moves together: 25% is a room at its own pace, 50% the moment after",
        "  \"run the next cell\". Heavier cells exist (notebook 06's retry storm, 12's measurements at higher",
        "  rates) and cost more for their few seconds.",
        "- Each learner has their own lab (JupyterHub gives every user their own ~/.meshkit).",
        "",
        "| machine | by memory | by CPU, 25% busy | by CPU, 50% busy | learners (25% busy) | learners (50% busy) |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for cores, gib in MACHINES:
        quarter, half = (capacity(cores, gib, learner, share) for share in BUSY_SHARES)
        lines.append(
            f"| {cores} cores / {gib} GiB | {quarter['by_memory']} | {quarter['by_cpu']} | {half['by_cpu']} "
            f"| {quarter['learners']} | {half['learners']} |"
        )
    lines += [
        "",
        "Read it as: a room of that size fits when every learner runs their own lab; below the smaller number",
        "the labs stay responsive. On CPU-bound machines, fewer learners loading at once (staggered exercises) is",
        "what buys room; on memory-bound ones, only memory does.",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--window", type=float, default=10.0, help="seconds each CPU sample lasts (default 10)")
    parser.add_argument("--rate", type=float, default=20.0, help="productpage requests per second when busy (default 20)")
    parser.add_argument("--out", type=Path, default=HERE / "results")
    parser.add_argument("--render", action="store_true", help="only rewrite footprint.md from the recorded footprint.json")
    args = parser.parse_args()
    if args.render:
        (args.out / "footprint.md").write_text(render(json.loads((args.out / "footprint.json").read_text())))
        return
    if not 1 <= args.window <= 60:
        sys.exit(f"lab_footprint: --window must be 1-60 seconds, got {args.window:g}")
    status = StatusLine()
    load_before = os.getloadavg()[0]
    measured = measure(args.window, args.rate, status)
    status.done()
    results = {
        "machine": machine_facts(None, None),
        "load_average_1m": {"before": round(load_before, 2), "after": round(os.getloadavg()[0], 2)},
        "window_s": args.window,
        "rate": args.rate,
        "measured": measured,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "footprint.json").write_text(json.dumps(results, indent=1) + "\n")
    (args.out / "footprint.md").write_text(render(results))
    print(render(results))


if __name__ == "__main__":
    try:
        main()
    except MeshkitError as exc:
        sys.exit(f"\nlab_footprint: {exc}")
