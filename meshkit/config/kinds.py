"""Which kinds meshkit reads, under which apiVersions.

Every accepted apiVersion of a kind has the same schema here: Istio's v1,
v1beta1 and v1alpha3 networking APIs are the same messages under different
names (https://istio.io/latest/docs/reference/config/networking/), and
meshkit.dev/v1alpha1 is the native name of every kind, so the Bookinfo
samples load whichever version they were written for.

Istio kinds meshkit does not implement are refused by name with the reason,
so a learner who applies a Gateway learns why rather than reading "unknown".
"""

from __future__ import annotations

from meshkit.config.destination_rule import DestinationRule
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
)
KINDS: dict[str, type[Resource]] = {cls.KIND: cls for cls in RESOURCE_CLASSES}

UNSUPPORTED_KINDS: dict[str, str] = {
    "Gateway": "meshkit has no ingress or egress gateways; traffic enters through the lab's client sidecar",
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
    cls = KINDS[kind]
    if api_version not in cls.API_VERSIONS:
        *others, last = cls.API_VERSIONS
        accepted = f"{', '.join(others)} or {last}" if others else last
        return Problem(("apiVersion",), f"{kind} is read from apiVersion {accepted}, not {api_version!r}")
    return cls
