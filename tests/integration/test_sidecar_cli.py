"""`python -m meshkit.sidecar`: bad input is one clear line on stderr and an exit code."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.integration.sidecar_fixtures import bootstrap, snapshot


def run(tmp_path: Path, doc: Any, raw: str | None = None) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "bootstrap.json"
    path.write_text(raw if raw is not None else json.dumps(doc))
    return subprocess.run(
        [sys.executable, "-m", "meshkit.sidecar", "--bootstrap", str(path)], capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL
    )


def test_unknown_bootstrap_key_exits_2_naming_it(tmp_path: Path) -> None:
    result = run(tmp_path, {**bootstrap(static=snapshot("default/client-0", [])), "tls": {}})
    assert result.returncode == 2
    assert "tls" in result.stderr and "Traceback" not in result.stderr


def test_bootstrap_that_is_not_json_exits_2(tmp_path: Path) -> None:
    result = run(tmp_path, None, raw="{oops")
    assert result.returncode == 2 and "not valid JSON" in result.stderr and "Traceback" not in result.stderr


def test_invalid_static_snapshot_exits_2_with_the_field(tmp_path: Path) -> None:
    result = run(tmp_path, bootstrap(static={"version": 1, "node": "default/client-0", "services": {}, "routes": []}))
    assert result.returncode == 2 and "routes" in result.stderr and "Traceback" not in result.stderr


def test_port_in_use_exits_1_naming_the_listener(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        doc = bootstrap(static=snapshot("default/client-0", []))
        doc["outbound"]["port"] = taken.getsockname()[1]
        result = run(tmp_path, doc)
    assert result.returncode == 1
    assert "outbound listener cannot bind" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("argv", "reason"),
    [
        ([], "--bootstrap FILE is required"),
        (["--bootstrap"], "--bootstrap needs a FILE"),
        (["--bootstrap="], "--bootstrap needs a FILE"),
        (["--bootstrap", "a", "--bootstrap", "b"], "--bootstrap is given more than once"),
        (["--bootstrap", "a", "extra"], "unexpected argument 'extra'"),
        (["--port", "1"], "unexpected argument '--port'"),
    ],
)
def test_a_bad_command_line_exits_2_with_usage_and_the_reason(argv: list[str], reason: str) -> None:
    result = subprocess.run([sys.executable, "-m", "meshkit.sidecar", *argv], capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.splitlines() == ["usage: python -m meshkit.sidecar --bootstrap FILE", f"meshkit sidecar: {reason}"]


def test_help_prints_usage_and_exits_0() -> None:
    result = subprocess.run([sys.executable, "-m", "meshkit.sidecar", "--help"], capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)
    assert result.returncode == 0 and result.stdout.startswith("usage: python -m meshkit.sidecar --bootstrap FILE")
    assert "--bootstrap FILE  bootstrap JSON file" in result.stdout


def test_bootstrap_given_with_equals_is_read(tmp_path: Path) -> None:
    path = tmp_path / "bootstrap.json"
    path.write_text("{oops")
    result = subprocess.run([sys.executable, "-m", "meshkit.sidecar", f"--bootstrap={path}"], capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)
    assert result.returncode == 2 and "not valid JSON" in result.stderr
