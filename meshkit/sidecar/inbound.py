"""The inbound handler: the workload's service port. Label the caller, admit, rate-limit, forward to the app.

Who called is what the mTLS certificate proves, with the workload and
version from the peer metadata header (Istio's metadata exchange) when it
names that same identity; a plaintext caller is `unknown` whatever it claims
(meshkit.core.peer.verified_caller);
whether the request may pass is meshkit.sidecar.admission's, the rate limit
meshkit.core.ratelimit's. An admitted request goes to the app's pool with
no policies (Exchange.forward).
"""

from __future__ import annotations

import time

from meshkit.core.framing import build_request_head
from meshkit.core.peer import decode_peer, verified_caller
from meshkit.core.tracing import RandomBits
from meshkit.names import service_host
from meshkit.sidecar.admission import admit
from meshkit.sidecar.bootstrap import Workload
from meshkit.sidecar.handling import NO_CONFIG_DETAIL, Request, stamp_ids
from meshkit.sidecar.peer_check import PeerInfo
from meshkit.sidecar.state import MeshState
from meshkit.sidecar.telemetry import Route, Telemetry
from meshkit.sidecar.upstream import Pool

DESTINATION = "destination"
# Inbound routes are cached by the raw peer header; past this many distinct
# values they are decoded per request (and Telemetry caps the label sets).
MAX_PEER_CACHE = 1000


class InboundHandler:
    """The workload's service port: label the caller, rate-limit, forward to the app."""

    def __init__(self, state: MeshState, workload: Workload, app_pool: Pool, telemetry: Telemetry, bits: RandomBits) -> None:
        self.state = state
        self.bits = bits
        self.app_pool = app_pool
        self.app_authority = app_pool.label.encode("ascii")
        self.telemetry = telemetry
        self.workload = workload
        self.service = service_host(workload.service, workload.namespace)
        self._routes: dict[object, Route] = {}

    def route_for(self, peer_header: bytes | None, verified: PeerInfo | None = None) -> Route:
        """Metric labels for a caller, decoded once per distinct header value and mTLS identity.

        Without mTLS the header is ignored (every plaintext caller shares one
        `unknown` route), so a spoofed header never reaches a label.
        """
        key: object = None if verified is None else (peer_header, verified.uri)
        route = self._routes.get(key)
        if route is None:
            if verified is None:
                peer = verified_caller(None, None, None)
            else:
                peer = verified_caller(decode_peer(peer_header), verified.namespace, verified.service_account)
            w = self.workload
            route = self.telemetry.route(DESTINATION, peer.workload, peer.version, self.service, w.name, w.version, source_namespace=peer.namespace)
            if len(self._routes) < MAX_PEER_CACHE:
                self._routes[key] = route
        return route

    def dispatch(self, exchange: Request) -> None:
        head = exchange.head
        assert head is not None
        trace_lines = stamp_ids(exchange, head, self.bits)
        exchange.route = self.route_for(head.peer, exchange.down.peer)
        table = self.state.table
        security = self.state.security
        if table is None or security is None:
            exchange.respond_local("NC", NO_CONFIG_DETAIL)
            return
        # mTLS mode, path normalisation, authorization (meshkit.sidecar.admission).
        mesh_lines = admit(exchange, head, security)
        if mesh_lines is None:
            return
        if table.limiters:
            path = head.path.partition(b"?")[0].decode("latin-1")
            now = time.monotonic()
            for limiter in table.limiters:
                if not limiter.admits(path, now):
                    spec = limiter.spec
                    exchange.respond_local(
                        "RL",
                        f"LocalRateLimit {spec.namespace}/{spec.name} allows bursts of {spec.max_tokens} and "
                        f"{spec.tokens_per_fill} more every {spec.fill_interval:g} s; this request found no token left.",
                    )
                    return
        host = head.authority or self.app_authority
        exchange.forward(self.app_pool, build_request_head(head, host, trace_lines + mesh_lines))
