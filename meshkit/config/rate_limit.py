"""LocalRateLimit: a token bucket in front of a workload (meshkit.dev/v1alpha1).

Istio has no first-class resource for local rate limiting: on Istio it is
configured by an EnvoyFilter that inserts Envoy's local rate limit filter
(https://istio.io/latest/docs/tasks/policy-enforcement/rate-limit/#local-rate-limit).
EnvoyFilter is raw proxy configuration, too far from what a learner is
studying, so meshkit offers this small kind instead, shaped after that
filter's token bucket
(https://www.envoyproxy.io/docs/envoy/latest/configuration/http/http_filters/local_rate_limit_filter):
the bucket holds at most maxTokens, gains tokensPerFill every fillInterval,
and each inbound request takes one token or is answered 429 with response
flag RL. Export to Istio YAML skips it with a comment saying so.
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from meshkit.config.schema import Duration, IstioModel, Resource, WorkloadSelector


class TokenBucket(IstioModel):
    """Envoy's token bucket: a burst of maxTokens, refilled at tokensPerFill per fillInterval."""

    max_tokens: int = Field(ge=1, description="Most tokens the bucket holds: the largest burst allowed.")
    tokens_per_fill: int = Field(default=1, ge=1, description="Tokens added every fillInterval; 1 by default.")
    fill_interval: Duration = Field(description="How often tokens are added; at least 50ms, as Envoy requires.")


class LocalRateLimitSpec(IstioModel):
    """Which workloads, which requests, and how fast."""

    selector: WorkloadSelector | None = Field(
        default=None, description="The workloads it applies to; none means the whole namespace."
    )
    token_bucket: TokenBucket = Field(description="The limit.")
    paths: list[str] = Field(
        default_factory=list,
        description="Limit only requests to these paths (exact, prefix '/api/*', suffix '*.png'); none: all.",
    )


class LocalRateLimit(Resource):
    """meshkit.dev LocalRateLimit: Istio has no such kind (it needs an EnvoyFilter)."""

    KIND: ClassVar[str] = "LocalRateLimit"
    API_VERSIONS: ClassVar[tuple[str, ...]] = ("meshkit.dev/v1alpha1",)
    EXPORT_API_VERSION: ClassVar[str] = "meshkit.dev/v1alpha1"

    spec: LocalRateLimitSpec
