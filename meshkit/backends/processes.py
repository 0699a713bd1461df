"""Starting, finding and stopping the lab's own processes.

A process is remembered by (pid, create time): a pid alone can be reused by
the operating system after the process dies, and killing a stranger is the
worst thing a lab could do. Every process starts in its own session, so a
notebook kernel that dies (or is restarted) does not take the lab with it; the
next Lab finds the processes again through these records and reattaches.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import psutil


@dataclass(frozen=True)
class ProcessRecord:
    """How to find one started process again."""

    pid: int
    create_time: float
    log: str

    def to_dict(self) -> dict[str, object]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> ProcessRecord:
        return cls(pid=int(data["pid"]), create_time=float(data["create_time"]), log=str(data["log"]))  # type: ignore[arg-type]


def spawn(module: str, args: list[str], log: Path, env: dict[str, str] | None = None) -> ProcessRecord:
    """Start `python -m module args...` detached, its output in `log`."""
    log.parent.mkdir(parents=True, exist_ok=True)
    full_env = dict(os.environ)
    # A lab process must never route its own control traffic through a proxy
    # the learner's shell happens to set; workloads get HTTP_PROXY explicitly.
    for name in ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"):
        full_env.pop(name, None)
    full_env["PYTHONUNBUFFERED"] = "1"
    full_env.update(env or {})
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", module, *args],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=full_env,
            start_new_session=True,
            close_fds=True,
        )
    try:
        created = psutil.Process(proc.pid).create_time()
    except psutil.NoSuchProcess:
        created = 0.0
    # The Popen object is dropped on purpose: the lab outlives this Python
    # process. Reap it in the background if it is our child and exits early.
    _children.append(proc)
    return ProcessRecord(pid=proc.pid, create_time=created, log=str(log))


_children: list[subprocess.Popen[bytes]] = []


def exit_code(record: ProcessRecord) -> int | None:
    """The exit status of a process this Python started, once it has exited."""
    for child in _children:
        if child.pid == record.pid:
            return child.poll()
    return None


def _reap() -> None:
    """Collect exited children (no zombies), keeping their exit status for
    `exit_code` for a while: a launcher asks why a process ended."""
    for child in _children:
        child.poll()
    while len(_children) > MAX_REMEMBERED and _children[0].returncode is not None:
        _children.pop(0)


MAX_REMEMBERED = 512


def _process(record: ProcessRecord) -> psutil.Process | None:
    """The live process a record names, or None if it is gone or was reused."""
    _reap()
    try:
        proc = psutil.Process(record.pid)
        if abs(proc.create_time() - record.create_time) > 0.5:
            return None
        if proc.status() == psutil.STATUS_ZOMBIE:
            return None
        return proc
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return None


def alive(record: ProcessRecord | None) -> bool:
    return record is not None and _process(record) is not None


def listening_ports(record: ProcessRecord | None) -> set[int]:
    """The TCP ports the process listens on itself (none once it is gone).

    A port that answers is not proof that our process answers on it: another
    program can take a port between `free_port()` and our process's bind.
    """
    proc = None if record is None else _process(record)
    if proc is None:
        return set()
    try:
        # net_connections since psutil 6; connections before (pyproject allows 5.9).
        sockets = proc.net_connections(kind="tcp") if hasattr(proc, "net_connections") else proc.connections(kind="tcp")
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return set()
    return {sock.laddr.port for sock in sockets if sock.status == psutil.CONN_LISTEN and sock.laddr}


def stop(record: ProcessRecord | None, grace_s: float = 3.0) -> None:
    """SIGTERM, wait up to `grace_s`, then SIGKILL. Safe on dead records."""
    if record is None:
        return
    proc = _process(record)
    if proc is None:
        return
    stop_all([proc], grace_s)


def stop_all(procs: list[psutil.Process], grace_s: float = 3.0) -> None:
    """Stop several processes at once: signal all, then wait once."""
    for proc in procs:
        try:
            proc.send_signal(signal.SIGTERM)
        except psutil.NoSuchProcess:
            pass
    _gone, still = psutil.wait_procs(procs, timeout=grace_s)
    for proc in still:
        try:
            proc.kill()
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(still, timeout=2.0)
    _reap()


def stop_records(records: list[ProcessRecord], grace_s: float = 3.0) -> None:
    procs = [p for p in (_process(r) for r in records) if p is not None]
    if procs:
        stop_all(procs, grace_s)


def exit_reason(record: ProcessRecord, lines: int = 5) -> str:
    """The last lines of a process's log: why it did not come up."""
    try:
        text = Path(record.log).read_text(errors="replace").strip().splitlines()
    except FileNotFoundError:
        return "(no log)"
    return " | ".join(text[-lines:]) or "(empty log)"


@dataclass(frozen=True)
class Usage:
    """One process's CPU and memory, read over a sample window."""

    pid: int
    cpu_percent: float
    """Share of one core over the window, as `top` shows it: 100 is one core busy."""
    cpu_seconds: float
    """User plus system CPU time since the process started."""
    rss_bytes: int
    """Resident set size at the end of the window: the memory the process holds in RAM."""


def cpu_percent(cpu_before_s: float, cpu_after_s: float, wall_s: float) -> float:
    """CPU time used between two readings as a share of one core over `wall_s`."""
    if wall_s <= 0:
        return 0.0
    return max(0.0, (cpu_after_s - cpu_before_s) / wall_s * 100.0)


def sample(records: list[ProcessRecord], window_s: float) -> list[Usage | None]:
    """CPU and memory of several processes over one shared window.

    All processes are read, then one sleep, then all are read again: the
    cost is one window whatever the number of processes, not one per process
    (a lab of 15 processes at 0.5 s each would keep a notebook cell busy for
    7 s). A process that is gone, or whose pid now belongs to another
    process, gives None in its place.
    """
    procs = [_process(r) for r in records]
    before = [_cpu_seconds(p) for p in procs]
    started = time.monotonic()
    time.sleep(window_s)
    wall = time.monotonic() - started
    found: list[Usage | None] = []
    for proc, first in zip(procs, before, strict=True):
        if proc is None or first is None:
            found.append(None)
            continue
        try:
            with proc.oneshot():
                times = proc.cpu_times()
                rss = proc.memory_info().rss
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            found.append(None)
            continue
        after = times.user + times.system
        found.append(Usage(pid=proc.pid, cpu_percent=cpu_percent(first, after, wall), cpu_seconds=after, rss_bytes=int(rss)))
    return found


def _cpu_seconds(proc: psutil.Process | None) -> float | None:
    if proc is None:
        return None
    try:
        times = proc.cpu_times()
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        return None
    return float(times.user + times.system)


def wait_until(predicate: Callable[[], bool], timeout_s: float, interval_s: float = 0.02) -> bool:
    """Poll `predicate` until it is true or `timeout_s` passes."""
    deadline = time.monotonic() + timeout_s
    while True:
        if predicate():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval_s)
