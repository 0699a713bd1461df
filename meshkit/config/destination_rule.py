"""DestinationRule: what happens to traffic for a service after routing.

Subsets (named groups of a service's workloads, by label), load balancing,
connection limits (circuit breaking), outlier detection and client TLS, with
Istio's field names and meanings
(https://istio.io/latest/docs/reference/config/networking/destination-rule/).
"""

from __future__ import annotations

from typing import Annotated, ClassVar

from pydantic import Field

from meshkit.config.schema import (
    EXPORT_TO_IGNORED,
    NETWORKING_API_VERSIONS,
    Duration,
    IstioModel,
    Labels,
    Resource,
    Choice,
)

ONE_PORT = "meshkit services have one port; set the policy for the whole service"
MESHKIT_CA = "meshkit's CA issues every certificate; use mode ISTIO_MUTUAL"

LoadBalancerName = Annotated[
    str,
    Choice(
        ("UNSPECIFIED", "ROUND_ROBIN", "LEAST_REQUEST", "LEAST_CONN", "RANDOM"),
        (("PASSTHROUGH", "meshkit always picks an endpoint of the service; use ROUND_ROBIN or LEAST_REQUEST"),),
    ),
]
TLSMode = Annotated[
    str,
    Choice(
        ("DISABLE", "ISTIO_MUTUAL"),
        (
            ("SIMPLE", "TLS to servers outside the mesh needs a ServiceEntry, which meshkit does not have; "
             "use ISTIO_MUTUAL (or DISABLE)"),
            ("MUTUAL", "mTLS with your own certificates is not implemented; " + MESHKIT_CA),
        ),
    ),
]


class ConsistentHashLB(IstioModel):
    """Send requests with the same key to the same endpoint (session affinity)."""

    UNSUPPORTED: ClassVar[dict[str, str]] = {
        "httpCookie": "hash on a header with httpHeaderName instead",
        "useSourceIp": "hash on a header with httpHeaderName instead",
        "httpQueryParameterName": "hash on a header with httpHeaderName instead",
        "ringHash": "meshkit uses one ring-hash configuration",
        "maglev": "meshkit uses one ring-hash configuration",
        "minimumRingSize": "meshkit uses one ring-hash configuration",
    }

    http_header_name: str = Field(description="The request header whose value picks the endpoint, such as x-user.")


class LoadBalancerSettings(IstioModel):
    """How an endpoint is picked among a service's (or subset's) healthy endpoints."""

    UNSUPPORTED: ClassVar[dict[str, str]] = {
        "localityLbSetting": "meshkit has a single locality",
        "warmupDurationSecs": "slow start is not implemented",
        "warmup": "slow start is not implemented",
        "zoneAwareLbSetting": "meshkit has a single locality (one zone), so there is no nearer zone to prefer",
    }

    simple: LoadBalancerName | None = Field(
        default=None,
        description="ROUND_ROBIN, LEAST_REQUEST (Istio's default), RANDOM; LEAST_CONN is Istio's old name "
        "for LEAST_REQUEST.",
    )
    consistent_hash: ConsistentHashLB | None = Field(
        default=None, description="Hash-based affinity instead of simple."
    )


class TCPSettings(IstioModel):
    """Limits on connections to each endpoint."""

    UNSUPPORTED: ClassVar[dict[str, str]] = {
        "tcpKeepalive": "connections inside the lab are local; keepalive probes are not implemented",
        "maxConnectionDuration": "connections are not recycled by age",
        "idleTimeout": "pooled connections are closed by the proxy's own idle rule",
    }

    max_connections: int | None = Field(
        default=None, ge=0, description="Most connections to the destination at once (0 or absent: no limit)."
    )
    connect_timeout: Duration | None = Field(
        default=None, description="Give up on connecting after this long; 10s by default."
    )


class HTTPSettings(IstioModel):
    """Limits on requests: the circuit breaker."""

    UNSUPPORTED: ClassVar[dict[str, str]] = {
        "idleTimeout": "pooled connections are closed by the proxy's own idle rule",
        "h2UpgradePolicy": "meshkit speaks HTTP/1.1 only",
        "useClientProtocol": "meshkit speaks HTTP/1.1 only",
        "maxConcurrentStreams": "meshkit speaks HTTP/1.1 only",
        "http2KeepAlive": "meshkit's proxy speaks HTTP/1.1 only; there is no HTTP/2 connection to keep alive",
    }

    http1_max_pending_requests: int | None = Field(
        default=None, ge=0, description="Requests that may wait for a connection; more get 503 UO (0 or absent: no limit)."
    )
    http2_max_requests: int | None = Field(
        default=None, ge=0, description="Most requests in flight to the destination (0 or absent: no limit)."
    )
    max_requests_per_connection: int | None = Field(
        default=None, ge=0, description="Close a connection after this many requests (1 disables keep-alive; 0: no limit)."
    )
    max_retries: int | None = Field(
        default=None, ge=0, description="Most retries in flight to the destination (0 or absent: no limit)."
    )


class ConnectionPoolSettings(IstioModel):
    """Connection and request limits towards the destination."""

    tcp: TCPSettings | None = Field(default=None, description="Connection limits.")
    http: HTTPSettings | None = Field(default=None, description="Request limits.")


class OutlierDetection(IstioModel):
    """Eject endpoints that keep failing, for a while, then let them back."""

    UNSUPPORTED: ClassVar[dict[str, str]] = {
        "consecutiveErrors": "Istio deprecated it; use consecutive5xxErrors",
        "consecutiveLocalOriginFailures": "local-origin failures are counted as 5xx errors",
        "splitExternalLocalOriginErrors": "local-origin failures are counted as 5xx errors",
        "minHealthPercent": "meshkit always allows ejection, as Istio's default of 0% does",
        "outlierDetectionHttpErrorCodes": "the answers that count are fixed: every 5xx for consecutive5xxErrors, "
        "502, 503 and 504 for consecutiveGatewayErrors",
    }

    consecutive_5xx_errors: int | None = Field(
        default=None,
        ge=0,
        alias="consecutive5xxErrors",
        description="5xx answers (or connection failures) in a row that eject an endpoint; 5 by default, 0 turns it off.",
    )
    consecutive_gateway_errors: int | None = Field(
        default=None, ge=0, description="502, 503 and 504 answers in a row that eject an endpoint; off by default."
    )
    interval: Duration | None = Field(default=None, description="How often ejections are decided; 10s by default.")
    base_ejection_time: Duration | None = Field(
        default=None, description="How long the first ejection lasts (then longer each time); 30s by default."
    )
    max_ejection_percent: int | None = Field(
        default=None, ge=0, le=100, description="Most endpoints, in percent, ejected at once; 10 by default."
    )


class ClientTLSSettings(IstioModel):
    """Whether the caller's sidecar uses mTLS to this destination."""

    UNSUPPORTED: ClassVar[dict[str, str]] = {
        field: MESHKIT_CA
        for field in (
            "clientCertificate",
            "privateKey",
            "caCertificates",
            "credentialName",
            "subjectAltNames",
            "sni",
            "insecureSkipVerify",
            "caCrl",
        )
    }

    mode: TLSMode = Field(
        description="DISABLE (plaintext) or ISTIO_MUTUAL (mTLS with meshkit's certificates)."
    )


class TrafficPolicy(IstioModel):
    """Policies for traffic to the service or to one subset."""

    UNSUPPORTED: ClassVar[dict[str, str]] = {
        "portLevelSettings": ONE_PORT,
        "tunnel": "meshkit does not tunnel traffic",
        "proxyProtocol": "meshkit does not send the PROXY protocol",
        "retryBudget": "retries are limited by connectionPool.http.maxRetries",
    }

    load_balancer: LoadBalancerSettings | None = Field(default=None, description="How endpoints are picked.")
    connection_pool: ConnectionPoolSettings | None = Field(
        default=None, description="Connection and request limits (circuit breaking)."
    )
    outlier_detection: OutlierDetection | None = Field(
        default=None, description="Eject failing endpoints; off unless set."
    )
    tls: ClientTLSSettings | None = Field(
        default=None, description="mTLS to the destination; automatic (mTLS to sidecars) unless set."
    )


class Subset(IstioModel):
    """A named group of a service's workloads, chosen by label (usually version)."""

    name: str = Field(description="The name routes use in destination.subset, such as v1.")
    labels: Labels = Field(
        default_factory=dict, description="Labels a workload must all have to belong, such as version: v1."
    )
    traffic_policy: TrafficPolicy | None = Field(
        default=None, description="Overrides whole sections of the service's trafficPolicy for this subset."
    )


class DestinationRuleSpec(IstioModel):
    """Policies for one service host."""

    UNSUPPORTED: ClassVar[dict[str, str]] = {
        "workloadSelector": "a DestinationRule applies to every caller in meshkit",
    }

    host: str = Field(description="The service: reviews, reviews.default or reviews.default.svc.cluster.local.")
    traffic_policy: TrafficPolicy | None = Field(default=None, description="Policies for the whole service.")
    subsets: list[Subset] = Field(default_factory=list, description="Named groups of the service's workloads.")
    export_to: list[str] = Field(default_factory=list, description=EXPORT_TO_IGNORED)


class DestinationRule(Resource):
    """networking.istio.io DestinationRule."""

    KIND: ClassVar[str] = "DestinationRule"
    API_VERSIONS: ClassVar[tuple[str, ...]] = NETWORKING_API_VERSIONS
    EXPORT_API_VERSION: ClassVar[str] = "networking.istio.io/v1"

    spec: DestinationRuleSpec
