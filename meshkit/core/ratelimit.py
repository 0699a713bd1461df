"""Local rate limiting: Envoy's token bucket, per sidecar, on the inbound side.

A LocalRateLimit (meshkit.dev/v1alpha1) selects workloads; each of their
sidecars keeps its own bucket, as Envoy's local_ratelimit filter does ("the
token bucket is shared across all workers" of one Envoy, and is not shared
between Envoys,
https://www.envoyproxy.io/docs/envoy/latest/configuration/http/http_filters/local_rate_limit_filter).
The bucket starts full with `max_tokens`; every `fill_interval`,
`tokens_per_fill` are added, up to `max_tokens`. A request takes one token
or is refused with 429 and response flag RL.

Refills happen in whole intervals, as Envoy's timer does, computed from the
clock when a request arrives (no timer runs). `paths` limits a bucket to
some requests: exact (`/api`), prefix (`/api/*`) or suffix (`*.png`); none
means every request. Several limits on one workload each take a token.
"""

from __future__ import annotations

from collections.abc import Sequence

from meshkit.core.rules import RateLimitSpec


class TokenBucket:
    """Tokens refilled in whole intervals from a monotonic clock (seconds)."""

    __slots__ = ("max_tokens", "per_fill", "interval", "tokens", "filled_at")

    def __init__(self, max_tokens: int, per_fill: int, interval: float, now: float) -> None:
        self.max_tokens = max_tokens
        self.per_fill = per_fill
        self.interval = interval
        self.tokens = max_tokens
        self.filled_at = now

    def take(self, now: float) -> bool:
        """One token for a request; False when the bucket is empty."""
        fills = int((now - self.filled_at) / self.interval)
        if fills > 0:
            self.tokens = min(self.max_tokens, self.tokens + fills * self.per_fill)
            self.filled_at += fills * self.interval
        if self.tokens <= 0:
            return False
        self.tokens -= 1
        return True


def path_applies(patterns: Sequence[str], path: str) -> bool:
    """Does a limit with these `paths` cover a request for `path` (query excluded)?"""
    if not patterns:
        return True
    for pattern in patterns:
        if pattern.endswith("*"):
            if path.startswith(pattern[:-1]):
                return True
        elif pattern.startswith("*"):
            if path.endswith(pattern[1:]):
                return True
        elif path == pattern:
            return True
    return False


class RateLimiter:
    """One LocalRateLimit as a sidecar enforces it."""

    __slots__ = ("spec", "bucket")

    def __init__(self, spec: RateLimitSpec, now: float) -> None:
        self.spec = spec
        self.bucket = TokenBucket(spec.max_tokens, spec.tokens_per_fill, spec.fill_interval, now)

    def admits(self, path: str, now: float) -> bool:
        """True when the request may pass (not covered, or a token was available)."""
        if not path_applies(self.spec.paths, path):
            return True
        return self.bucket.take(now)
