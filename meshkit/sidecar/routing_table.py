"""Everything routing needs from one snapshot, compiled once: routes, clusters, rate limits.

The decisions themselves are pure functions in meshkit.core (which host an
authority names, which rule matches, which destination the weights pick,
whether a fault hits). A table is built whole from a snapshot
(meshkit.sidecar.state) and swapped in with one assignment; a handler reads
`state.table` once at dispatch, so a request in flight keeps the rules it
started with (the clusters they point to are live objects that survive the
swap, with their counts).
"""

from __future__ import annotations

import time

from meshkit.core.ratelimit import RateLimiter
from meshkit.core.routes import RouteTable, compile_routes
from meshkit.core.snapshot import Snapshot
from meshkit.sidecar.bootstrap import Workload
from meshkit.sidecar.cluster import Cluster, ClusterSet


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
