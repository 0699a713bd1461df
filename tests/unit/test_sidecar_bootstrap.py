"""The bootstrap file is checked before anything starts (meshkit.sidecar.bootstrap)."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from meshkit.errors import ConfigError
from meshkit.sidecar.bootstrap import Limits, load_bootstrap, parse_bootstrap

DOC: dict[str, Any] = {
    "node": "default/reviews-v2-0",
    "workload": {"name": "reviews-v2", "namespace": "default", "service": "reviews", "version": "v2", "service_account": "bookinfo-reviews", "labels": {"app": "reviews"}},
    "host": "127.0.0.1",
    "inbound": {"port": 41234, "app_port": 41300},
    "outbound": {"port": 41235},
    "admin": {"port": 41236},
    "control_plane": {"url": "http://127.0.0.1:40001", "token": "node-token"},
    "static_snapshot": None,
}


def changed(**top: Any) -> dict[str, Any]:
    doc = copy.deepcopy(DOC)
    doc.update(top)
    return doc


def test_documented_example_parses() -> None:
    boot = parse_bootstrap(DOC)
    assert boot.node == "default/reviews-v2-0" and boot.workload.service == "reviews"
    assert (boot.inbound_port, boot.app_port, boot.outbound_port, boot.admin_port) == (41234, 41300, 41235, 41236)
    assert boot.control_plane is not None and boot.control_plane.url == "http://127.0.0.1:40001"
    assert boot.limits == Limits()


def test_public_dict_hides_the_token() -> None:
    assert "node-token" not in json.dumps(parse_bootstrap(DOC).public_dict())


def test_admin_token_is_optional_and_never_shown() -> None:
    assert parse_bootstrap(DOC).admin_token is None
    boot = parse_bootstrap(changed(admin={"port": 41236, "token": "admin-token-0123456789"}))
    assert boot.admin_token == "admin-token-0123456789"
    assert "admin-token-0123456789" not in json.dumps(boot.public_dict())


def test_no_inbound_means_outbound_only() -> None:
    boot = parse_bootstrap(changed(inbound=None))
    assert boot.inbound_port is None and boot.app_port is None


def test_limits_extend_the_contract_with_defaults() -> None:
    boot = parse_bootstrap(changed(limits={"request_headers_timeout_s": 1, "max_idle_per_endpoint": 4}))
    assert boot.limits.request_headers_timeout_s == 1.0 and boot.limits.max_idle_per_endpoint == 4
    assert boot.limits.idle_timeout_s == Limits().idle_timeout_s


@pytest.mark.parametrize(
    ("doc", "path"),
    [
        (changed(extra=1), "extra"),
        (changed(node=""), "node"),
        (changed(outbound={"port": 70000}), "outbound.port"),
        (changed(admin={"port": "1"}), "admin.port"),
        (changed(admin={"port": 1, "token": "short"}), "admin.token"),
        (changed(admin={"port": 1, "token": 7}), "admin.token"),
        (changed(admin={"port": 1, "bind": "0.0.0.0"}), "admin.bind"),
        (changed(control_plane={"url": "https://x:1", "token": "t"}), "control_plane.url"),
        (changed(control_plane={"url": "http://x:1"}), "control_plane.token"),
        (changed(control_plane=None), "control_plane"),
        (changed(static_snapshot={"version": 1}), "control_plane"),
        (changed(limits={"nope": 1}), "limits.nope"),
        (changed(limits={"idle_timeout_s": 0}), "limits.idle_timeout_s"),
        (changed(limits={"max_idle_per_endpoint": 1.5}), "limits.max_idle_per_endpoint"),
        (changed(workload={"name": "x"}), "workload.namespace"),
    ],
)
def test_bad_field_is_named(doc: dict[str, Any], path: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_bootstrap(doc)
    assert info.value.path == path


def test_unreadable_and_invalid_files_are_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_bootstrap(tmp_path / "missing.json")
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    with pytest.raises(ConfigError, match="not valid JSON"):
        load_bootstrap(broken)
