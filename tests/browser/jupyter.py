"""A JupyterLab server for one browser test, started and stopped by the test.

`jupyter_lab(notebooks, home, logs)` copies the notebooks into a temporary
root, starts the venv's `jupyter lab` on a free loopback port with a random
token, waits until it answers, and yields a `Server`. On the way out, even
after a failure, it stops everything the server started: the kernels (via
the server's shutdown API, then by process id), the lab the notebook
started (Lab(home).down()), and any process of that lab still alive.

The server gets its own Jupyter config, data, runtime, settings and
workspace folders, so a developer's ~/.jupyter changes nothing, and a lab
home of its own (MESHKIT_HOME, inherited by the kernel). MESHKIT_HEADLESS is
removed from its environment: the point is that the dashboard finds out by
itself that a Jupyter server started its kernel (JPY_SESSION_NAME).
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psutil

START_TIMEOUT_S = 90.0
STOP_TIMEOUT_S = 15.0

# JupyterLab user settings for the test: every cell in the DOM (no windowing,
# so a test can see every prompt), and no news or update checks (the machine
# has no network, and a toast would cover the notebook).
SETTINGS: dict[str, dict[str, object]] = {
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {
        "fetchNews": "false",
        "checkForUpdates": False,
    },
}


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def jupyter_command() -> Path:
    """The `jupyter` of the Python running the tests (the project's venv)."""
    return Path(sys.executable).parent / "jupyter"


@dataclass
class Server:
    url: str
    token: str
    root: Path
    home: Path
    process: subprocess.Popen[bytes]
    log: Path
    processes: dict[int, psutil.Process] = field(default_factory=dict)

    def page_url(self, path: str) -> str:
        return f"{self.url}lab/tree/{path}?token={self.token}"

    def api(self, path: str, method: str = "GET", timeout: float = 5.0) -> object:
        request = urllib.request.Request(f"{self.url}api/{path}", method=method,
                                         headers={"Authorization": f"token {self.token}"})
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - loopback only
            body = response.read()
        return json.loads(body) if body else None

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def remember_children(self) -> None:
        """Note every process the server started so far (kernels, and what they started)."""
        with contextlib.suppress(psutil.Error):
            for child in psutil.Process(self.process.pid).children(recursive=True):
                self.processes.setdefault(child.pid, child)


def server_environment(home: Path, state: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JUPYTER", "JPY_", "MESHKIT_"))}
    env.pop("IPYTHONDIR", None)
    env.update(
        MESHKIT_HOME=str(home),
        MESHKIT_PROGRESS=str(progress_file(home)),  # the quiz's progress, never the tester's own
        MESHKIT_LEARNER="browser-test",
        JUPYTER_CONFIG_DIR=str(state / "config"),
        JUPYTER_DATA_DIR=str(state / "data"),
        JUPYTER_RUNTIME_DIR=str(state / "runtime"),
        JUPYTERLAB_SETTINGS_DIR=str(state / "settings"),
        JUPYTERLAB_WORKSPACES_DIR=str(state / "workspaces"),
        IPYTHONDIR=str(state / "ipython"),
        PYTHONUNBUFFERED="1",
    )
    return env


def progress_file(home: Path) -> Path:
    """Where the server's kernels save quiz progress: beside the lab home, inside the test's tmp."""
    return home.parent / "progress.jsonl"


def write_settings(settings_dir: Path) -> None:
    for relative, values in SETTINGS.items():
        target = settings_dir / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(values))


def wait_until_up(server: Server, deadline: float) -> None:
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"jupyter lab exited with {server.process.returncode}:\n{server.log_tail()}")
        try:
            server.api("status", timeout=2.0)
            return
        except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
            time.sleep(0.25)
    raise RuntimeError(f"jupyter lab did not answer within {START_TIMEOUT_S:.0f} s:\n{server.log_tail()}")


@contextlib.contextmanager
def jupyter_lab(notebooks: Path, tmp: Path, logs: Path) -> Iterator[Server]:
    """Start JupyterLab on a copy of `notebooks` under `tmp`; stop it and all it started on exit."""
    root, home, state = tmp / "notebooks", tmp / "lab", tmp / "jupyter"
    shutil.copytree(notebooks, root, ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
    write_settings(state / "settings")
    logs.mkdir(parents=True, exist_ok=True)
    log = logs / "jupyter-lab.log"
    port, token = free_port(), secrets.token_hex(16)
    command = [
        str(jupyter_command()), "lab", "--no-browser",
        "--ip=127.0.0.1", f"--port={port}", "--port-retries=0",
        f"--IdentityProvider.token={token}",
        f"--ServerApp.root_dir={root}",
        "--LabApp.news_url=",
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
    ]
    if os.geteuid() == 0:
        command.append("--allow-root")
    with log.open("wb") as out:
        process = subprocess.Popen(command, cwd=root, env=server_environment(home, state), stdout=out,
                                   stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
    server = Server(f"http://127.0.0.1:{port}/", token, root, home, process, log)
    try:
        wait_until_up(server, time.monotonic() + START_TIMEOUT_S)
        yield server
    finally:
        stop(server)


def stop(server: Server) -> None:
    """Stop the kernels, the server, the notebook's lab, and any process of theirs left over."""
    server.remember_children()
    if server.process.poll() is None:
        with contextlib.suppress(Exception):
            server.api("shutdown", method="POST")
        try:
            server.process.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(server.process.pid, signal.SIGTERM)
            try:
                server.process.wait(5)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(server.process.pid, signal.SIGKILL)
                server.process.wait(5)
    with contextlib.suppress(Exception):
        from meshkit.lab import Lab

        Lab(home=server.home).down()
    end_processes([*server.processes.values(), *lab_processes(server.home)])


def lab_processes(home: Path) -> list[psutil.Process]:
    """Processes started for the lab in `home` (their environment names it), other than this one."""
    found: list[psutil.Process] = []
    for process in psutil.process_iter(["pid"]):
        if process.pid == os.getpid():
            continue
        with contextlib.suppress(psutil.Error):
            if process.environ().get("MESHKIT_HOME") == str(home):
                found.append(process)
    return found


def end_processes(processes: list[psutil.Process]) -> None:
    """SIGTERM each process still alive (psutil checks it is still the same process), then SIGKILL what is left."""
    alive: list[psutil.Process] = []
    for process in processes:
        with contextlib.suppress(psutil.Error):
            if not process.is_running():
                continue
            process.terminate()
            alive.append(process)
    _, left = psutil.wait_procs(alive, timeout=5)
    for process in left:
        with contextlib.suppress(psutil.Error):
            process.kill()
    psutil.wait_procs(left, timeout=5)
