"""Local rate limiting: Envoy's token bucket and path patterns (meshkit.core.ratelimit)."""

from __future__ import annotations

import pytest

from meshkit.core.ratelimit import RateLimiter, TokenBucket, path_applies
from meshkit.core.rules import RateLimitSpec


def test_the_bucket_starts_full_and_refills_in_whole_intervals() -> None:
    bucket = TokenBucket(max_tokens=3, per_fill=2, interval=1.0, now=0.0)
    assert [bucket.take(0.0) for _ in range(4)] == [True, True, True, False]
    assert not bucket.take(0.99)
    assert [bucket.take(1.0) for _ in range(3)] == [True, True, False]
    assert [bucket.take(10.0) for _ in range(4)] == [True, True, True, False]  # capped at max_tokens


def test_requests_per_second_over_a_long_run_is_the_fill_rate() -> None:
    bucket = TokenBucket(max_tokens=5, per_fill=1, interval=0.1, now=0.0)
    granted = sum(bucket.take(i * 0.001) for i in range(10_000))  # 1000 rps offered for 10 s
    assert granted == 5 + 99  # the burst, then one per 100 ms


@pytest.mark.parametrize(
    ("patterns", "path", "applies"),
    [
        ((), "/anything", True),
        (("/api",), "/api", True),
        (("/api",), "/api/x", False),
        (("/api/*",), "/api/x", True),
        (("/api/*",), "/apix", False),
        (("*.png",), "/img/a.png", True),
        (("*.png", "/api"), "/api", True),
    ],
)
def test_paths(patterns: tuple[str, ...], path: str, applies: bool) -> None:
    assert path_applies(patterns, path) is applies


def test_a_limiter_lets_uncovered_paths_through_without_a_token() -> None:
    limiter = RateLimiter(RateLimitSpec("default", "l", 1, 1, 60.0, ("/api/*",)), now=0.0)
    assert limiter.admits("/api/a", 0.0) and not limiter.admits("/api/b", 0.0)
    assert all(limiter.admits("/health", 0.0) for _ in range(10))
