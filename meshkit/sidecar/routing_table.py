"""Everything routing needs from one snapshot, compiled once: routes, clusters, rate limits.

The decisions themselves are pure functions in meshkit.core (which host an
authority names, which rule matches, which destination the weights pick,
whether a fault hits). A table is built whole from a snapshot
(meshkit.sidecar.state) and swapped in with one assignment; a handler reads
`state.table` once at dispatch, so a request in flight keeps the rules it
started with (the clusters they point to are live objects that survive the
swap, with their counts).

Outbound requests name their host in a handful of spellings (an app sends
the same authority bytes again and again), so the table remembers which
routes each raw authority resolved to: a request then pays one dict lookup
instead of decoding and normalising its authority. The memory goes with the
table, so a new snapshot starts it afresh.
"""

from __future__ import annotations

import time

from meshkit.core.ratelimit import RateLimiter
from meshkit.core.routes import HostRoutes, RouteTable, compile_gateway_routes, compile_routes
from meshkit.core.snapshot import Snapshot
from meshkit.sidecar.bootstrap import Workload
from meshkit.sidecar.cluster import Cluster, ClusterSet


# Distinct authorities whose resolution a table remembers; past this, the
# rest are resolved per request (a client inventing hosts cannot grow it).
MAX_AUTHORITIES = 1000


class RoutingTable:
    """Everything routing needs from one snapshot, precomputed."""

    __slots__ = ("snapshot", "routes", "limiters", "_by_authority")

    def __init__(self, snapshot: Snapshot, routes: RouteTable[Cluster], limiters: tuple[RateLimiter, ...]) -> None:
        self.snapshot = snapshot
        self.routes = routes
        self.limiters = limiters
        self._by_authority: dict[bytes, HostRoutes[Cluster] | None] = {}

    def host_routes(self, authority: bytes) -> HostRoutes[Cluster] | None:
        """The routes for the host a request's raw authority names (None: no such service)."""
        by_authority = self._by_authority
        try:
            return by_authority[authority]
        except KeyError:
            pass
        routes = self.routes.resolve(authority.decode("latin-1"))
        if len(by_authority) < MAX_AUTHORITIES:
            by_authority[authority] = routes
        return routes


def build_table(
    snapshot: Snapshot,
    workload: Workload,
    clusters: ClusterSet,
    previous: RoutingTable | None,
) -> RoutingTable:
    """The routing table for `snapshot`, as seen from `workload`.

    Clusters are made or updated through `clusters`; rate limits whose
    resource is unchanged keep their bucket, so a config change elsewhere
    does not hand out a fresh burst of tokens. A gateway (workload.gateway_ports)
    routes by the Gateways that select it instead of the mesh's routes.
    """
    if workload.gateway_ports:
        routes = compile_gateway_routes(snapshot, workload.labels, frozenset(workload.gateway_ports), clusters.maker())
    else:
        routes = compile_routes(snapshot, workload.namespace, workload.labels, clusters.maker())
    clusters.retain(routes.clusters)
    kept = {limiter.spec: limiter for limiter in previous.limiters} if previous is not None else {}
    now = time.monotonic()
    limiters = tuple(kept.get(spec) or RateLimiter(spec, now) for spec in snapshot.rate_limits)
    return RoutingTable(snapshot, routes, limiters)
