"""Service latency drawn from a lognormal distribution fitted to p50 and p99.

Service times are skewed: most requests are quick and a few are much slower.
A lognormal has that shape and is fixed by two quantiles, which is how
latency is talked about (p50, p99), so a learner sets the numbers they will
later read off the charts. With X = exp(mu + sigma * Z):
p50 = exp(mu) and p99 = exp(mu + sigma * z99), hence
mu = ln(p50) and sigma = ln(p99 / p50) / z99.

The random source is passed in, so tests draw from a seeded `random.Random`.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

# The standard normal's 0.99 quantile, NormalDist().inv_cdf(0.99); a constant
# because importing statistics costs start-up time in every demo process.
Z99 = 2.3263478740408408
# A lognormal's far tail is long: with p99 = 100 x p50 one request in 10^5 would
# wait an hour. Draws are capped so one unlucky request never stalls a lesson.
TAIL_CAP_FACTOR = 10.0


@dataclass(frozen=True)
class LognormalLatency:
    """Fitted parameters; `sigma` 0 means a constant latency."""

    mu: float
    sigma: float
    cap_ms: float

    def draw_ms(self, rng: random.Random) -> float:
        """One latency in milliseconds."""
        if self.cap_ms <= 0.0:
            return 0.0
        if self.sigma == 0.0:
            return math.exp(self.mu)
        return min(rng.lognormvariate(self.mu, self.sigma), self.cap_ms)


def fit_lognormal(p50_ms: float, p99_ms: float) -> LognormalLatency:
    """The lognormal whose median is `p50_ms` and 99th percentile `p99_ms`.

    p50 0 means no latency at all; p99 at or below p50 means a constant p50.
    """
    if p50_ms <= 0.0:
        return LognormalLatency(mu=0.0, sigma=0.0, cap_ms=0.0)
    if p99_ms <= p50_ms:
        return LognormalLatency(mu=math.log(p50_ms), sigma=0.0, cap_ms=p50_ms)
    sigma = math.log(p99_ms / p50_ms) / Z99
    return LognormalLatency(mu=math.log(p50_ms), sigma=sigma, cap_ms=p99_ms * TAIL_CAP_FACTOR)
