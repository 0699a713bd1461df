"""The resolver file: the local backend's stand-in for cluster DNS.

Format (docs/internals.md, "Demo app spec"): one JSON object mapping each
fully qualified service host to the addresses that serve it,

    {"reviews.default.svc.cluster.local": [["127.0.0.1", 41234], ["127.0.0.1", 41240]],
     "ratings.default.svc.cluster.local": [["127.0.0.1", 41250]]}

The backend rewrites the whole file when instances come and go
(`write_resolver`, atomic: readers see the old file or the new one, never half
of one). A demo app without a sidecar reads it (`Resolver`), re-reading when
the file changes, and spreads its calls over a host's addresses in turn, as
kube-proxy spreads connections over a Service's endpoints.

Names resolve as Kubernetes DNS resolves them from a pod: a bare name is a
service in the caller's namespace, `name.ns` and `name.ns.svc` are completed
to `name.ns.svc.cluster.local`, and anything else is taken as written.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

from meshkit.files import write_atomic
from meshkit.errors import ConfigError, LabError, UnknownWorkload
from meshkit.names import fqdn

_KIND = "resolver file"

Endpoints = tuple[tuple[str, int], ...]


def qualify(name: str, namespace: str) -> str:
    """The fully qualified service host a name means to a caller in `namespace`."""
    return fqdn(name.strip().rstrip(".").lower(), namespace)


def _endpoints(value: object, *, source: str, host: str) -> Endpoints:
    if not isinstance(value, (list, tuple)):
        raise ConfigError(_KIND, source, host, "must be a list of [address, port] pairs")
    endpoints: list[tuple[str, int]] = []
    for index, pair in enumerate(value):
        where = f"{host}[{index}]"
        if not isinstance(pair, (list, tuple)) or len(pair) != 2:
            raise ConfigError(_KIND, source, where, f"must be an [address, port] pair, not {pair!r}")
        address, port = pair
        if not isinstance(address, str) or not address:
            raise ConfigError(_KIND, source, where, f"address must be a non-empty string, not {address!r}")
        if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
            raise ConfigError(_KIND, source, where, f"port must be 1..65535, not {port!r}")
        endpoints.append((address, port))
    return tuple(endpoints)


def parse_resolver(doc: object, *, source: str) -> dict[str, Endpoints]:
    """Validate a decoded resolver document; `source` names it in errors."""
    if not isinstance(doc, dict):
        raise ConfigError(_KIND, source, "", f"must be a JSON object, not {type(doc).__name__}")
    mapping: dict[str, Endpoints] = {}
    for host, value in doc.items():
        if not isinstance(host, str) or not host:
            raise ConfigError(_KIND, source, repr(host), "service host must be a non-empty string")
        mapping[host] = _endpoints(value, source=source, host=host)
    return mapping


def write_resolver(path: str | os.PathLike[str], mapping: Mapping[str, Sequence[tuple[str, int]]]) -> None:
    """Replace the resolver file with `mapping`, atomically (temp file + rename)."""
    target = Path(path)
    checked = parse_resolver(dict(mapping), source=str(target))
    text = json.dumps({host: [list(ep) for ep in eps] for host, eps in sorted(checked.items())})
    try:
        write_atomic(target, text.encode(), mode=0o644)
    except OSError as exc:
        raise LabError(f"cannot write resolver file {target}: {exc.strerror or exc}") from exc


def read_resolver(path: str | os.PathLike[str]) -> dict[str, Endpoints]:
    """Read and validate a resolver file."""
    try:
        with open(path, encoding="utf-8") as handle:
            doc = json.load(handle)
    except OSError as exc:
        raise ConfigError(_KIND, str(path), "", f"cannot read: {exc.strerror or exc}") from exc
    except (UnicodeDecodeError, ValueError) as exc:
        raise ConfigError(_KIND, str(path), "", f"not valid JSON: {exc}") from exc
    return parse_resolver(doc, source=str(path))


class Resolver:
    """Service names to addresses for one demo app, from the resolver file.

    The file is stat'ed on each lookup and re-read only when its identity
    changes: a rename gives it a new inode, so (inode, mtime, size) catches
    every `write_resolver`, even two within one mtime tick.
    """

    def __init__(self, path: str, namespace: str) -> None:
        self.path = path
        self.namespace = namespace
        self._stamp: tuple[int, int, int] | None = None
        self._mapping: dict[str, Endpoints] = {}
        self._turn: dict[str, int] = {}

    def _refresh(self) -> None:
        try:
            info = os.stat(self.path)
        except OSError as exc:
            raise ConfigError(_KIND, self.path, "", f"cannot read: {exc.strerror or exc}") from exc
        stamp = (info.st_ino, info.st_mtime_ns, info.st_size)
        if stamp != self._stamp:
            self._mapping = read_resolver(self.path)
            self._stamp = stamp

    def resolve(self, name: str) -> tuple[str, int]:
        """The next address for `name`, in turn over the host's addresses."""
        self._refresh()
        host = qualify(name, self.namespace)
        endpoints = self._mapping.get(host)
        if not endpoints:
            raise UnknownWorkload(f"no endpoints for {host} in resolver file {self.path}")
        turn = self._turn.get(host, 0)
        self._turn[host] = turn + 1
        return endpoints[turn % len(endpoints)]
