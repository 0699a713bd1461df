"""Where each request goes: the outbound and inbound handlers.

The decisions themselves are pure functions in meshkit.core (which host an
authority names, which rule matches, which destination the weights pick,
whether a fault hits); this module holds the per-snapshot `RoutingTable`
they run on and the two handlers that apply them to an `Exchange`. A table
is built whole from a snapshot and swapped in with one assignment; an
exchange reads `state.table` once at dispatch, so a request in flight keeps
the rules it started with (the clusters they point to are live objects that
survive the swap, with their counts).
"""

from __future__ import annotations

import random
import time
from typing import TYPE_CHECKING

from meshkit.core.edits import rewrite_path
from meshkit.core.framing import RequestHead, build_request_head
from meshkit.core.peer import Peer, decode_peer, encode_peer
from meshkit.core.ratelimit import RateLimiter
from meshkit.core.routes import HostRoutes, RouteTable, compile_routes, injected_abort, injected_delay
from meshkit.core.snapshot import Snapshot, service_host
from meshkit.core.tracing import RandomBits, hop_ids
from meshkit.sidecar.bootstrap import Workload
from meshkit.sidecar.cluster import SOURCE, Cluster, ClusterSet
from meshkit.sidecar.mirror import Shadow, shadow_authority
from meshkit.sidecar.mtls import admit
from meshkit.sidecar.telemetry import UNKNOWN, Route, Telemetry
from meshkit.sidecar.upstream import Pool

if TYPE_CHECKING:
    from meshkit.sidecar.exchange import Exchange
    from meshkit.sidecar.mtls import PeerInfo
    from meshkit.sidecar.state import MeshState

DESTINATION = "destination"
# Inbound routes are cached by the raw peer header; past this many distinct
# values they are decoded per request (and Telemetry caps the label sets).
MAX_PEER_CACHE = 1000
NO_CONFIG_DETAIL = (
    "The sidecar has not received a configuration yet, so it does not know where anything is. "
    "Check that the control plane is running; the sidecar keeps retrying."
)


class RoutingTable:
    """Everything routing needs from one snapshot, precomputed."""

    __slots__ = ("snapshot", "routes", "limiters")

    def __init__(self, snapshot: Snapshot, routes: RouteTable[Cluster], limiters: tuple[RateLimiter, ...]) -> None:
        self.snapshot = snapshot
        self.routes = routes
        self.limiters = limiters


def build_table(
    snapshot: Snapshot,
    workload: Workload,
    clusters: ClusterSet,
    previous: RoutingTable | None,
) -> RoutingTable:
    """The routing table for `snapshot`, as seen from `workload`.

    Clusters are made or updated through `clusters`; rate limits whose
    resource is unchanged keep their bucket, so a config change elsewhere
    does not hand out a fresh burst of tokens.
    """
    routes = compile_routes(snapshot, workload.namespace, workload.labels, clusters.maker())
    clusters.retain(routes.clusters)
    kept = {limiter.spec: limiter for limiter in previous.limiters} if previous is not None else {}
    now = time.monotonic()
    limiters = tuple(kept.get(spec) or RateLimiter(spec, now) for spec in snapshot.rate_limits)
    return RoutingTable(snapshot, routes, limiters)


def no_route_detail(authority: bytes, table: RoutingTable) -> str:
    """Tell the learner what was asked for and what exists."""
    host = authority.decode("latin-1")
    hosts = table.routes.hosts
    shown = ", ".join(hosts[:10]) + (", ..." if len(hosts) > 10 else "")
    if not host:
        return "The request names no host (no Host header or URL authority), so no service can match."
    return f"No service matches host {host!r}. Services this sidecar knows: {shown or 'none'}."


def no_rule_detail(head: RequestHead, routes: HostRoutes[Cluster]) -> str:
    """Why a request to a known host matched none of its rules."""
    names = ", ".join(rule.name for rule in routes.rules) or "none apply to this workload (sourceLabels)"
    return (
        f"{routes.source} routes {routes.host}, and none of its rules ({names}) matches "
        f"{head.method.decode('latin-1')} {head.path.decode('latin-1')[:200]}. "
        "On Istio too, a request that matches no rule gets 404 NR: add a last rule without match as the default."
    )


def stamp_ids(exchange: Exchange, head: RequestHead, bits: RandomBits) -> bytes:
    """Give the exchange its request and trace ids; the header lines carrying them on."""
    ids = hop_ids(head.request_id, head.traceparent, head.tracestate, bits)
    exchange.request_id = ids.request_id
    exchange.trace_id = ids.trace_id
    exchange.span_id = ids.span_id
    exchange.parent_span_id = ids.parent_span_id
    return ids.header_lines


class OutboundHandler:
    """The app's HTTP proxy: route, apply the rule's policies, forward."""

    def __init__(self, state: MeshState, workload: Workload, telemetry: Telemetry, bits: RandomBits, rng: random.Random) -> None:
        self.state = state
        self.bits = bits
        self.rng = rng
        peer = Peer(workload.name, workload.namespace, workload.version, workload.service_account)
        self.peer_line = b"x-meshkit-peer: %s\r\n" % encode_peer(peer)
        self.unknown_route = telemetry.route(SOURCE, workload.name, workload.version, UNKNOWN, UNKNOWN, UNKNOWN)

    def dispatch(self, exchange: Exchange) -> None:
        head = exchange.head
        assert head is not None
        trace_lines = stamp_ids(exchange, head, self.bits)
        table = self.state.table
        if table is None:
            exchange.route = self.unknown_route
            exchange.respond_local("NC", NO_CONFIG_DETAIL)
            return
        routes = table.routes.resolve(head.authority.decode("latin-1"))
        if routes is None:
            exchange.route = self.unknown_route
            exchange.respond_local("NR", no_route_detail(head.authority, table))
            return
        selected = routes.select(head.method, head.path, head.headers, head.authority)
        if selected is None:
            exchange.route = self.unknown_route
            exchange.respond_local("NR", no_rule_detail(head, routes))
            return
        rule, match = selected
        random_ = self.rng.random
        destination = rule.pick(rule.next_draw()) if len(rule.destinations) > 1 else rule.destinations[0]
        cluster = destination.cluster
        if cluster is None:
            exchange.route = self.unknown_route
            exchange.respond_local(
                "NC",
                f"Rule {rule.name!r} of {routes.source} sends this request to {destination.describe()}, "
                f"but no DestinationRule for {destination.host} defines subset {destination.subset!r}.",
            )
            return
        path = head.path
        if rule.rewrite is not None:
            path = rewrite_path(path, rule.rewrite, match.prefix_length if match is not None else None)
        headers = head.headers
        authority = head.authority
        ops = destination.request_ops
        if ops is not None:
            headers = ops.apply(headers)
            if ops.authority is not None:
                authority = ops.authority
        extra = trace_lines + self.peer_line
        upstream_head = build_request_head(head, authority, extra, path, headers)
        delay = injected_delay(rule, random_() * 100.0) if rule.delay is not None else None
        abort = injected_abort(rule, random_() * 100.0) if rule.abort is not None else None
        shadow = None
        if rule.mirror is not None and abort is None and random_() * 100.0 < rule.mirror_percentage:
            shadow = self._shadow(exchange, rule.mirror.cluster, head, authority, extra, path, headers)
        exchange.route_to(rule, cluster, upstream_head, destination.response_ops, delay, abort, shadow)

    def _shadow(
        self,
        exchange: Exchange,
        cluster: Cluster | None,
        head: RequestHead,
        authority: bytes,
        extra: bytes,
        path: bytes,
        headers: list[tuple[bytes, bytes]],
    ) -> Shadow | None:
        """A mirrored copy for an endpoint of the mirror's cluster, or None when it has none."""
        if cluster is None:
            return None
        host = cluster.pick(None, None)
        if host is None:
            return None
        clock = exchange.down.listener.clock
        shadow_head = build_request_head(head, shadow_authority(authority), extra, path, headers)
        return Shadow(host.pool, shadow_head, head.method, lambda: clock.tick)


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
        """Metric labels for a caller, decoded once per distinct header value (and mTLS identity).

        Over mTLS the certificate has the last word: metadata claiming another
        namespace or service account than the certificate proves is ignored.
        """
        key: object = peer_header if verified is None else (peer_header, verified.uri)
        route = self._routes.get(key)
        if route is None:
            peer = decode_peer(peer_header) or Peer()
            if verified is not None and (peer.namespace, peer.service_account) != (verified.namespace, verified.service_account):
                peer = Peer(namespace=verified.namespace, service_account=verified.service_account)
            w = self.workload
            route = self.telemetry.route(DESTINATION, peer.workload, peer.version, self.service, w.name, w.version, source_namespace=peer.namespace)
            if len(self._routes) < MAX_PEER_CACHE:
                self._routes[key] = route
        return route

    def dispatch(self, exchange: Exchange) -> None:
        head = exchange.head
        assert head is not None
        trace_lines = stamp_ids(exchange, head, self.bits)
        exchange.route = self.route_for(head.peer, exchange.down.peer)
        table = self.state.table
        security = self.state.security
        if table is None or security is None:
            exchange.respond_local("NC", NO_CONFIG_DETAIL)
            return
        # mTLS mode, path normalisation, authorization (meshkit.sidecar.mtls).
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
