"""Outlier detection: eject endpoints that keep failing, readmit them later.

Envoy's algorithm (https://www.envoyproxy.io/docs/envoy/latest/intro/arch_overview/upstream/outlier#ejection-algorithm),
with what Istio's OutlierDetection configures:

- Every answer from an endpoint is reported. A 5xx adds one to its
  consecutive-5xx count; a 502, 503 or 504 also to its consecutive
  gateway-error count (any other 5xx resets that one); anything below 500
  resets both. Failures with no answer (connect failure, reset, timeout)
  count as the 503 or 504 the sidecar answers for them, which is Envoy's
  rule when split_external_local_origin_errors is off (Istio's default).
- Reaching `consecutive_5xx_errors` (or `consecutive_gateway_errors`) ejects
  the endpoint at once ("ejection ... runs inline (for example in the case
  of consecutive 5xx)"); 0 turns that rule off. Its counts start again.
- An ejection is refused when ejected endpoints already make up
  `max_ejection_percent` of the cluster, except that the first ejection is
  always allowed ("If no hosts have been ejected, Envoy will eject the host
  immediately").
- An endpoint stays out for `base_ejection_time` x the number of times it
  has been ejected (capped at Envoy's default max_ejection_time, 300 s, or
  the base time if longer), and is readmitted by the sweep that runs every
  `interval` once that time has passed. Each sweep that finds a readmitted
  endpoint still in service lowers its multiplier by one, as Envoy does since
  max_ejection_time was added, so an endpoint that recovered is soon back
  to the base time.

An ejected endpoint is not picked by the load balancer. Istio sets Envoy's
panic threshold to 0% (its minHealthPercent, "The default is 0% as it's not
typically applicable in k8s environments with few pods per service",
https://istio.io/latest/docs/reference/config/networking/destination-rule/#OutlierDetection),
so when every endpoint is ejected there is no healthy upstream: 503 UH,
rather than Envoy's panic mode of using them all.

Time is passed in (any monotonic clock in seconds), so tests step it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Generic, TypeVar

from meshkit.core.rules import OutlierSpec

K = TypeVar("K")
MAX_EJECTION_TIME_S = 300.0


class HostHealth:
    """One endpoint's record."""

    __slots__ = ("consecutive_5xx", "consecutive_gateway", "ejected", "ejected_at", "multiplier", "ejections")

    def __init__(self) -> None:
        self.consecutive_5xx = 0
        self.consecutive_gateway = 0
        self.ejected = False
        self.ejected_at = 0.0
        self.multiplier = 0
        self.ejections = 0  # ever, for the learner

    def reset_counts(self) -> None:
        self.consecutive_5xx = 0
        self.consecutive_gateway = 0


class OutlierDetector(Generic[K]):
    """The outlier records of one cluster's endpoints, keyed by endpoint."""

    def __init__(self, spec: OutlierSpec, keys: Iterable[K]) -> None:
        self.spec = spec
        self.hosts: dict[K, HostHealth] = {key: HostHealth() for key in keys}

    def update(self, spec: OutlierSpec, keys: Iterable[K]) -> None:
        """A new snapshot: new settings, records kept for endpoints that remain."""
        self.spec = spec
        self.hosts = {key: self.hosts.get(key) or HostHealth() for key in keys}

    @property
    def ejected_count(self) -> int:
        return sum(1 for health in self.hosts.values() if health.ejected)

    def is_ejected(self, key: K) -> bool:
        health = self.hosts.get(key)
        return health is not None and health.ejected

    def ejection_time(self, health: HostHealth) -> float:
        base = self.spec.base_ejection_time
        return min(base * max(health.multiplier, 1), max(MAX_EJECTION_TIME_S, base))

    def report(self, key: K, status: int, now: float) -> bool:
        """Count one answer (or failure, as 503/504); True when it ejects the endpoint."""
        health = self.hosts.get(key)
        if health is None or health.ejected:
            return False
        if status < 500:
            health.consecutive_5xx = 0
            health.consecutive_gateway = 0
            return False
        spec = self.spec
        health.consecutive_5xx += 1
        if status in (502, 503, 504):
            health.consecutive_gateway += 1
        else:
            health.consecutive_gateway = 0
        tripped = (spec.consecutive_5xx_errors and health.consecutive_5xx >= spec.consecutive_5xx_errors) or (
            spec.consecutive_gateway_errors and health.consecutive_gateway >= spec.consecutive_gateway_errors
        )
        if not tripped:
            return False
        health.reset_counts()
        ejected = self.ejected_count
        if ejected and 100 * ejected / len(self.hosts) >= spec.max_ejection_percent:
            return False
        health.ejected = True
        health.ejected_at = now
        health.multiplier += 1
        health.ejections += 1
        return True

    def sweep(self, now: float) -> bool:
        """The periodic check: readmit endpoints whose time is up; True when any came back."""
        readmitted = False
        for health in self.hosts.values():
            if health.ejected:
                if now - health.ejected_at >= self.ejection_time(health):
                    health.ejected = False
                    health.reset_counts()
                    readmitted = True
            elif health.multiplier:
                health.multiplier -= 1
        return readmitted
