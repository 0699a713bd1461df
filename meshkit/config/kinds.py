"""Which kinds meshkit reads, under which apiVersions.

Every accepted apiVersion of a kind has the same schema here: Istio's v1,
v1beta1 and v1alpha3 networking APIs are the same messages under different
names (https://istio.io/latest/docs/reference/config/networking/), and
meshkit.dev/v1alpha1 is the native name of every kind, so the Bookinfo
samples load whichever version they were written for.

Kinds are looked up by (API group, kind), not by kind alone: Istio's
`Gateway` (networking.istio.io) and the Kubernetes Gateway API's `Gateway`
(gateway.networking.k8s.io) share a name and are different resources.

Istio kinds meshkit does not implement are refused by name with the reason,
so a learner who applies a ServiceEntry learns why rather than reading "unknown".
"""

from __future__ import annotations

from meshkit.config.destination_rule import DestinationRule
from meshkit.config.gateway import Gateway
from meshkit.config.problems import Problem
from meshkit.config.rate_limit import LocalRateLimit
from meshkit.config.schema import Resource
from meshkit.config.security import AuthorizationPolicy, PeerAuthentication
from meshkit.config.virtual_service import VirtualService

RESOURCE_CLASSES: tuple[type[Resource], ...] = (
    VirtualService,
    DestinationRule,
    PeerAuthentication,
    AuthorizationPolicy,
    LocalRateLimit,
    Gateway,
)
KINDS: dict[str, type[Resource]] = {cls.KIND: cls for cls in RESOURCE_CLASSES}
"""Kind name -> model, for callers that name a kind without its apiVersion (lab.get("vs"))."""


def api_group(api_version: str) -> str:
    """The API group of an apiVersion: networking.istio.io for networking.istio.io/v1."""
    return api_version.rpartition("/")[0]


def _by_group(classes: tuple[type[Resource], ...]) -> dict[tuple[str, str], type[Resource]]:
    table: dict[tuple[str, str], type[Resource]] = {}
    for cls in classes:
        for group in dict.fromkeys(api_group(version) for version in cls.API_VERSIONS):
            if (group, cls.KIND) in table:
                raise TypeError(f"two models for kind {cls.KIND} in API group {group}")
            table[(group, cls.KIND)] = cls
    return table


KINDS_BY_GROUP: dict[tuple[str, str], type[Resource]] = _by_group(RESOURCE_CLASSES)
"""(API group, kind) -> model: the table a resource's apiVersion and kind are read with."""

UNSUPPORTED_KINDS: dict[str, str] = {
    "ServiceEntry": "every destination in meshkit is a service in the lab",
    "Sidecar": "every meshkit sidecar knows every service in the lab",
    "EnvoyFilter": "meshkit's proxy is not Envoy; for local rate limiting use kind LocalRateLimit "
    "(apiVersion meshkit.dev/v1alpha1)",
    "WorkloadEntry": "workloads are registered by the lab's backend",
    "WorkloadGroup": "workloads are registered by the lab's backend",
    "RequestAuthentication": "meshkit has no request authentication (JWT); callers are identified by mTLS",
    "Telemetry": "meshkit's telemetry is fixed (see docs/internals.md)",
    "WasmPlugin": "meshkit's proxy does not run Wasm",
    "ProxyConfig": "meshkit's proxy settings come from the lab",
}


def resource_class(kind: object, api_version: object) -> type[Resource] | Problem:
    """The model for (kind, apiVersion), or the Problem that says why there is none."""
    if not isinstance(kind, str) or kind not in KINDS:
        if isinstance(kind, str) and kind in UNSUPPORTED_KINDS:
            return Problem(("kind",), f"{kind} is not supported in meshkit: {UNSUPPORTED_KINDS[kind]}")
        return Problem(("kind",), f"unknown kind {kind!r}; meshkit reads {', '.join(KINDS)}")
    if isinstance(api_version, str) and (cls := KINDS_BY_GROUP.get((api_group(api_version), kind))):
        if api_version in cls.API_VERSIONS:
            return cls
    accepted_versions = [v for (_, k), cls in KINDS_BY_GROUP.items() if k == kind for v in cls.API_VERSIONS]
    *others, last = dict.fromkeys(accepted_versions)
    accepted = f"{', '.join(others)} or {last}" if others else last
    return Problem(("apiVersion",), f"{kind} is read from apiVersion {accepted}, not {api_version!r}")
