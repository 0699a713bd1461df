"""The outbound handler: the app's HTTP proxy. Route, pick a destination, hand the rule to the exchange.

The decisions are pure functions in meshkit.core (which host an authority
names, which rule matches, which destination the weights pick, whether a
fault hits, whether the request is mirrored) over the current routing table
(meshkit.sidecar.routing_table); the exchange then carries out the rule's
policies (meshkit.sidecar.exchange).
"""

from __future__ import annotations

import random

from meshkit.core.edits import rewrite_path
from meshkit.core.framing import RequestHead, build_request_head
from meshkit.core.peer import Peer, encode_peer
from meshkit.core.routes import HostRoutes, injected_abort, injected_delay
from meshkit.core.tracing import RandomBits
from meshkit.sidecar.bootstrap import Workload
from meshkit.sidecar.clock import Clock
from meshkit.sidecar.cluster import SOURCE, Cluster
from meshkit.sidecar.handling import NO_CONFIG_DETAIL, Request, stamp_ids
from meshkit.sidecar.mirror import Shadow, shadow_authority
from meshkit.sidecar.routing_table import RoutingTable
from meshkit.sidecar.state import MeshState
from meshkit.sidecar.telemetry import UNKNOWN, Telemetry


def no_route_detail(authority: bytes, table: RoutingTable, gateway: bool = False) -> str:
    """Tell the learner what was asked for and what exists."""
    host = authority.decode("latin-1")
    hosts = table.routes.hosts
    shown = ", ".join(hosts[:10]) + (", ..." if len(hosts) > 10 else "")
    if gateway:
        return (
            f"No VirtualService bound to a Gateway of this ingress gateway routes host {host!r} "
            f"(hosts routed here: {shown or 'none'}). Apply a Gateway that selects it (istio: ingressgateway) "
            "and a VirtualService with gateways: [that Gateway's name], such as Istio's bookinfo-gateway.yaml."
        )
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


class OutboundHandler:
    """The app's HTTP proxy: route, apply the rule's policies, forward."""

    def __init__(
        self, state: MeshState, workload: Workload, telemetry: Telemetry, bits: RandomBits, rng: random.Random, clock: Clock
    ) -> None:
        self.state = state
        self.clock = clock
        self.bits = bits
        self.rng = rng
        peer = Peer(workload.name, workload.namespace, workload.version, workload.service_account)
        self.peer_line = b"x-meshkit-peer: %s\r\n" % encode_peer(peer)
        self.unknown_route = telemetry.route(SOURCE, workload.name, workload.version, UNKNOWN, UNKNOWN, UNKNOWN)
        self.gateway = bool(workload.gateway_ports)

    def dispatch(self, exchange: Request) -> None:
        head = exchange.head
        assert head is not None
        trace_lines = stamp_ids(exchange, head, self.bits)
        table = self.state.table
        if table is None:
            exchange.route = self.unknown_route
            exchange.respond_local("NC", NO_CONFIG_DETAIL)
            return
        routes = table.host_routes(head.authority)
        if routes is None:
            exchange.route = self.unknown_route
            exchange.respond_local("NR", no_route_detail(head.authority, table, self.gateway))
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
            shadow = self._shadow(rule.mirror.cluster, head, authority, extra, path, headers)
        exchange.route_to(rule, cluster, upstream_head, destination.response_ops, delay, abort, shadow)

    def _shadow(
        self,
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
        clock = self.clock
        shadow_head = build_request_head(head, shadow_authority(authority), extra, path, headers)
        return Shadow(host.pool, shadow_head, head.method, lambda: clock.tick)
