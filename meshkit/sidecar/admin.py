"""The admin listener: what a learner (or the lab) may ask a sidecar.

    GET /ready              200 once a snapshot is applied and a certificate held, else 503 (open)
    GET /config_dump        node, bootstrap (no token), snapshot, version, last NACK
    GET /stats/prometheus   Istio-named metrics in the text exposition format (open)
    GET /requests?limit=N   the last N requests, oldest first, as JSON
    GET /clusters           outbound clusters: endpoints, breaker counts, outlier state
    GET /certs              identity, certificate, renewal, TLS counters (admin_certs.py)
    GET /telemetry          the exporter: records recorded, logged, pushed, waiting, dropped
    POST /telemetry/flush   log and push every finished request now; answers the status after it

It runs on the same HTTP/1.1 machinery as the proxy listeners (so the same
hardening applies), with a handler that answers every request itself.

Who may ask. Istio binds Envoy's admin to 127.0.0.1:15000 inside the pod,
where only the pod's own containers reach it, and serves health (15021) and
merged metrics (15090/15020) to everyone else. Here every workload shares the
machine's loopback, so the listener is bound to loopback (runtime) and a
bearer token stands in for the pod boundary: /ready and /stats/prometheus
are open, as Istio's health and metrics ports are; every other page (config,
certificates, recent requests with their principals, the exporter, and the
POST that changes state) needs `Authorization: Bearer <admin token>`, the
token the bootstrap names (`admin.token`; the lab gives its control plane's
admin token). A sidecar started without one keeps those pages closed.
"""

from __future__ import annotations

import asyncio
import hmac
import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

from meshkit.sidecar.admin_certs import certs_body
from meshkit.sidecar.cluster import ClusterSet
from meshkit.sidecar.handling import Request
from meshkit.sidecar.state import MeshState
from meshkit.sidecar.telemetry import Telemetry

if TYPE_CHECKING:
    from meshkit.sidecar.telemetry_push import Exporter

JSON = b"application/json"
TEXT = b"text/plain; charset=utf-8"
PROMETHEUS = b"text/plain; version=0.0.4; charset=utf-8"
DEFAULT_REQUESTS_LIMIT = 100
# The pages anyone on the machine may read: health and metrics, as Istio's 15021 and 15090.
OPEN_PAGES = frozenset({b"/ready", b"/stats/prometheus"})


def refusal(path: bytes, authorization: list[bytes], token: str | None) -> tuple[int, str] | None:
    """Why a request for admin `path` is refused (status and message), or None when it may be served.

    `authorization` holds the values of the request's Authorization fields;
    exactly one `Bearer <token>` equal to the sidecar's admin token opens a
    protected page. The comparison takes constant time so its timing does
    not leak a prefix of the token.
    """
    if path in OPEN_PAGES:
        return None
    page = path.decode("latin-1")
    if token is None:
        return 403, (
            f"{page} shows this sidecar's config, certificates or requests and needs the admin token, "
            "but this sidecar was started without one (bootstrap admin.token): the page is closed. "
            "/ready and /stats/prometheus are open.\n"
        )
    if len(authorization) != 1:
        return 401, (
            f"{page} needs the admin token: send Authorization: Bearer <token> "
            "(lab.config_dump(), lab.certificates() and the meshkit CLI send the lab's). "
            "/ready and /stats/prometheus are open.\n"
        )
    scheme, _, given = authorization[0].strip().partition(b" ")
    if scheme.lower() != b"bearer" or not hmac.compare_digest(given.strip(), token.encode("utf-8")):
        return 401, f"{page}: the token is not this sidecar's admin token.\n"
    return None


def _json(value: Any) -> bytes:
    return json.dumps(value, indent=2, sort_keys=False).encode("utf-8") + b"\n"


class AdminHandler:
    """Answers the admin pages from the sidecar's state and telemetry."""

    def __init__(
        self,
        state: MeshState,
        telemetry: Telemetry,
        clusters: ClusterSet,
        addresses: Callable[[], dict[str, str]],
        exporter: Exporter | None = None,
        token: str | None = None,
    ) -> None:
        self.state = state
        self.token = token
        self.telemetry = telemetry
        self.clusters = clusters
        self.addresses = addresses
        self.exporter = exporter
        self.tasks: set[asyncio.Task[None]] = set()
        self.pages: dict[bytes, Callable[[Request, bytes], None]] = {
            b"/ready": self.ready,
            b"/config_dump": self.config_dump,
            b"/stats/prometheus": self.prometheus,
            b"/requests": self.requests,
            b"/clusters": self.cluster_page,
            b"/telemetry": self.telemetry_page,
            b"/certs": lambda exchange, query: exchange.respond(200, JSON, certs_body(self.state)),
        }
        self.posts: dict[bytes, Callable[[Request, bytes], None]] = {
            b"/telemetry/flush": self.flush,
        }

    def dispatch(self, exchange: Request) -> None:
        head = exchange.head
        assert head is not None
        path, _, query = head.path.partition(b"?")
        if head.method == b"POST" and path in self.posts:
            if self.allowed(exchange, path):
                self.posts[path](exchange, query)
            return
        page = self.pages.get(path)
        if page is None:
            known = ", ".join([p.decode() for p in self.pages] + [f"POST {p.decode()}" for p in self.posts])
            exchange.respond(404, TEXT, f"No admin page {path.decode('latin-1')!r}. Pages: {known}\n".encode())
        elif head.method not in (b"GET", b"HEAD"):
            exchange.respond(405, TEXT, b"Admin pages answer GET only.\n")
        elif not self.allowed(exchange, path):
            return
        else:
            page(exchange, query)

    def allowed(self, exchange: Request, path: bytes) -> bool:
        """Answer a refusal when the page needs the token and the request lacks it."""
        head = exchange.head
        assert head is not None
        authorization = [value for name, value in head.headers if name.lower() == b"authorization"]
        refused = refusal(path, authorization, self.token)
        if refused is None:
            return True
        exchange.respond(refused[0], TEXT, refused[1].encode("utf-8"))
        return False

    def ready(self, exchange: Request, query: bytes) -> None:
        if self.state.ready:
            exchange.respond(200, TEXT, f"ready: config version {self.state.version}\n".encode())
        else:
            exchange.respond(503, TEXT, f"not ready: {self.state.waiting_for}\n".encode())

    def config_dump(self, exchange: Request, query: bytes) -> None:
        state = self.state
        body = {
            "node": state.bootstrap.node,
            "ready": state.ready,
            "version": state.version,
            "applied_at": state.applied_at,
            "last_nack": None if state.last_nack is None else {"version": state.last_nack_version, "reason": state.last_nack},
            "listeners": self.addresses(),
            "bootstrap": state.bootstrap.public_dict(),
            "snapshot": state.document,
        }
        exchange.respond(200, JSON, _json(body))

    def prometheus(self, exchange: Request, query: bytes) -> None:
        exchange.respond(200, PROMETHEUS, self.telemetry.prometheus(self.state.version).encode("utf-8"))

    def requests(self, exchange: Request, query: bytes) -> None:
        values = parse_qs(query.decode("latin-1")).get("limit", [str(DEFAULT_REQUESTS_LIMIT)])
        raw = values[-1]
        if not raw.isdecimal() or len(raw) > 9 or int(raw) < 1:
            exchange.respond(400, TEXT, f"limit must be a positive integer, got {raw!r}\n".encode())
            return
        exchange.respond(200, JSON, _json(self.telemetry.recent(int(raw))))

    def cluster_page(self, exchange: Request, query: bytes) -> None:
        exchange.respond(200, JSON, _json(self.clusters.describe()))

    def telemetry_page(self, exchange: Request, query: bytes) -> None:
        if self.exporter is None:
            exchange.respond(200, JSON, _json({"recorded": self.telemetry.recorded, "dropped": self.telemetry.dropped}))
        else:
            exchange.respond(200, JSON, _json(self.exporter.status()))

    def flush(self, exchange: Request, query: bytes) -> None:
        """Flush in a task; the answer goes out when the push is done (or has failed)."""
        exporter = self.exporter
        if exporter is None or not exporter.active:
            self.telemetry_page(exchange, query)
            return

        async def run() -> None:
            try:
                status = await exporter.flush()
            except Exception as exc:  # answer the learner, whatever happened
                if not exchange.finished:
                    exchange.respond(500, TEXT, f"flush failed: {exc}\n".encode())
                return
            if not exchange.finished and not exchange.down.closed:
                exchange.respond(200, JSON, _json(status))

        task = asyncio.get_running_loop().create_task(run())
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
