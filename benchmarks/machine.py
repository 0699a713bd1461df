"""The machine a benchmark ran on, and the system tools it needs.

A number without its machine is not a result: CPU model, cores, memory,
kernel and tool versions are recorded beside every run. Tools come from
Debian's packages through apt-get, as the rest of the project installs them,
so a fresh machine can run the benchmark with one command.
"""

from __future__ import annotations

import datetime
import os
import platform
import shutil
import subprocess
from pathlib import Path

import psutil

from meshkit.errors import LabError

APT_TIMEOUT_S = 600


def ensure_tool(command: str, package: str, flag: str) -> str:
    """The path of ``command``, installing Debian's ``package`` first if it is missing.

    ``flag`` is the option that skips the part of the benchmark needing it,
    named in the error so the reader has a way forward either way.
    """
    found = shutil.which(command)
    if found:
        return found
    if shutil.which("apt-get") is None or os.geteuid() != 0:
        raise LabError(
            f"{command} is not installed and cannot be installed here (needs apt-get as root): "
            f"install the Debian package {package!r}, or run with {flag}"
        )
    for step in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", package]):
        try:
            done = subprocess.run(
                step,
                capture_output=True,
                text=True,
                timeout=APT_TIMEOUT_S,
                env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
            )
        except subprocess.TimeoutExpired as exc:
            raise LabError(
                f"installing {package}: {' '.join(step)} took over {APT_TIMEOUT_S} s; or run with {flag}"
            ) from exc
        if done.returncode != 0:
            last = (done.stderr.strip().splitlines() or ["(no output)"])[-1]
            raise LabError(f"installing {package}: {' '.join(step)} failed: {last}; or run with {flag}")
    found = shutil.which(command)
    if not found:
        raise LabError(f"installed {package} but {command} is still not on PATH; or run with {flag}")
    return found


def tool_version(argv: list[str]) -> str:
    """The first line a tool prints about its version, or why there is none."""
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"unknown ({exc})"
    lines = (done.stdout + done.stderr).strip().splitlines()
    return lines[0].strip() if lines else "unknown"


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine_facts(haproxy: str | None, wrk: str | None) -> dict[str, str | int | float]:
    """What the results depend on besides the code."""
    facts: dict[str, str | int | float] = {
        "cpu": cpu_model(),
        "cores": os.cpu_count() or 0,
        "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "kernel": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "haproxy": tool_version([haproxy, "-v"]) if haproxy else "not used",
        "wrk": tool_version([wrk, "-v"]) if wrk else "not used",
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
    }
    try:
        import uvloop

        facts["uvloop"] = uvloop.__version__
    except ImportError:
        facts["uvloop"] = "not installed"
    return facts
