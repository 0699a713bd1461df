"""The control plane's admin and sidecar API (docs/internals.md), as an ASGI app.

The route table in `ControlPlane.__init__` is the whole API. Handlers parse
and check input, call the pure functions (registry, resources, store,
snapshot) and commit; all I/O is the store file and the response.

Status codes: 400 malformed request, 401 missing or wrong token, 404 unknown
path or node, 405 wrong method, 413 body too large, 422 a record or resource
that is well-formed JSON but invalid (body carries kind, name, path, reason),
500 the store could not be saved, 503 shutting down.
"""

from __future__ import annotations

import hmac
import logging
import math
import secrets
import time
from datetime import datetime, timezone
from pathlib import Path

from meshkit.control import store as ops
from meshkit.control.acks import HISTORY_VERSIONS, AckBook
from meshkit.control.asgi import (
    HttpError,
    Receive,
    Request,
    Response,
    Scope,
    Send,
    error_response,
    read_request,
    send_response,
)
from meshkit.files import read_json_or_none, write_json_atomic
from meshkit.control.push import DEFAULT_DEBOUNCE_S, Publisher
from meshkit.control.registry import check_instance, check_service_port, node_id, registry_view
from meshkit.control.resources import ResourceKey, check_resource
from meshkit.control.routing import Route, Router
from meshkit.control.ca_api import parse_certificate_request, sign_certificate
from meshkit.control.snapshot import build_snapshot
from meshkit.control.validation import validate_batch, validate_resource
from meshkit.control.store import Store
from meshkit.control.otlp import OtlpExporter
from meshkit.control.telemetry import BadBatch, TelemetrySink
from meshkit.errors import ConfigError, ControlPlaneError
from meshkit.control.ca_rotation import ca_status, retire_refusal
from meshkit.security import ca_store
from meshkit.security.ca import CertificateAuthority, drop_previous_roots, rotate
from meshkit.security.errors import CAStoreError
from meshkit.security.renewal import key_id

log = logging.getLogger("meshkit.control")

DEFAULT_WAIT_S = 30.0
MAX_WAIT_S = 60.0
MAX_REASON_CHARS = 1000


class ControlPlane:
    """The ASGI app: one store, one publisher, one ack book, one admin token."""

    def __init__(
        self,
        store: Store,
        admin_token: str,
        debounce: float = DEFAULT_DEBOUNCE_S,
        reports: Path | None = None,
        ca: CertificateAuthority | None = None,
        telemetry: TelemetrySink | None = None,
        otlp: OtlpExporter | None = None,
        ca_dir: Path | None = None,
    ) -> None:
        self.store = store
        # Where a rotated CA is saved (None: kept in memory only, as in tests of the API alone).
        self.ca_dir = ca_dir
        # node -> key id of the root that signed its latest certificate (meshkit.control.ca_rotation).
        self.issued: dict[str, str | None] = {}
        self.telemetry = telemetry if telemetry is not None else TelemetrySink()
        self.otlp = otlp
        if otlp is not None:
            self.telemetry.forward = otlp.offer
        self.ca = ca
        self.admin_token = admin_token
        self.publisher = Publisher(store.state, debounce)
        self.acks = AckBook()
        self.reports = reports
        if reports is not None:
            self.acks.load_reports(read_json_or_none(reports), store.state.version)
        self.router = Router()
        add = self.router.add
        add("GET", "/healthz", self.healthz, "none")
        add("GET", "/v1/status", self.status, "admin")
        add("GET", "/v1/registry", self.registry, "admin")
        add("PUT", "/v1/registry/instances/{namespace}/{instance}", self.put_instance, "admin")
        add("DELETE", "/v1/registry/instances/{namespace}/{instance}", self.delete_instance, "admin")
        add("GET", "/v1/resources", self.resources, "admin")
        add("POST", "/v1/apply", self.apply, "admin")
        add("POST", "/v1/certificates", self.certificates, "node")
        add("GET", "/v1/ca", self.ca_state, "admin")
        add("POST", "/v1/ca/rotate", self.rotate_root, "admin")
        add("POST", "/v1/ca/retire", self.retire_roots, "admin")
        add("PUT", "/v1/resources/{kind}/{namespace}/{name}", self.put_resource, "admin")
        add("DELETE", "/v1/resources/{kind}/{namespace}/{name}", self.delete_resource, "admin")
        add("GET", "/v1/snapshot/{namespace}/{instance}", self.node_snapshot, "admin")
        add("GET", "/v1/pushes", self.pushes, "admin")
        add("GET", "/v1/snapshot", self.long_poll, "node")
        add("POST", "/v1/ack", self.ack, "node")
        add("POST", "/v1/telemetry", self.push_telemetry, "node")
        add("GET", "/v1/telemetry/records", self.telemetry_records, "admin")
        add("GET", "/v1/telemetry/status", self.telemetry_status, "admin")

    # -- ASGI ----------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        try:
            request = await read_request(scope, receive)
            route, request.params = self.router.resolve(request.method, request.raw_path)
            self._authorize(route, request)
            response = await route.handler(request)
        except HttpError as exc:
            response = error_response(exc)
        except ConfigError as exc:
            response = Response(
                422, {"error": str(exc), "kind": exc.kind, "name": exc.name, "path": exc.path, "reason": exc.reason}
            )
        except ControlPlaneError as exc:
            log.error("%s", exc)
            response = Response(500, {"error": str(exc)})
        except Exception:
            log.exception("unexpected error in %s %s", scope.get("method"), scope.get("path"))
            response = Response(500, {"error": "internal error in the control plane; see its log"})
        await send_response(send, response)

    def shutdown(self) -> None:
        """Answer every open long poll now, so shutdown does not wait for them."""
        self.publisher.close()
        self.telemetry.close()
        if self.otlp is not None:
            self.otlp.close()

    # -- auth ----------------------------------------------------------------

    def _authorize(self, route: Route, request: Request) -> None:
        if route.auth == "none":
            return
        token = request.bearer_token()
        if token is None:
            raise unauthorized("missing token: send Authorization: Bearer <token>")
        if self._is_admin(token):
            return
        if route.auth == "node" and any(_same(token, t) for t in self.store.state.node_tokens.values()):
            return
        raise unauthorized("the token is not valid for this endpoint")

    def _is_admin(self, token: str | None) -> bool:
        return token is not None and _same(token, self.admin_token)

    def _require_node(self, request: Request, node: str) -> None:
        """A sidecar call must carry the token of the node it names (or the admin token)."""
        token = request.bearer_token()
        if self._is_admin(token):
            if node not in self.store.state.instances:
                raise HttpError(404, f"node {node!r} is not registered")
            return
        expected = self.store.state.node_tokens.get(node)
        if token is None or expected is None or not _same(token, expected):
            raise unauthorized(f"the token is not the node token of {node!r}")

    # -- commits -------------------------------------------------------------

    def _commit(self, new: ops.State) -> bool:
        changed = self.store.commit(new)
        if changed:
            self.acks.committed(new.version, time.time(), time.monotonic())
            self.publisher.committed(new)
        return changed

    def _save_reports(self) -> None:
        """Keep the nodes' reports across a restart; failing to is logged, never fatal."""
        if self.reports is None:
            return
        try:
            write_json_atomic(self.reports, self.acks.reports_to_json(), durable=False)
        except OSError as exc:
            log.warning("cannot save node reports to %s: %s", self.reports, exc)

    # -- handlers ------------------------------------------------------------

    async def healthz(self, request: Request) -> Response:
        return Response(200, {"ok": True, "version": self.store.state.version})

    async def status(self, request: Request) -> Response:
        """Nodes are registered sidecars, plus registered instances whose node has reported anyway."""
        state = self.store.state
        nodes = [nid for nid, rec in state.instances.items() if rec["sidecar"] or nid in self.acks.nodes]
        return Response(200, self.acks.status(state.version, nodes, time.time()))

    async def registry(self, request: Request) -> Response:
        return Response(200, registry_view(self.store.state.instances))

    async def put_instance(self, request: Request) -> Response:
        namespace, instance = request.params["namespace"], request.params["instance"]
        record = check_instance(request.json(), namespace, instance)
        check_service_port(self.store.state.instances, record)
        changed = self._commit(ops.put_instance(self.store.state, record, _new_token()))
        nid = node_id(namespace, instance)
        state = self.store.state
        return Response(200, {"version": state.version, "node_token": state.node_tokens[nid], "changed": changed})

    async def delete_instance(self, request: Request) -> Response:
        namespace, instance = request.params["namespace"], request.params["instance"]
        changed = self._commit(ops.delete_instance(self.store.state, namespace, instance))
        if changed:
            self.acks.forget(node_id(namespace, instance))
            self._save_reports()
        return Response(200, {"version": self.store.state.version, "changed": changed})

    async def resources(self, request: Request) -> Response:
        resources = self.store.state.resources
        return Response(200, [resources[key] for key in sorted(resources)])

    async def put_resource(self, request: Request) -> Response:
        kind, namespace, name = (request.params[k] for k in ("kind", "namespace", "name"))
        obj = request.json()
        if isinstance(obj, dict) and isinstance(obj.get("metadata"), dict) and "namespace" not in obj["metadata"]:
            obj["metadata"]["namespace"] = namespace
        key = check_resource(obj)
        for field, got, want in (("kind", key.kind, kind), ("metadata.namespace", key.namespace, namespace),
                                 ("metadata.name", key.name, name)):
            if got != want:
                raise ConfigError(key.kind, key.name, field, f"{got!r} does not match {want!r} in the URL")
        warnings = validate_resource(self.store.state, obj)
        changed = self._commit(ops.put_resource(self.store.state, key, obj))
        return Response(200, {"version": self.store.state.version, "changed": changed, "warnings": warnings})

    async def apply(self, request: Request) -> Response:
        """Several resources as one change: all valid and stored under one
        version, or none stored (422 naming the first bad one)."""
        body = request.json()
        objs = body.get("resources") if isinstance(body, dict) else None
        if not isinstance(objs, list) or not objs:
            raise HttpError(400, "expected {\"resources\": [resource, ...]} with at least one resource")
        items = []
        for obj in objs:
            if isinstance(obj, dict) and isinstance(obj.get("metadata"), dict):
                obj["metadata"].setdefault("namespace", "default")
            items.append((check_resource(obj), obj))
        warnings = validate_batch(self.store.state, [obj for _key, obj in items])
        before = self.store.state.resources
        self._commit(ops.put_resources(self.store.state, items))
        applied = [{"resource": key.text, "changed": before.get(key.text) != obj} for key, obj in items]
        return Response(200, {"version": self.store.state.version, "applied": applied, "warnings": warnings})

    async def certificates(self, request: Request) -> Response:
        """Sign a sidecar's CSR for the one identity its registry record
        gives it (the node token proves which node asks)."""
        ca = self._require_ca()
        node, csr = parse_certificate_request(request.json())
        now = datetime.now(timezone.utc)
        answer = sign_certificate(self.store.state, node, request.bearer_token(), csr, ca, now)
        self.issued[node] = key_id(ca.root)
        return Response(200, answer)

    def _require_ca(self) -> CertificateAuthority:
        if self.ca is None:
            raise HttpError(503, "this control plane runs without a CA")
        return self.ca

    async def ca_state(self, request: Request) -> Response:
        return Response(200, ca_status(self.store.state, self.issued, self._require_ca()))

    async def rotate_root(self, request: Request) -> Response:
        """Start signing under a new root, trusting the old one too, and push the new bundle."""
        ca = rotate(self._require_ca(), datetime.now(timezone.utc))
        self._install_ca(ca)
        log.info("root rotated: new signing root %s, %d previous kept", key_id(ca.root), len(ca.previous_roots))
        return Response(200, {"version": self.store.state.version, **ca_status(self.store.state, self.issued, ca)})

    async def retire_roots(self, request: Request) -> Response:
        """Drop the roots kept from a rotation once every sidecar holds a certificate from the new one."""
        ca = self._require_ca()
        refusal = retire_refusal(self.store.state, self.issued, ca)
        if refusal is not None:
            raise HttpError(409, refusal)
        changed = bool(ca.previous_roots)
        if changed:
            ca = drop_previous_roots(ca)
            self._install_ca(ca)
            log.info("previous roots retired: the mesh trusts only %s", key_id(ca.root))
        status = ca_status(self.store.state, self.issued, ca)
        return Response(200, {"version": self.store.state.version, "changed": changed, **status})

    def _install_ca(self, ca: CertificateAuthority) -> None:
        """Save the CA (when it has a home), then push every sidecar a snapshot with its bundle."""
        if self.ca_dir is not None:
            try:
                ca_store.save(self.ca_dir, ca)
            except CAStoreError as exc:
                raise ControlPlaneError(str(exc)) from exc
        self.ca = ca
        self._commit(ops.bump(self.store.state))

    def _trust_bundle(self) -> str | None:
        """The roots sidecars verify peers against; it travels in every snapshot."""
        return None if self.ca is None else self.ca.trust_bundle_pem().decode("ascii")

    async def delete_resource(self, request: Request) -> Response:
        key = ResourceKey(request.params["kind"], request.params["namespace"], request.params["name"])
        changed = self._commit(ops.delete_resource(self.store.state, key))
        return Response(200, {"version": self.store.state.version, "changed": changed})

    async def node_snapshot(self, request: Request) -> Response:
        """Built from the latest commit, not the published state: a learner asking right after
        a change sees it, even inside the few milliseconds before sidecars are woken."""
        nid = node_id(request.params["namespace"], request.params["instance"])
        state = self.store.state
        if nid not in state.instances:
            raise HttpError(404, f"node {nid!r} is not registered")
        return Response(200, build_snapshot(state, nid, self._trust_bundle()))

    async def pushes(self, request: Request) -> Response:
        limit = int_param(request, "limit", 50, 1, HISTORY_VERSIONS)
        since = int_param(request, "since", 0, 0, None)
        return Response(200, self.acks.pushes(limit, since))

    async def long_poll(self, request: Request) -> Response:
        """Sidecars get the published state only, so a burst in progress is delivered once, whole."""
        node = request.query.get("node")
        if not node:
            raise HttpError(400, "query parameter 'node' is required (namespace/instance)")
        self._require_node(request, node)
        version = int_param(request, "version", 0, 0, None) if request.query.get("version") else None
        wait = wait_param(request)
        self.acks.poll_opened(node, time.time())
        try:
            if version is not None and self.publisher.published.version == version:
                changed = await self.publisher.wait_for_change(version, wait, request.disconnected())
                if not changed:
                    if self.publisher.closed:
                        raise HttpError(503, "the control plane is shutting down")
                    return Response(304)
        finally:
            self.acks.poll_closed(node, time.time())
        return Response(200, build_snapshot(self.publisher.published, node, self._trust_bundle()))

    async def ack(self, request: Request) -> Response:
        body = request.json()
        if not isinstance(body, dict):
            raise HttpError(400, "ack body must be a JSON object with node, version, status and reason")
        node = body.get("node")
        if not isinstance(node, str) or not node:
            raise HttpError(400, "ack field 'node' must be a node id string (namespace/instance)")
        self._require_node(request, node)
        version = body.get("version")
        if not isinstance(version, int) or isinstance(version, bool) or version < 0:
            raise HttpError(400, "ack field 'version' must be a non-negative integer")
        if version > self.store.state.version:
            raise HttpError(400, f"ack for version {version}, but the newest version is {self.store.state.version}")
        status = body.get("status")
        reason = body.get("reason")
        if reason is not None and not isinstance(reason, str):
            raise HttpError(400, "ack field 'reason' must be a string or null")
        if status == "ACK":
            self.acks.ack(node, version, time.time(), time.monotonic())
        elif status == "NACK":
            text = (reason or "no reason given")[:MAX_REASON_CHARS]
            self.acks.nack(node, version, text, time.time())
        else:
            raise HttpError(400, "ack field 'status' must be \"ACK\" or \"NACK\"")
        self._save_reports()
        return Response(200, {"ok": True})


    async def push_telemetry(self, request: Request) -> Response:
        """A sidecar's batch of request records (meshkit.control.telemetry)."""
        doc = request.json()
        node = doc.get("node") if isinstance(doc, dict) else None
        if not isinstance(node, str) or not node:
            raise HttpError(400, "telemetry field 'node' must be a node id string (namespace/instance)")
        self._require_node(request, node)
        try:
            return Response(200, self.telemetry.ingest(request.body, doc))
        except BadBatch as exc:
            raise HttpError(400, f"telemetry batch refused: {exc}") from None

    async def telemetry_records(self, request: Request) -> Response:
        """Stored records as {"columns", "rows"}; since/until are unix seconds (start of the request)."""
        since = float_param(request, "since")
        until = float_param(request, "until")
        limit = int_param(request, "limit", 0, 0, None) or None
        columns = [c for c in request.query.get("columns", "").split(",") if c] or None
        try:
            return Response(200, self.telemetry.query(since, until, request.query.get("trace_id") or None,
                                                      request.query.get("node") or None, limit, columns))
        except BadBatch as exc:
            raise HttpError(400, str(exc)) from None

    async def telemetry_status(self, request: Request) -> Response:
        """The store's state, each sidecar's stream, and the OTLP export's (None when not configured)."""
        return Response(200, {**self.telemetry.status(), "otlp": self.otlp.status() if self.otlp is not None else None})


def float_param(request: Request, name: str) -> float | None:
    """An optional finite number query parameter; 400 naming it otherwise."""
    raw = request.query.get(name)
    if raw is None or raw == "":
        return None
    try:
        value = float(raw)
    except ValueError:
        raise HttpError(400, f"query parameter {name!r} must be a number, got {raw!r}") from None
    if not math.isfinite(value):
        raise HttpError(400, f"query parameter {name!r} must be finite, got {raw!r}")
    return value


def unauthorized(message: str) -> HttpError:
    return HttpError(401, message)


def _same(a: str, b: str) -> bool:
    """Constant-time comparison, so response timing does not leak a token prefix."""
    return hmac.compare_digest(a.encode(), b.encode())


def _new_token() -> str:
    return secrets.token_urlsafe(24)


def int_param(request: Request, name: str, default: int, low: int, high: int | None) -> int:
    """An integer query parameter within [low, high]; 400 naming it otherwise."""
    raw = request.query.get(name)
    if raw is None or raw == "":
        return default
    if not (raw.isascii() and raw.isdigit()):
        raise HttpError(400, f"query parameter {name!r} must be a non-negative integer, got {raw!r}")
    value = int(raw)
    if value < low or (high is not None and value > high):
        bound = f"between {low} and {high}" if high is not None else f"at least {low}"
        raise HttpError(400, f"query parameter {name!r} must be {bound}, got {value}")
    return value


def wait_param(request: Request) -> float:
    """Seconds to hold a long poll: default 30, capped at 60 so a lost client frees its slot."""
    wait = float_param(request, "wait")
    if wait is None:
        return DEFAULT_WAIT_S
    if wait < 0:
        raise HttpError(400, f"query parameter 'wait' must be a non-negative number of seconds, got {request.query['wait']!r}")
    return min(wait, MAX_WAIT_S)
