"""VirtualService: how requests to a service are matched and where they go.

Field names and meanings follow Istio's networking API
(https://istio.io/latest/docs/reference/config/networking/virtual-service/).
meshkit's proxy speaks HTTP/1.1, so only `http` routes exist here; `gateways`
binds a VirtualService to the sidecars (`mesh`), to ingress Gateways, or
both. What Istio offers beyond that is listed in each
model's UNSUPPORTED table with the reason a learner is shown.
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from meshkit.config.schema import (
    EXPORT_TO_IGNORED,
    NETWORKING_API_VERSIONS,
    Duration,
    IstioModel,
    Labels,
    Percent,
    Resource,
)

HTTP_ONLY = "meshkit's proxy routes HTTP/1.1 only; write http routes"
DEPRECATED_PERCENT = "Istio deprecated this integer field; write percentage: {value: N}"


class StringMatch(IstioModel):
    """One way to match a string: exactly one of exact, prefix or regex.

    In `headers`, `withoutHeaders` and `queryParams` an empty match (`{}`)
    means "present, with any value", as Istio documents for headers.
    """

    exact: str | None = Field(default=None, description="The whole value equals this.")
    prefix: str | None = Field(default=None, description="The value starts with this.")
    regex: str | None = Field(
        default=None,
        description="The whole value matches this regex (RE2 syntax: no backreferences or lookaround).",
    )


class HTTPMatchRequest(IstioModel):
    """Conditions a request must meet for its route to apply; all given ones must hold."""

    UNSUPPORTED: ClassVar[dict[str, str]] = {
        "scheme": "traffic inside the mesh is plain HTTP to the sidecar; there is no scheme to match",
        "authority": "meshkit does not match on the Host header; match on uri, headers or queryParams",
        "sourceNamespace": "match the caller with sourceLabels instead",
        "statPrefix": "meshkit's telemetry has no per-match statistics",
    }

    name: str | None = Field(default=None, description="A name for this match, shown in traces and logs.")
    uri: StringMatch | None = Field(default=None, description="Match on the request path (query string excluded).")
    method: StringMatch | None = Field(default=None, description="Match on the HTTP method, such as exact: GET.")
    headers: dict[str, StringMatch] = Field(
        default_factory=dict, description="Header name (lowercase) to match; {} means the header is present."
    )
    without_headers: dict[str, StringMatch] = Field(
        default_factory=dict, description="Header name (lowercase) to match that must NOT match."
    )
    query_params: dict[str, StringMatch] = Field(
        default_factory=dict, description="Query parameter to match, such as key: {exact: 'true'}."
    )
    ignore_uri_case: bool | None = Field(default=None, description="Compare uri without regard to case.")
    port: int | None = Field(default=None, ge=1, le=65535, description="Match only requests to this service port.")
    source_labels: Labels = Field(
        default_factory=dict, description="Match only callers whose workload has all these labels."
    )
    gateways: list[str] = Field(
        default_factory=list,
        description="Match only on these gateways (mesh: the sidecars); replaces the VirtualService's gateways "
        "for this match.",
    )


class PortSelector(IstioModel):
    """A service port, by number."""

    number: int = Field(ge=1, le=65535, description="The port number.")


class Destination(IstioModel):
    """A service (and optionally one subset of its workloads) to send requests to."""

    host: str = Field(description="Service name: reviews, reviews.default or reviews.default.svc.cluster.local.")
    subset: str | None = Field(
        default=None, description="A subset defined in a DestinationRule for this host, such as v2."
    )
    port: PortSelector | None = Field(default=None, description="The service port; needed only if it has several.")


class HeaderOperations(IstioModel):
    """Header edits applied in order: set, then add, then remove."""

    set: dict[str, str] = Field(default_factory=dict, description="Replace these headers (add them if absent).")
    add: dict[str, str] = Field(default_factory=dict, description="Append these headers.")
    remove: list[str] = Field(default_factory=list, description="Remove these headers.")


class Headers(IstioModel):
    """Header edits on the request (before forwarding) and on the response."""

    request: HeaderOperations | None = Field(default=None, description="Edits to the request the upstream sees.")
    response: HeaderOperations | None = Field(default=None, description="Edits to the response the caller sees.")


class HTTPRouteDestination(IstioModel):
    """One destination of a route and its share of the traffic."""

    destination: Destination = Field(description="Where to send the request.")
    weight: int | None = Field(
        default=None,
        ge=0,
        le=100,
        description="Percent of requests to this destination; with several destinations they must add up to 100.",
    )
    headers: Headers | None = Field(default=None, description="Header edits for requests sent to this destination.")


class HTTPRewrite(IstioModel):
    """Changes to the request before it is forwarded."""

    UNSUPPORTED: ClassVar[dict[str, str]] = {
        "authority": "rewriting the Host header is not implemented; the upstream sees the service host",
        "uriRegexRewrite": "rewrite with uri (a prefix rewrite) instead",
    }

    uri: str = Field(description="Replace the matched uri prefix (or the whole path for an exact match) with this.")


class HTTPRetry(IstioModel):
    """How a failed request is retried."""

    UNSUPPORTED: ClassVar[dict[str, str]] = {
        "retryIgnorePreviousHosts": "meshkit always prefers a different endpoint for a retry, as Istio does by default",
        "backoff": "meshkit uses Envoy's default backoff (25ms base, jittered)",
    }

    attempts: int = Field(
        default=0, ge=0, description="Retries after the first try; 0 turns retries off for this route."
    )
    per_try_timeout: Duration | None = Field(default=None, description="Timeout for each try, such as 2s.")
    retry_on: str | None = Field(
        default=None,
        description="Comma-separated conditions: 5xx, gateway-error, connect-failure, reset, refused-stream, "
        "retriable-4xx, retriable-status-codes, or status codes such as 503.",
    )
    retry_remote_localities: bool | None = Field(
        default=None, description="Accepted and ignored: meshkit has a single locality."
    )


class Delay(IstioModel):
    """Hold some requests for a while before forwarding them."""

    UNSUPPORTED: ClassVar[dict[str, str]] = {
        "exponentialDelay": "Istio does not implement it either; use fixedDelay",
        "percent": DEPRECATED_PERCENT,
    }

    fixed_delay: Duration = Field(description="How long to hold the request, such as 7s.")
    percentage: Percent | None = Field(
        default=None, description="Share of requests delayed; without it Istio delays none, so set it."
    )


class Abort(IstioModel):
    """Answer some requests with an error instead of forwarding them."""

    UNSUPPORTED: ClassVar[dict[str, str]] = {
        "grpcStatus": "meshkit speaks HTTP/1.1, not gRPC; use httpStatus",
        "http2Error": "meshkit speaks HTTP/1.1; use httpStatus",
        "percent": DEPRECATED_PERCENT,
    }

    http_status: int = Field(ge=200, le=599, description="Status code to answer with, such as 500 or 503.")
    percentage: Percent | None = Field(
        default=None, description="Share of requests aborted; without it Istio aborts none, so set it."
    )


class HTTPFaultInjection(IstioModel):
    """Faults the caller's sidecar injects, to test how the caller copes."""

    delay: Delay | None = Field(default=None, description="Delay some requests.")
    abort: Abort | None = Field(default=None, description="Fail some requests.")


class HTTPRoute(IstioModel):
    """A rule: requests that match go to the route's destinations, with these policies."""

    UNSUPPORTED: ClassVar[dict[str, str]] = {
        "redirect": "meshkit's proxy does not answer with redirects; route to a destination instead",
        "directResponse": "meshkit's proxy does not answer for a service; route to a destination instead",
        "delegate": "delegated VirtualServices are not supported; put the routes in this VirtualService",
        "mirrors": "only a single mirror is supported; use mirror and mirrorPercentage",
        "mirrorPercent": "Istio deprecated this integer field; write mirrorPercentage: {value: N}",
        "mirror_percent": "Istio deprecated this integer field; write mirrorPercentage: {value: N}",
        "corsPolicy": "CORS is not implemented in meshkit's proxy",
    }

    name: str | None = Field(default=None, description="A name for this route, shown in traces and logs.")
    match: list[HTTPMatchRequest] = Field(
        default_factory=list, description="Any one of these must match (none: every request matches)."
    )
    route: list[HTTPRouteDestination] = Field(
        default_factory=list, description="Destinations and their weights; at least one."
    )
    rewrite: HTTPRewrite | None = Field(default=None, description="Rewrite the path before forwarding.")
    timeout: Duration | None = Field(
        default=None, description="Give up and answer 504 after this long; none by default."
    )
    retries: HTTPRetry | None = Field(
        default=None, description="Retry policy; without it Istio's default applies (2 retries on connect failures)."
    )
    fault: HTTPFaultInjection | None = Field(default=None, description="Inject delays or errors.")
    mirror: Destination | None = Field(
        default=None, description="Also send a copy of each request here; its answer is ignored."
    )
    mirror_percentage: Percent | None = Field(
        default=None, description="Share of requests mirrored; 100 when absent."
    )
    headers: Headers | None = Field(default=None, description="Header edits for every destination of this route.")


class VirtualServiceSpec(IstioModel):
    """The routing rules for one or more service hosts."""

    UNSUPPORTED: ClassVar[dict[str, str]] = {
        "tcp": HTTP_ONLY,
        "tls": HTTP_ONLY,
    }

    hosts: list[str] = Field(default_factory=list, description="The services these rules apply to.")
    gateways: list[str] = Field(
        default_factory=list,
        description="Where the rules apply: mesh (the sidecars; the default when absent), Gateways by name "
        "(bookinfo-gateway, or namespace/name), or both. hosts may be * only without mesh.",
    )
    http: list[HTTPRoute] = Field(
        default_factory=list, description="Rules tried in order; the first that matches is used."
    )
    export_to: list[str] = Field(default_factory=list, description=EXPORT_TO_IGNORED)


class VirtualService(Resource):
    """networking.istio.io VirtualService."""

    KIND: ClassVar[str] = "VirtualService"
    API_VERSIONS: ClassVar[tuple[str, ...]] = NETWORKING_API_VERSIONS
    EXPORT_API_VERSION: ClassVar[str] = "networking.istio.io/v1"

    spec: VirtualServiceSpec
