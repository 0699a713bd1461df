"""ControlClient's checks that need no server: finding the lab, refusing nameless input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from meshkit.control.client import ControlClient
from meshkit.errors import ConfigError, LabNotRunning


def test_from_home_without_control_json_says_no_lab_is_running(tmp_path: Path) -> None:
    with pytest.raises(LabNotRunning, match=r"no control plane is running .*Lab\(\)\.up\(\)"):
        ControlClient.from_home(tmp_path)


@pytest.mark.parametrize("text", ["{ half", "[]", json.dumps({"url": "http://127.0.0.1:1"})])
def test_from_home_with_a_broken_control_json_is_a_clear_error(tmp_path: Path, text: str) -> None:
    (tmp_path / "control.json").write_text(text)
    with pytest.raises(LabNotRunning, match="control.json"):
        ControlClient.from_home(tmp_path)


def test_from_home_reads_url_and_token(tmp_path: Path) -> None:
    (tmp_path / "control.json").write_text(json.dumps({"url": "http://127.0.0.1:9/", "admin_token": "t", "pid": 1}))
    with ControlClient.from_home(tmp_path) as client:
        assert client.url == "http://127.0.0.1:9"


def test_nameless_input_is_refused_before_any_request() -> None:
    with ControlClient("http://127.0.0.1:9", "t") as client:
        with pytest.raises(ConfigError, match="metadata.name"):
            client.put_resource({"kind": "VirtualService", "metadata": {}})
        with pytest.raises(ConfigError, match="kind"):
            client.put_resource({"metadata": {"name": "x"}})
        with pytest.raises(ConfigError, match="instance"):
            client.put_instance({"namespace": "default"})
