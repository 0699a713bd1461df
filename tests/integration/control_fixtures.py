"""Start and stop a real `python -m meshkit.control` for the control plane's tests."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from meshkit.control.client import ControlClient

START_TIMEOUT_S = 15.0
STOP_TIMEOUT_S = 10.0
# Generous: the behaviour under test is "promptly, not after the poll's wait".
PROMPT_S = 5.0


@dataclass
class ControlProcess:
    """A running control plane and what a launcher learns from control.json."""

    home: Path
    proc: subprocess.Popen[bytes]
    log: Path
    url: str
    token: str

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])

    def client(self, timeout: float = 5.0) -> ControlClient:
        return ControlClient(self.url, self.token, timeout)

    def http(self, token: str | None = None, timeout: float = 10.0) -> httpx.Client:
        """A raw client, for what ControlClient does not do (sidecar calls, bad requests)."""
        headers = {"authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=timeout, trust_env=False)

    def stop(self) -> int:
        """SIGTERM, then SIGKILL if it does not exit in time; returns the exit status."""
        return stop(self.proc)


def spawn(home: Path, *args: str, log: Path | None = None) -> tuple[subprocess.Popen[bytes], Path]:
    """Start the control plane as the backends do, with stderr in a log file."""
    log = log or home.parent / f"{home.name}-control.log"
    env = {k: v for k, v in os.environ.items() if k.lower() not in ("http_proxy", "https_proxy", "all_proxy")}
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "meshkit.control", "--home", str(home), *args],
            stdout=out, stderr=out, env=env,
        )
    return proc, log


def start(home: Path, *args: str) -> ControlProcess:
    """Spawn and wait for control.json naming this pid, as a launcher does."""
    proc, log = spawn(home, *args)
    deadline = time.monotonic() + START_TIMEOUT_S
    try:
        while time.monotonic() < deadline:
            info = read_control_json(home)
            if info is not None and info.get("pid") == proc.pid:
                return ControlProcess(home, proc, log, info["url"], info["admin_token"])
            if proc.poll() is not None:
                raise AssertionError(f"control plane exited with {proc.returncode}: {log.read_text()}")
            time.sleep(0.02)
        raise AssertionError(f"control plane did not write control.json in {START_TIMEOUT_S} s: {log.read_text()}")
    except BaseException:
        stop(proc)
        raise


def read_control_json(home: Path) -> dict[str, Any] | None:
    try:
        return json.loads((home / "control.json").read_text())
    except FileNotFoundError:
        return None


def stop(proc: subprocess.Popen[bytes]) -> int:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return proc.returncode


@pytest.fixture
def control(tmp_path: Path) -> Iterator[ControlProcess]:
    running = start(tmp_path / "home")
    try:
        yield running
    finally:
        running.stop()


def wait_until_polling(control: ControlProcess, nodes: list[str]) -> None:
    """A node never seen before has a last_seen only once its first poll has arrived."""
    deadline = time.monotonic() + PROMPT_S
    with control.client() as client:
        while time.monotonic() < deadline:
            seen = client.status()["nodes"]
            if all(seen[n]["last_seen"] is not None for n in nodes):
                return
            time.sleep(0.01)
    raise AssertionError(f"not every node started polling: {nodes}")


def instance(name: str, port: int, service: str = "reviews", namespace: str = "default", **changes: Any) -> dict[str, Any]:
    """An instance record as the local backend sends it."""
    workload = name.rsplit("-", 1)[0]
    record = {
        "instance": name, "workload": workload, "namespace": namespace, "service": service,
        "service_port": 9080, "version": workload.rsplit("-", 1)[-1], "service_account": service,
        "labels": {"app": service}, "address": "127.0.0.1", "port": port, "sidecar": True,
    }
    return {**record, **changes}


VIRTUAL_SERVICE = {
    "apiVersion": "networking.istio.io/v1",
    "kind": "VirtualService",
    "metadata": {"name": "reviews", "namespace": "default"},
    "spec": {"hosts": ["reviews"], "http": [{"route": [{"destination": {"host": "reviews"}}]}]},
}
