"""Outbound clusters: one per (service host, subset), alive across snapshots.

A cluster is what Envoy calls one: a set of endpoints with one traffic
policy (meshkit.core.routes.ClusterSpec). Its live state is what must
survive a config change: the connection pools, the circuit-breaker counts
(requests, pending requests, connections, retries in flight), the retry
budget and the outlier records. So clusters are kept by name
(`outbound|9080|v1|reviews.default.svc.cluster.local`) in a `ClusterSet`;
a new snapshot updates the ones it still has (new endpoints, new policy,
same counts) and closes the others. A request in flight keeps the rule it
was routed by and the cluster object it started with.

Decisions are in meshkit.core (balancer, outlier, retry budget); this module
holds their state and the timer for the outlier sweep.

Whether an endpoint is dialled with mTLS (DestinationRule tls.mode, or auto
mTLS) is decided per endpoint by the ClusterSet's `tls` (meshkit.sidecar.outbound_tls.MeshTls);
an endpoint whose decision changes gets a new pool, so plaintext and mTLS
connections are never mixed in one.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from meshkit.core.balancer import Balancer, LeastRequest, RandomPick, RingHash, RoundRobin
from meshkit.core.outlier import OutlierDetector
from meshkit.core.retry import RetryBudget
from meshkit.core.routes import ClusterSpec
from meshkit.core.snapshot import Endpoint
from meshkit.sidecar.bootstrap import Workload
from meshkit.sidecar.telemetry import UNKNOWN, Route, Telemetry
from meshkit.sidecar.upstream import ConnectionLimit, Pool

if TYPE_CHECKING:
    from meshkit.sidecar.outbound_tls import MeshTls

log = logging.getLogger("meshkit.sidecar")

SOURCE = "source"
# Retries pick another endpoint than the ones already tried, up to this
# many picks: Istio's default retry host predicate (previous_hosts) and its
# host_selection_retry_max_attempts.
HOST_SELECTION_ATTEMPTS = 5


def _load(host: Host) -> int:
    return host.active


def _name(host: Host) -> str:
    return host.label


class Host:
    """One endpoint of a cluster: its pool, its metric labels and its requests in flight."""

    __slots__ = ("endpoint", "key", "pool", "route", "active", "label")

    def __init__(self, endpoint: Endpoint, pool: Pool, route: Route) -> None:
        self.endpoint = endpoint
        self.key = (endpoint.address, endpoint.port)
        self.pool = pool
        self.route = route
        self.active = 0
        self.label = pool.label


class Cluster:
    """A cluster's endpoints, balancer and breaker state."""

    def __init__(
        self, spec: ClusterSpec, workload: Workload, telemetry: Telemetry, max_idle: int, rng: random.Random, tls: MeshTls | None = None
    ) -> None:
        self.name = spec.name
        self.tls = tls
        self.workload = workload
        self.telemetry = telemetry
        self.max_idle = max_idle
        self.rng = rng
        self.spec = spec
        self.hosts: dict[tuple[str, int], Host] = {}
        self.healthy: tuple[Host, ...] = ()
        self.balancer: Balancer[Host] = RoundRobin(())
        self.limit = ConnectionLimit(0, 0, 0)
        self.route = telemetry.route(SOURCE, workload.name, workload.version, spec.host, UNKNOWN, UNKNOWN)
        self.active_requests = 0
        self.active_retries = 0
        self.budget = RetryBudget()
        self.outlier: OutlierDetector[tuple[str, int]] | None = None
        self.hash_header: bytes | None = None
        self._sweep: asyncio.TimerHandle | None = None
        self.closed = False
        self.update(spec)

    @property
    def max_requests(self) -> int:
        return self.spec.policy.max_requests

    @property
    def max_retries(self) -> int:
        return self.spec.policy.max_retries

    def update(self, spec: ClusterSpec) -> None:
        """Take a new snapshot's view of this cluster; counts and records carry over."""
        self.spec = spec
        policy = spec.policy
        self.closed = False
        limit = self.limit
        limit.max_connections = policy.max_connections
        limit.max_pending = policy.max_pending_requests
        limit.max_per_connection = policy.max_requests_per_connection
        limit.shed_idle()
        w = self.workload
        hosts: dict[tuple[str, int], Host] = {}
        for endpoint in spec.endpoints:
            key = (endpoint.address, endpoint.port)
            host = self.hosts.pop(key, None)
            tls = self.tls.target(policy.tls_mode, endpoint, spec.host) if self.tls is not None else None
            same_tls = host is not None and host.pool.tls == tls
            if host is None or host.endpoint != endpoint or not same_tls:
                if host is not None and not same_tls:
                    host.pool.close()
                pool = host.pool if host is not None and same_tls else Pool(endpoint.address, endpoint.port, self.max_idle, policy.connect_timeout, limit, tls)
                route = self.telemetry.route(SOURCE, w.name, w.version, spec.host, endpoint.workload, endpoint.version)
                host = Host(endpoint, pool, route)
            host.pool.connect_timeout_s = policy.connect_timeout
            hosts[key] = host
        for gone in self.hosts.values():
            gone.pool.close()
        self.hosts = hosts
        limit.pools = [host.pool for host in hosts.values()]
        self.hash_header = policy.hash_header.encode("ascii") if policy.hash_header else None
        if policy.outlier is None:
            self.outlier = None
        elif self.outlier is None:
            self.outlier = OutlierDetector(policy.outlier, hosts)
        else:
            self.outlier.update(policy.outlier, hosts)
        self._schedule_sweep()
        self.rebalance()

    def rebalance(self) -> None:
        """Rebuild the balancer over the endpoints that are not ejected."""
        outlier = self.outlier
        hosts = self.hosts.values()
        self.healthy = tuple(h for h in hosts if outlier is None or not outlier.is_ejected(h.key))
        kind = self.spec.policy.load_balancer
        below = self.rng.randrange
        # RingHash and LeastRequest get their item type spelt out: from the
        # context `Balancer[Host]`, whose pick returns `Host | None`, mypy
        # would infer `Host | None` and then refuse callbacks taking a Host.
        if kind == "ROUND_ROBIN":
            self.balancer = RoundRobin(self.healthy, below(len(self.healthy)) if self.healthy else 0)
        elif kind == "RANDOM":
            self.balancer = RandomPick(self.healthy, below)
        elif kind is None:
            self.balancer = RingHash[Host](self.healthy, _name, below)
        else:
            self.balancer = LeastRequest[Host](self.healthy, _load, below)

    def pick(self, key: bytes | None, tried: set[Host] | None) -> Host | None:
        """An endpoint for one attempt; a retry avoids the endpoints in `tried` when it can."""
        host = self.balancer.pick(key)
        if tried and host is not None:
            for _ in range(HOST_SELECTION_ATTEMPTS - 1):
                if host not in tried:
                    break
                host = self.balancer.pick(None)
        return host

    def report(self, host: Host, status: int) -> None:
        """Tell outlier detection how an attempt went (a failure as its 503/504)."""
        outlier = self.outlier
        if outlier is not None and outlier.report(host.key, status, time.monotonic()):
            log.info("outlier detection ejected %s from %s after consecutive errors", host.label, self.name)
            self.rebalance()

    def why_no_host(self) -> str:
        """The UH explanation a learner reads."""
        if not self.hosts:
            if self.spec.subset:
                return f"Cluster {self.name}: no endpoint of {self.spec.host} has the labels of subset {self.spec.subset!r}."
            return f"Service {self.spec.host} has no endpoints right now."
        return (
            f"Every endpoint of cluster {self.name} ({len(self.hosts)}) is ejected by outlier detection. "
            "Istio sets Envoy's panic threshold to 0%, so ejected endpoints are not used even when none is left; "
            "they come back after their ejection time."
        )

    def _schedule_sweep(self) -> None:
        if self._sweep is not None:
            self._sweep.cancel()
            self._sweep = None
        if self.outlier is not None and not self.closed:
            self._sweep = asyncio.get_running_loop().call_later(self.outlier.spec.interval, self._on_sweep)

    def _on_sweep(self) -> None:
        self._sweep = None
        outlier = self.outlier
        if outlier is None or self.closed:
            return
        if outlier.sweep(time.monotonic()):
            log.info("outlier detection readmitted endpoints of %s", self.name)
            self.rebalance()
        self._schedule_sweep()

    def close(self) -> None:
        """The cluster left the config: stop its timer, close idle connections."""
        self.closed = True
        if self._sweep is not None:
            self._sweep.cancel()
            self._sweep = None
        for host in self.hosts.values():
            host.pool.close()

    def describe(self) -> dict[str, Any]:
        """The cluster as the admin page /clusters shows it."""
        policy = self.spec.policy
        outlier = self.outlier
        hosts = []
        for host in self.hosts.values():
            health = outlier.hosts.get(host.key) if outlier is not None else None
            hosts.append(
                {
                    "address": host.label,
                    "mtls": host.pool.tls is not None,
                    "identity": host.pool.tls.expected_uri if host.pool.tls is not None else None,
                    "instance": host.endpoint.instance,
                    "version": host.endpoint.version,
                    "active_requests": host.active,
                    "idle_connections": len(host.pool.idle),
                    "ejected": bool(health and health.ejected),
                    "ejections": health.ejections if health else 0,
                    "consecutive_5xx": health.consecutive_5xx if health else 0,
                }
            )
        return {
            "name": self.name,
            "host": self.spec.host,
            "subset": self.spec.subset,
            "load_balancer": policy.load_balancer or f"consistent hash on {policy.hash_header}",
            "active_requests": self.active_requests,
            "pending_requests": self.limit.pending,
            "connections": self.limit.open,
            "active_retries": self.active_retries,
            "limits": {
                "max_connections": policy.max_connections,
                "http1_max_pending_requests": policy.max_pending_requests,
                "http2_max_requests": policy.max_requests,
                "max_requests_per_connection": policy.max_requests_per_connection,
                "max_retries": policy.max_retries,
            },
            "outlier_detection": outlier is not None,
            "endpoints": hosts,
        }


class ClusterSet:
    """Every outbound cluster by name, across snapshots."""

    def __init__(self, workload: Workload, telemetry: Telemetry, max_idle: int, rng: random.Random) -> None:
        self.workload = workload
        self.telemetry = telemetry
        self.max_idle = max_idle
        self.rng = rng
        self.tls: MeshTls | None = None  # set by the sidecar when it has an identity: mTLS per endpoint
        self.clusters: dict[str, Cluster] = {}
        self._fresh: dict[str, Cluster] = {}

    def maker(self) -> Callable[[ClusterSpec], Cluster]:
        """The factory a snapshot's compilation calls once per cluster."""
        self._fresh = {}

        def make(spec: ClusterSpec) -> Cluster:
            cluster = self.clusters.get(spec.name) or self._fresh.get(spec.name)
            if cluster is None:
                cluster = Cluster(spec, self.workload, self.telemetry, self.max_idle, self.rng, self.tls)
            else:
                cluster.update(spec)
            self._fresh[spec.name] = cluster
            return cluster

        return make

    def retain(self, names: Iterable[str]) -> None:
        """After a snapshot is compiled: the clusters it has are the live ones; close the rest."""
        keep = set(names)
        for name, cluster in self.clusters.items():
            if name not in keep:
                cluster.close()
        self.clusters = {name: self._fresh[name] for name in keep if name in self._fresh}
        self._fresh = {}

    def expire(self, tick: int, max_idle_ticks: int) -> None:
        for cluster in self.clusters.values():
            for host in cluster.hosts.values():
                host.pool.expire(tick, max_idle_ticks)

    def close(self) -> None:
        for cluster in self.clusters.values():
            cluster.close()
            for host in cluster.hosts.values():
                host.pool.close(cancel_connects=True)
        self.clusters = {}

    def describe(self) -> list[dict[str, Any]]:
        return [self.clusters[name].describe() for name in sorted(self.clusters)]
