"""The control plane's state: a global version, the registry and the resources.

The operations are pure functions from one `State` to the next, so they are
tested without files or sockets; `Store` adds the one piece of I/O, writing
`store.json` atomically before a change counts as committed. An operation that
changes nothing returns the very same State object, which is how callers know
not to bump the version or wake any sidecar.

States are treated as immutable: operations copy the mapping they change and
never modify a record after it is stored.
"""

from __future__ import annotations

import errno
import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from meshkit.files import write_atomic
from meshkit.control.registry import node_id
from meshkit.control.resources import ResourceKey
from meshkit.errors import ControlPlaneError

FORMAT = 1


@dataclass(frozen=True)
class State:
    """Everything the control plane persists.

    version:     bumped by one on every committed change; never goes back.
    instances:   node id -> instance record (docs/internals.md).
    node_tokens: node id -> the token its sidecar presents.
    resources:   "kind/namespace/name" -> resource document.
    """

    version: int = 0
    instances: dict[str, dict[str, Any]] = field(default_factory=dict)
    node_tokens: dict[str, str] = field(default_factory=dict)
    resources: dict[str, dict[str, Any]] = field(default_factory=dict)


def put_instance(state: State, record: dict[str, Any], new_token: str) -> State:
    """Register or replace an instance; `new_token` is used only for a node that has none."""
    nid = node_id(record["namespace"], record["instance"])
    if state.instances.get(nid) == record:
        return state
    tokens = state.node_tokens if nid in state.node_tokens else {**state.node_tokens, nid: new_token}
    return replace(state, version=state.version + 1, instances={**state.instances, nid: record}, node_tokens=tokens)


def delete_instance(state: State, namespace: str, instance: str) -> State:
    """Remove an instance and revoke its node token: its sidecar is gone."""
    nid = node_id(namespace, instance)
    if nid not in state.instances:
        return state
    instances = {k: v for k, v in state.instances.items() if k != nid}
    tokens = {k: v for k, v in state.node_tokens.items() if k != nid}
    return replace(state, version=state.version + 1, instances=instances, node_tokens=tokens)


def put_resource(state: State, key: ResourceKey, obj: dict[str, Any]) -> State:
    """Store a checked resource under its key."""
    if state.resources.get(key.text) == obj:
        return state
    return replace(state, version=state.version + 1, resources={**state.resources, key.text: obj})


def put_resources(state: State, items: list[tuple[ResourceKey, dict[str, Any]]]) -> State:
    """Store several checked resources as one change: one version, one push.

    What a learner applies together (a DestinationRule and the VirtualService
    that uses its subsets) reaches the sidecars together, never half of it.
    """
    resources = dict(state.resources)
    for key, obj in items:
        resources[key.text] = obj
    if resources == state.resources:
        return state
    return replace(state, version=state.version + 1, resources=resources)


def delete_resource(state: State, key: ResourceKey) -> State:
    """Remove a resource; deleting one that is not there changes nothing."""
    if key.text not in state.resources:
        return state
    resources = {k: v for k, v in state.resources.items() if k != key.text}
    return replace(state, version=state.version + 1, resources=resources)


def bump(state: State) -> State:
    """The same state under a new version: for a change that lives outside the store
    (the CA's roots) but must reach every sidecar in a new snapshot."""
    return replace(state, version=state.version + 1)


def state_to_json(state: State) -> dict[str, Any]:
    """The document written to store.json."""
    return {
        "format": FORMAT,
        "version": state.version,
        "instances": state.instances,
        "node_tokens": state.node_tokens,
        "resources": state.resources,
    }


def state_from_json(document: Any) -> State:
    """Read store.json's document back, refusing anything this code did not write."""
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise ValueError(f"not a meshkit store (expected a mapping with format {FORMAT})")
    version = document.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 0:
        raise ValueError("version must be a non-negative integer")
    parts: dict[str, dict[str, Any]] = {}
    for name in ("instances", "node_tokens", "resources"):
        part = document.get(name)
        if not isinstance(part, dict):
            raise ValueError(f"{name} must be a mapping")
        parts[name] = part
    return State(version=version, **parts)


class Store:
    """The committed State and its file; a change counts once it is on disk."""

    def __init__(self, path: Path, state: State) -> None:
        self.path = path
        self.state = state

    @classmethod
    def open(cls, path: Path) -> Store:
        """Load `path`, or start empty at version 0 when it does not exist yet."""
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return cls(path, State())
        except (OSError, UnicodeDecodeError) as exc:
            raise ControlPlaneError(f"cannot read the store {path}: {exc}") from exc
        try:
            return cls(path, state_from_json(json.loads(text)))
        except ValueError as exc:
            raise ControlPlaneError(
                f"the store {path} is damaged ({exc}); move it away to start with an empty store"
            ) from exc

    def commit(self, new: State) -> bool:
        """Make `new` the committed state; False (and no write) when nothing changed."""
        if new is self.state:
            return False
        data = json.dumps(state_to_json(new), sort_keys=True, separators=(",", ":")).encode()
        try:
            write_atomic(self.path, data)
        except OSError as exc:
            raise ControlPlaneError(store_write_failure(self.path, self.state.version, exc)) from exc
        self.state = new
        return True


def store_write_failure(path: Path, version: int, exc: OSError) -> str:
    """Why a change was not saved, and that nothing changed.

    A learner's next step depends on both: a full disk needs space freed
    (write_atomic has removed its partial file, so the retry starts clean),
    while the lab keeps running the last saved config meanwhile.
    """
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        cause = f"the disk holding {path} is full ({exc.strerror})"
        advice = "; free some space and apply again"
    elif exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        cause = f"{path} cannot be written ({exc.strerror})"
        advice = ""
    else:
        cause = f"writing {path} failed ({exc.strerror or exc})"
        advice = ""
    return f"the change was not saved: {cause}; nothing changed (the lab still runs config version {version}){advice}"
