"""Which kinds meshkit reads, under which apiVersions.

A kind is named by its API group and kind, as Kubernetes names it: Istio's
`Gateway` (networking.istio.io) and the Gateway API's `Gateway`
(gateway.networking.k8s.io) are different resources, so the tables here are
keyed by (group, kind) and a kind name alone is never enough to find a model.

Every accepted apiVersion of a kind has the same schema here: Istio's v1,
v1beta1 and v1alpha3 networking APIs are the same messages under different
names (https://istio.io/latest/docs/reference/config/networking/), and
meshkit.dev/v1alpha1 is the native name of every Istio kind, so the Bookinfo
samples load whichever version they were written for. The same holds for
HTTPRoute under gateway.networking.k8s.io v1 and v1beta1 and Linkerd's
policy.linkerd.io copies of it.

Kinds meshkit does not implement are refused by name with the reason, so a
learner who applies a ServiceEntry learns why rather than reading "unknown".
"""

from __future__ import annotations

from meshkit.config.destination_rule import DestinationRule
from meshkit.config.gateway import Gateway
from meshkit.config.gateway_api import GATEWAY_GROUP, GatewayAPIGateway, GatewayHTTPRoute
from meshkit.config.problems import Problem
from meshkit.config.rate_limit import LocalRateLimit
from meshkit.config.schema import Resource
from meshkit.config.security import AuthorizationPolicy, PeerAuthentication
from meshkit.config.virtual_service import VirtualService

GroupKind = tuple[str, str]

RESOURCE_CLASSES: tuple[type[Resource], ...] = (
    VirtualService,
    DestinationRule,
    PeerAuthentication,
    AuthorizationPolicy,
    LocalRateLimit,
    Gateway,
    GatewayAPIGateway,
    GatewayHTTPRoute,
)


def api_group(api_version: str) -> str:
    """The API group of an apiVersion: networking.istio.io for networking.istio.io/v1, "" for v1."""
    return api_version.rpartition("/")[0]


def _by_group(classes: tuple[type[Resource], ...]) -> dict[GroupKind, type[Resource]]:
    table: dict[GroupKind, type[Resource]] = {}
    for cls in classes:
        for group in dict.fromkeys(api_group(version) for version in cls.API_VERSIONS):
            if (group, cls.KIND) in table:
                raise TypeError(f"two models for kind {cls.KIND} in API group {group}")
            table[(group, cls.KIND)] = cls
    return table


KINDS_BY_GROUP: dict[GroupKind, type[Resource]] = _by_group(RESOURCE_CLASSES)
"""(API group, kind) -> model: the table a resource's apiVersion and kind are read with."""

KINDS: dict[str, type[Resource]] = {cls.KIND: cls for cls in reversed(RESOURCE_CLASSES)}
"""Kind name -> model, for callers that name a kind without its apiVersion (lab.get("vs")).

A name two groups share (Gateway) maps to the first model listed, Istio's;
reading a resource goes by KINDS_BY_GROUP.
"""

ISTIO_NETWORKING = "networking.istio.io"
ISTIO_SECURITY = "security.istio.io"
ISTIO_TELEMETRY = "telemetry.istio.io"
ISTIO_EXTENSIONS = "extensions.istio.io"

UNSUPPORTED_KINDS: dict[GroupKind, str] = {
    (ISTIO_NETWORKING, "ServiceEntry"): "every destination in meshkit is a service in the lab",
    (ISTIO_NETWORKING, "Sidecar"): "every meshkit sidecar knows every service in the lab",
    (ISTIO_NETWORKING, "EnvoyFilter"): "meshkit's proxy is not Envoy; for local rate limiting use kind "
    "LocalRateLimit (apiVersion meshkit.dev/v1alpha1)",
    (ISTIO_NETWORKING, "WorkloadEntry"): "workloads are registered by the lab's backend",
    (ISTIO_NETWORKING, "WorkloadGroup"): "workloads are registered by the lab's backend",
    (ISTIO_NETWORKING, "ProxyConfig"): "meshkit's proxy settings come from the lab",
    (ISTIO_SECURITY, "RequestAuthentication"): "meshkit has no request authentication (JWT); callers are "
    "identified by mTLS",
    (ISTIO_TELEMETRY, "Telemetry"): "meshkit's telemetry is fixed (see docs/internals.md)",
    (ISTIO_EXTENSIONS, "WasmPlugin"): "meshkit's proxy does not run Wasm",
    (GATEWAY_GROUP, "GatewayClass"): "the lab's ingress gateway serves gatewayClassName istio (or meshkit); "
    "there are no other classes to define",
    (GATEWAY_GROUP, "GRPCRoute"): "meshkit's proxy speaks HTTP/1.1, not gRPC; use an HTTPRoute",
    (GATEWAY_GROUP, "TCPRoute"): "meshkit's proxy routes HTTP/1.1 only; use an HTTPRoute",
    (GATEWAY_GROUP, "TLSRoute"): "meshkit's proxy routes HTTP/1.1 only; use an HTTPRoute",
    (GATEWAY_GROUP, "UDPRoute"): "meshkit's proxy routes HTTP/1.1 only; use an HTTPRoute",
    (GATEWAY_GROUP, "ReferenceGrant"): "routes in meshkit refer to Services in their own namespace only",
    (GATEWAY_GROUP, "BackendTLSPolicy"): "meshkit's sidecars use mTLS to the mesh's workloads; there is no "
    "other TLS to configure",
}


def resource_class(kind: object, api_version: object) -> type[Resource] | Problem:
    """The model for (kind, apiVersion), or the Problem that says why there is none."""
    group = api_group(api_version) if isinstance(api_version, str) else None
    if isinstance(kind, str) and group is not None:
        cls = KINDS_BY_GROUP.get((group, kind))
        if cls is not None and api_version in cls.API_VERSIONS:
            return cls
        if (group, kind) in UNSUPPORTED_KINDS:
            return Problem(("kind",), f"{kind} is not supported in meshkit: {UNSUPPORTED_KINDS[(group, kind)]}")
    if not isinstance(kind, str) or kind not in KINDS:
        unsupported = [why for (_, name), why in UNSUPPORTED_KINDS.items() if name == kind]
        if unsupported:
            return Problem(("kind",), f"{kind} is not supported in meshkit: {unsupported[0]}")
        return Problem(("kind",), f"unknown kind {kind!r}; meshkit reads {', '.join(KINDS)}")
    accepted_versions = [v for (_, k), cls in KINDS_BY_GROUP.items() if k == kind for v in cls.API_VERSIONS]
    *others, last = dict.fromkeys(accepted_versions)
    accepted = f"{', '.join(others)} or {last}" if others else last
    return Problem(("apiVersion",), f"{kind} is read from apiVersion {accepted}, not {api_version!r}")
