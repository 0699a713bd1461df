"""Where each request goes: the outbound and inbound handlers.

The decisions themselves are pure functions in meshkit.core (which service a
host names, which endpoint is next); this module holds the per-snapshot
`RoutingTable` they run on and the two handlers that apply them to an
`Exchange`. A table is built whole from a snapshot and swapped in with one
assignment; an exchange reads `state.table` once at dispatch, so a request in
flight keeps the snapshot it started with.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import TYPE_CHECKING

from meshkit.core.balancer import RoundRobin
from meshkit.core.framing import RequestHead, build_request_head
from meshkit.core.peer import Peer, decode_peer, encode_peer
from meshkit.core.services import build_index, normalize_host, resolve
from meshkit.core.snapshot import Service, Snapshot, service_host
from meshkit.core.tracing import RandomBits, hop_ids
from meshkit.sidecar.bootstrap import Workload
from meshkit.sidecar.telemetry import UNKNOWN, Route, Telemetry
from meshkit.sidecar.upstream import Pool, PoolSet

if TYPE_CHECKING:
    from meshkit.sidecar.exchange import Exchange
    from meshkit.sidecar.state import MeshState

SOURCE = "source"
DESTINATION = "destination"
# Inbound routes are cached by the raw peer header; past this many distinct
# values they are decoded per request (and Telemetry caps the label sets).
MAX_PEER_CACHE = 1000
NO_CONFIG_DETAIL = (
    "The sidecar has not received a configuration yet, so it does not know where anything is. "
    "Check that the control plane is running; the sidecar keeps retrying."
)


class Target:
    """An endpoint as routing uses it: its connection pool and its metric labels."""

    __slots__ = ("pool", "route")

    def __init__(self, pool: Pool, route: Route) -> None:
        self.pool = pool
        self.route = route


class ServiceEntry:
    """A service in the table: its balancer over targets, and labels for UH."""

    __slots__ = ("service", "balancer", "route")

    def __init__(self, service: Service, balancer: RoundRobin[Target], route: Route) -> None:
        self.service = service
        self.balancer = balancer
        self.route = route


class RoutingTable:
    """Everything outbound routing needs from one snapshot, precomputed."""

    __slots__ = ("snapshot", "index", "hosts")

    def __init__(self, snapshot: Snapshot, index: dict[str, ServiceEntry]) -> None:
        self.snapshot = snapshot
        self.index = index
        self.hosts = sorted(snapshot.services)


def build_table(
    snapshot: Snapshot,
    workload: Workload,
    pools: PoolSet,
    telemetry: Telemetry,
    start: Callable[[int], int] = random.randrange,
) -> RoutingTable:
    """The routing table for `snapshot`, as seen from `workload`'s namespace."""
    pairs = []
    for service in snapshot.services.values():
        targets = [
            Target(
                pools.get(ep.address, ep.port),
                telemetry.route(SOURCE, workload.name, workload.version, service.host, ep.workload, ep.version),
            )
            for ep in service.endpoints
        ]
        balancer = RoundRobin(targets, start(len(targets)) if targets else 0)
        route = telemetry.route(SOURCE, workload.name, workload.version, service.host, UNKNOWN, UNKNOWN)
        pairs.append((service, ServiceEntry(service, balancer, route)))
    return RoutingTable(snapshot, build_index(pairs, workload.namespace))


def endpoint_keys(snapshot: Snapshot) -> set[tuple[str, int]]:
    """The (address, port) of every endpoint, to keep their pools."""
    return {(ep.address, ep.port) for service in snapshot.services.values() for ep in service.endpoints}


def no_route_detail(authority: bytes, table: RoutingTable) -> str:
    """Tell the learner what was asked for and what exists."""
    host = normalize_host(authority.decode("latin-1"))
    shown = ", ".join(table.hosts[:10]) + (", ..." if len(table.hosts) > 10 else "")
    if not host:
        return "The request names no host (no Host header or URL authority), so no service can match."
    return f"No service matches host {host!r}. Services this sidecar knows: {shown or 'none'}."


def stamp_ids(exchange: Exchange, head: RequestHead, bits: RandomBits) -> bytes:
    """Give the exchange its request and trace ids; the header lines carrying them on."""
    ids = hop_ids(head.request_id, head.traceparent, head.tracestate, bits)
    exchange.request_id = ids.request_id
    exchange.trace_id = ids.trace_id
    return ids.header_lines


class OutboundHandler:
    """The app's HTTP proxy: resolve the host, balance, forward."""

    def __init__(self, state: MeshState, workload: Workload, telemetry: Telemetry, bits: RandomBits) -> None:
        self.state = state
        self.bits = bits
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
        entry = resolve(table.index, head.authority.decode("latin-1"))
        if entry is None:
            exchange.route = self.unknown_route
            exchange.respond_local("NR", no_route_detail(head.authority, table))
            return
        target = entry.balancer.pick()
        if target is None:
            exchange.route = entry.route
            exchange.respond_local("UH", f"Service {entry.service.host} has no endpoints right now.")
            return
        exchange.route = target.route
        exchange.forward(target.pool, build_request_head(head, head.authority, trace_lines + self.peer_line))


class InboundHandler:
    """The workload's service port: label the caller, forward to the app."""

    def __init__(self, state: MeshState, workload: Workload, app_pool: Pool, telemetry: Telemetry, bits: RandomBits) -> None:
        self.state = state
        self.bits = bits
        self.app_pool = app_pool
        self.app_authority = app_pool.label.encode("ascii")
        self.telemetry = telemetry
        self.workload = workload
        self.service = service_host(workload.service, workload.namespace)
        self._routes: dict[bytes | None, Route] = {}

    def route_for(self, peer_header: bytes | None) -> Route:
        """Metric labels for a caller, decoded once per distinct header value."""
        route = self._routes.get(peer_header)
        if route is None:
            peer = decode_peer(peer_header) or Peer()
            w = self.workload
            route = self.telemetry.route(DESTINATION, peer.workload, peer.version, self.service, w.name, w.version)
            if len(self._routes) < MAX_PEER_CACHE:
                self._routes[peer_header] = route
        return route

    def dispatch(self, exchange: Exchange) -> None:
        head = exchange.head
        assert head is not None
        trace_lines = stamp_ids(exchange, head, self.bits)
        exchange.route = self.route_for(head.peer)
        if self.state.table is None:
            exchange.respond_local("NC", NO_CONFIG_DETAIL)
            return
        host = head.authority or self.app_authority
        exchange.forward(self.app_pool, build_request_head(head, host, trace_lines))
