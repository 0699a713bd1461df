"""`python -m meshkit.control` as a process: announce, restart, shutdown, and setup errors."""

from __future__ import annotations

import json
import math
import signal
import socket
import stat
import subprocess
import sys
import threading
from pathlib import Path

import httpx

from tests.integration.control_fixtures import (  # noqa: F401
    STOP_TIMEOUT_S,
    VIRTUAL_SERVICE,
    ControlProcess,
    control,
    instance,
    start,
    wait_until_polling,
)


def run_to_exit(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run a control plane that is expected to refuse to start."""
    return subprocess.run(
        [sys.executable, "-m", "meshkit.control", "--home", str(home), *args],
        capture_output=True, text=True, timeout=30,
    )


def test_control_json_announces_a_listening_server_privately(control: ControlProcess) -> None:
    info = json.loads((control.home / "control.json").read_text())
    assert set(info) == {"url", "admin_token", "pid", "started_at"}
    assert info["pid"] == control.proc.pid
    assert info["url"].startswith("http://127.0.0.1:")
    with control.client() as client:
        assert client.healthz() == {"ok": True, "version": 0}
        client.put_instance(instance("reviews-v1-0", 41000))  # the store file is written by the first commit
    for name in ("control.json", "control-token", "store.json"):
        assert stat.S_IMODE((control.home / name).stat().st_mode) == 0o600, name


def test_sigterm_exits_cleanly_even_with_a_long_poll_open(control: ControlProcess) -> None:
    with control.client() as client:
        token = client.put_instance(instance("reviews-v1-0", 41000))["node_token"]
    outcome: list[object] = []

    def sidecar() -> None:
        try:
            with control.http(token, timeout=60) as http:
                outcome.append(http.get("/v1/snapshot", params={"node": "default/reviews-v1-0", "version": "1"}).status_code)
        except httpx.HTTPError as exc:
            outcome.append(type(exc).__name__)

    thread = threading.Thread(target=sidecar)
    thread.start()
    try:
        wait_until_polling(control, ["default/reviews-v1-0"])
        control.proc.send_signal(signal.SIGTERM)
        assert control.proc.wait(STOP_TIMEOUT_S) == 0
    finally:
        thread.join(30)
    assert outcome == [503], "the open poll is released with 503, not answered with a snapshot"
    assert (control.home / "control.json").exists(), "the launcher checks liveness by pid; the file stays"


def test_a_restart_on_the_same_port_keeps_version_registry_resources_tokens_and_acks(tmp_path: Path) -> None:
    home = tmp_path / "home"
    first = start(home)
    try:
        with first.client() as client:
            node_token = client.put_instance(instance("reviews-v1-0", 41000))["node_token"]
            client.put_resource(VIRTUAL_SERVICE)
            registry = client.registry()
        with first.http(node_token) as http:
            answer = http.post("/v1/ack", json={"node": "default/reviews-v1-0", "version": 2, "status": "ACK"})
            assert answer.status_code == 200
    finally:
        assert first.stop() == 0
    second = start(home, "--port", str(first.port))
    try:
        assert (second.url, second.token) == (first.url, first.token)
        with second.client() as client:
            assert client.healthz()["version"] == 2
            assert client.registry() == registry
            assert client.status()["nodes"]["default/reviews-v1-0"]["acked"] == 2, "a sidecar ACKs once, not again"
            times = client.wait_acked(2, timeout=2.0)
            assert list(times) == ["default/reviews-v1-0"] and math.isnan(times["default/reviews-v1-0"])
            assert client.resources() == [VIRTUAL_SERVICE]
            again = client.put_instance(instance("reviews-v1-0", 41000))
            assert again == {"version": 2, "node_token": node_token, "changed": False}
            assert client.put_resource(VIRTUAL_SERVICE)["version"] == 2
            assert client.delete_resource("VirtualService", "default", "reviews")["version"] == 3
        with second.http(node_token) as http:
            answer = http.get("/v1/snapshot", params={"node": "default/reviews-v1-0", "version": "0", "wait": "0"})
        assert answer.status_code == 200 and answer.json()["version"] == 3
    finally:
        second.stop()


def test_a_taken_port_is_one_clear_line_and_a_failing_exit(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_to_exit(tmp_path / "home", "--port", str(port))
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f"meshkit.control: port {port} on 127.0.0.1 is already in use by another process"]
    assert not (tmp_path / "home" / "control.json").exists()


def test_a_home_that_cannot_be_written_is_one_clear_line(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    result = run_to_exit(blocker / "home")
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"meshkit.control: the lab home {blocker / 'home'} is not writable")


def test_a_damaged_store_is_refused_with_one_clear_line(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    (home / "store.json").write_text("{ half a document")
    result = run_to_exit(home)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "is damaged" in lines[0] and "move it away" in lines[0]


def test_only_loopback_addresses_are_bound(tmp_path: Path) -> None:
    for host, words in (("0.0.0.0", "loopback-only"), ("example.com", "loopback IP address")):
        result = run_to_exit(tmp_path / "home", "--host", host)
        assert result.returncode == 1
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and words in lines[0], lines
