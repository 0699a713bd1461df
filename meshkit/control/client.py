"""The admin client the Lab, the CLI and the tests use to drive the control plane.

Synchronous on purpose: notebooks call it from cells and from the Lab's
background thread, and no call here needs to be concurrent. Every transport
error becomes ControlPlaneError with one line naming the URL, a 422 becomes
the ConfigError the control plane described, so nothing from httpx reaches a
learner.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import quote

import httpx

from meshkit.errors import ConfigError, ControlPlaneError, LabNotRunning, UnknownWorkload

ACK_POLL_INTERVAL_S = 0.02
PUSH_HISTORY_MAX = 500


class ControlClient:
    """Admin API client; `token` is the admin token from control.json."""

    def __init__(self, url: str, token: str, timeout: float = 5.0) -> None:
        self.url = url.rstrip("/")
        self._http = httpx.Client(
            base_url=self.url,
            headers={"authorization": f"Bearer {token}"},
            timeout=timeout,
            trust_env=False,  # never send control traffic through the lab's HTTP_PROXY
        )

    @classmethod
    def from_home(cls, home: Path, timeout: float = 5.0) -> ControlClient:
        """The client for the lab in `home`, from the control.json its control plane wrote."""
        path = Path(home) / "control.json"
        try:
            info = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise LabNotRunning(
                f"no control plane is running for the lab in {home} ({path.name} not found): "
                "start the lab with Lab().up() or `meshkit up`"
            ) from None
        except (OSError, ValueError) as exc:
            raise LabNotRunning(f"cannot read {path}: {exc}") from exc
        if not isinstance(info, dict) or not isinstance(info.get("url"), str) or not isinstance(info.get("admin_token"), str):
            raise LabNotRunning(f"{path} does not name a control plane (url and admin_token missing)")
        return cls(info["url"], info["admin_token"], timeout)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> ControlClient:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    # -- the API -------------------------------------------------------------

    def healthz(self) -> dict[str, Any]:
        return self._call("GET", "/healthz")

    def status(self) -> dict[str, Any]:
        return self._call("GET", "/v1/status")

    def registry(self) -> dict[str, Any]:
        return self._call("GET", "/v1/registry")

    def put_instance(self, record: dict[str, Any]) -> dict[str, Any]:
        """Register an instance; the answer carries the version and the node token for its sidecar."""
        for field in ("namespace", "instance"):
            if not isinstance(record.get(field), str) or not record.get(field):
                raise ConfigError("Instance", str(record.get("instance", "?")), field, "required field is missing")
        return self._call("PUT", f"/v1/registry/instances/{_seg(record['namespace'])}/{_seg(record['instance'])}", record)

    def delete_instance(self, namespace: str, instance: str) -> dict[str, Any]:
        return self._call("DELETE", f"/v1/registry/instances/{_seg(namespace)}/{_seg(instance)}")

    def resources(self) -> list[dict[str, Any]]:
        return self._call("GET", "/v1/resources")

    def put_resource(self, obj: dict[str, Any]) -> dict[str, Any]:
        """Store a resource under the kind, namespace and name it declares (namespace defaults to default)."""
        metadata = obj.get("metadata") if isinstance(obj, dict) else None
        kind = obj.get("kind") if isinstance(obj, dict) else None
        name = metadata.get("name") if isinstance(metadata, dict) else None
        if not isinstance(kind, str) or not kind:
            raise ConfigError("resource", str(name or "?"), "kind", "required field is missing")
        if not isinstance(name, str) or not name:
            raise ConfigError(kind, "?", "metadata.name", "required field is missing")
        namespace = metadata.get("namespace") or "default"  # type: ignore[union-attr]
        return self._call("PUT", f"/v1/resources/{_seg(kind)}/{_seg(str(namespace))}/{_seg(name)}", obj)

    def apply(self, objs: list[dict[str, Any]]) -> dict[str, Any]:
        """Store several resources as one change (all or none):
        {"version", "applied": [{"resource", "changed"}], "warnings"}."""
        return self._call("POST", "/v1/apply", {"resources": objs})

    def delete_resource(self, kind: str, namespace: str, name: str) -> dict[str, Any]:
        return self._call("DELETE", f"/v1/resources/{_seg(kind)}/{_seg(namespace)}/{_seg(name)}")

    def snapshot(self, namespace: str, instance: str) -> dict[str, Any]:
        """The snapshot that node would receive now; UnknownWorkload if it is not registered."""
        try:
            return self._call("GET", f"/v1/snapshot/{_seg(namespace)}/{_seg(instance)}")
        except _NotFound as exc:
            raise UnknownWorkload(f"no instance {namespace}/{instance} is registered with the control plane") from exc

    def pushes(self, limit: int = 50, since: int = 0) -> list[dict[str, Any]]:
        """The last `limit` versions (oldest first) with commit time and per-node ACK ms."""
        return self._call("GET", "/v1/pushes", params={"limit": limit, "since": since})

    def telemetry_records(
        self,
        since: float | None = None,
        until: float | None = None,
        trace_id: str | None = None,
        node: str | None = None,
        limit: int | None = None,
        columns: list[str] | None = None,
    ) -> dict[str, Any]:
        """Request records the sidecars pushed: {"columns": [...], "rows": [[...], ...]}, oldest first
        (only `columns` when given)."""
        params = {k: v for k, v in (("since", since), ("until", until), ("trace_id", trace_id), ("node", node), ("limit", limit)) if v is not None}
        if columns:
            params["columns"] = ",".join(columns)
        return self._call("GET", "/v1/telemetry/records", params=params)

    def telemetry_status(self) -> dict[str, Any]:
        """The telemetry store: records held, capacity, evicted, and per sidecar process what arrived and what was lost."""
        return self._call("GET", "/v1/telemetry/status")

    def ca(self) -> dict[str, Any]:
        """The CA: signing root, roots kept from a rotation, and which sidecars still wait for a new certificate."""
        return self._call("GET", "/v1/ca")

    def rotate_root(self) -> dict[str, Any]:
        """Sign under a new root from now on, still trusting the old one; returns the new version and CA state."""
        return self._call("POST", "/v1/ca/rotate")

    def retire_roots(self) -> dict[str, Any]:
        """Trust only the signing root; ControlPlaneError (409) while sidecars still hold old-root certificates."""
        return self._call("POST", "/v1/ca/retire")

    def wait_acked(self, version: int, nodes: list[str] | None = None, timeout: float = 5.0) -> dict[str, float]:
        """Wait until every node runs `version` or newer; node -> ms from the commit to its ACK.

        `nodes` defaults to every node connected when the wait starts. A
        node's time is NaN when the history no longer holds it (after a
        control plane restart, say). Raises ControlPlaneError naming the
        nodes that did not ACK, with their NACK reasons.
        """
        deadline = time.monotonic() + timeout
        status = self.status()
        if nodes is None:
            wanted = sorted(n for n, s in status["nodes"].items() if s["connected"])
        else:
            wanted = list(nodes)
            unknown = [n for n in wanted if n not in status["nodes"]]
            if unknown:
                known = ", ".join(sorted(status["nodes"])) or "none"
                raise ControlPlaneError(f"unknown node(s) {', '.join(unknown)}; the control plane knows: {known}")
        while True:
            pending = {n: status["nodes"].get(n) for n in wanted}
            pending = {n: s for n, s in pending.items() if s is None or s["acked"] < version}
            if not pending:
                return self._ack_times(version, wanted)
            rejected = all(s is not None and s["nacked"] is not None and s["nacked"] >= version for s in pending.values())
            if rejected or time.monotonic() >= deadline:
                raise ControlPlaneError(_not_acked_message(version, pending, timeout, rejected))
            time.sleep(ACK_POLL_INTERVAL_S)
            status = self.status()

    def _ack_times(self, version: int, nodes: list[str]) -> dict[str, float]:
        """For each node, its ACK time for `version`, or for the first later version it ACKed."""
        history = self.pushes(limit=PUSH_HISTORY_MAX, since=version)
        out: dict[str, float] = {}
        for node in nodes:
            out[node] = next((float(p["acks"][node]) for p in history if node in p["acks"]), math.nan)
        return out

    # -- transport -----------------------------------------------------------

    def _call(self, method: str, path: str, body: Any = None, params: dict[str, Any] | None = None) -> Any:
        try:
            response = self._http.request(method, path, json=body, params=params)
        except httpx.HTTPError as exc:
            raise ControlPlaneError(f"control plane at {self.url} is not reachable: {_one_line(exc)}") from exc
        try:
            document = response.json()
        except ValueError:
            document = None
        if response.status_code == 200:
            if document is None:
                raise ControlPlaneError(f"control plane at {self.url} sent a non-JSON answer to {method} {path}")
            return document
        error = document.get("error") if isinstance(document, dict) else None
        message = error or response.reason_phrase or "no details"
        if response.status_code == 422 and isinstance(document, dict):
            raise ConfigError(
                str(document.get("kind", "resource")),
                str(document.get("name", "?")),
                str(document.get("path", "")),
                str(document.get("reason", message)),
            )
        if response.status_code == 404:
            raise _NotFound(f"control plane at {self.url}: {message}")
        if response.status_code == 401:
            raise ControlPlaneError(f"control plane at {self.url} refused the token: {message}")
        raise ControlPlaneError(f"control plane at {self.url} answered {response.status_code} to {method} {path}: {message}")


class _NotFound(ControlPlaneError):
    """A 404; callers that know what was missing turn it into a better error."""


def _seg(value: str) -> str:
    """One URL path segment, with '/' and everything unusual percent-encoded."""
    return quote(str(value), safe="")


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def _not_acked_message(version: int, pending: dict[str, dict[str, Any] | None], timeout: float, rejected: bool) -> str:
    parts = []
    for node in sorted(pending):
        status = pending[node]
        if status is not None and status["nacked"] is not None and status["nacked"] >= version:
            parts.append(f"{node} rejected version {status['nacked']}: {status['reason']}")
        elif status is not None:
            parts.append(f"{node} is at version {status['acked']}")
        else:
            parts.append(f"{node} is no longer registered")
    when = "" if rejected else f" within {timeout:g} s"
    return f"not every sidecar ACKed version {version}{when}: " + "; ".join(parts)
