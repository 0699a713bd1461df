"""Store operations as pure functions, and the store file."""

from __future__ import annotations

import errno
import json
import os
import stat
from pathlib import Path
from typing import Any

import pytest

from meshkit.control import store as ops
from meshkit.control.resources import ResourceKey
from meshkit.control.store import State, Store, state_from_json, state_to_json, store_write_failure
from meshkit.errors import ControlPlaneError


def record(instance: str = "reviews-v1-0", **changes: Any) -> dict[str, Any]:
    base = {
        "instance": instance, "namespace": "default", "workload": "reviews-v1", "service": "reviews",
        "service_port": 9080, "version": "v1", "service_account": "reviews", "labels": {"app": "reviews"},
        "address": "127.0.0.1", "port": 41000, "sidecar": False,
    }
    return {**base, **changes}


VS_KEY = ResourceKey("VirtualService", "default", "reviews")
VS = {"apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
      "metadata": {"name": "reviews", "namespace": "default"}, "spec": {"hosts": ["reviews"]}}


def test_a_new_instance_bumps_the_version_and_gets_the_offered_token() -> None:
    state = ops.put_instance(State(), record(), "tok-1")
    assert state.version == 1
    assert state.instances["default/reviews-v1-0"] == record()
    assert state.node_tokens == {"default/reviews-v1-0": "tok-1"}


def test_an_identical_put_returns_the_same_state_object() -> None:
    state = ops.put_instance(State(), record(), "tok-1")
    assert ops.put_instance(state, record(), "tok-2") is state


def test_a_changed_record_bumps_the_version_and_keeps_the_token() -> None:
    state = ops.put_instance(State(), record(), "tok-1")
    changed = ops.put_instance(state, record(sidecar=True), "tok-2")
    assert changed.version == 2
    assert changed.node_tokens["default/reviews-v1-0"] == "tok-1"
    assert state.instances["default/reviews-v1-0"]["sidecar"] is False, "the old state must not be modified"


def test_delete_removes_the_instance_and_revokes_its_token() -> None:
    state = ops.put_instance(ops.put_instance(State(), record(), "a"), record("reviews-v1-1"), "b")
    after = ops.delete_instance(state, "default", "reviews-v1-0")
    assert after.version == 3
    assert list(after.instances) == ["default/reviews-v1-1"]
    assert after.node_tokens == {"default/reviews-v1-1": "b"}


def test_deleting_a_missing_instance_changes_nothing() -> None:
    state = ops.put_instance(State(), record(), "a")
    assert ops.delete_instance(state, "default", "nope") is state


def test_resources_put_replace_and_delete() -> None:
    state = ops.put_resource(State(), VS_KEY, VS)
    assert state.version == 1 and state.resources == {"VirtualService/default/reviews": VS}
    assert ops.put_resource(state, VS_KEY, json.loads(json.dumps(VS))) is state
    edited = {**VS, "spec": {"hosts": ["reviews", "other"]}}
    state = ops.put_resource(state, VS_KEY, edited)
    assert state.version == 2 and state.resources[VS_KEY.text] == edited
    state = ops.delete_resource(state, VS_KEY)
    assert state.version == 3 and state.resources == {}
    assert ops.delete_resource(state, VS_KEY) is state


def test_json_round_trip_keeps_everything() -> None:
    state = ops.put_resource(ops.put_instance(State(), record(), "t"), VS_KEY, VS)
    assert state_from_json(json.loads(json.dumps(state_to_json(state)))) == state


@pytest.mark.parametrize(
    "document, words",
    [
        ([], "not a meshkit store"),
        ({"format": 99, "version": 1, "instances": {}, "node_tokens": {}, "resources": {}}, "format 1"),
        ({"format": 1, "version": -1, "instances": {}, "node_tokens": {}, "resources": {}}, "version"),
        ({"format": 1, "version": True, "instances": {}, "node_tokens": {}, "resources": {}}, "version"),
        ({"format": 1, "version": 3, "instances": [], "node_tokens": {}, "resources": {}}, "instances"),
        ({"format": 1, "version": 3, "instances": {}, "node_tokens": {}}, "resources"),
    ],
)
def test_a_document_this_code_did_not_write_is_refused(document: Any, words: str) -> None:
    with pytest.raises(ValueError, match=words):
        state_from_json(document)


def test_store_commit_writes_a_private_file_and_reopens_identical(tmp_path: Path) -> None:
    path = tmp_path / "store.json"
    store = Store.open(path)
    assert store.state == State() and not path.exists()
    assert store.commit(ops.put_instance(store.state, record(), "t")) is True
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert Store.open(path).state == store.state
    assert [p.name for p in tmp_path.iterdir()] == ["store.json"], "no temp file may be left behind"


def test_store_commit_of_the_same_state_does_not_write(tmp_path: Path) -> None:
    path = tmp_path / "store.json"
    store = Store.open(path)
    assert store.commit(store.state) is False
    assert not path.exists()


def test_a_damaged_store_file_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "store.json"
    path.write_text('{"format": 1, "vers')
    with pytest.raises(ControlPlaneError, match="damaged.*move it away"):
        Store.open(path)


def test_a_failed_write_leaves_the_committed_state_alone(tmp_path: Path) -> None:
    store = Store(tmp_path / "missing-dir" / "store.json", State())
    with pytest.raises(ControlPlaneError, match=r"not saved: writing .*store.json failed \(No such file or directory\); nothing changed \(the lab still runs config version 0\)$"):
        store.commit(ops.put_instance(store.state, record(), "t"))
    assert store.state == State()


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        (errno.ENOSPC, "the disk holding /lab/store.json is full (No space left on device); nothing changed "
                       "(the lab still runs config version 7); free some space and apply again"),
        (errno.EROFS, "/lab/store.json cannot be written (Read-only file system); nothing changed (the lab still runs config version 7)"),
        (errno.EIO, "writing /lab/store.json failed (Input/output error); nothing changed (the lab still runs config version 7)"),
    ],
)
def test_a_failed_store_write_says_why_and_that_nothing_changed(code: int, expected: str) -> None:
    failure = OSError(code, os.strerror(code))
    assert store_write_failure(Path("/lab/store.json"), 7, failure) == f"the change was not saved: {expected}"
