"""HTTPRoute and Gateway of the Kubernetes Gateway API.

A Gateway of class istio (or meshkit) is served by the lab's one ingress
gateway, istio-ingressgateway, as its equivalent Istio Gateway
(meshkit/config/gateway_translation.py, to_istio_gateway): meshkit does not
deploy a gateway per Gateway as istiod does, so what only a dedicated
deployment could do (addresses, infrastructure, TLS) is refused by name.

HTTPRoute, as the GAMMA mesh pattern uses it and as Gateways use it:

Field names and meanings follow the Gateway API's v1 reference
(https://gateway-api.sigs.k8s.io/reference/spec/#httproute). A route whose
parentRef is a Service (GAMMA, https://gateway-api.sigs.k8s.io/mesh/) applies
to the mesh's calls to that Service, as a VirtualService for that host does;
a route whose parentRef is a Gateway binds to that gateway.

The model keeps what the learner wrote and nothing more: every field defaults
to "not written" and the Gateway API's defaults (a rule without matches
matches PathPrefix "/", weight 1, kind Gateway) are applied by the
translation to a VirtualService (meshkit/config/gateway_translation.py), so
export gives the route back as written. Durations stay strings for the same
reason ("0s" means "no timeout" and must not come back as something else).

Linkerd reads the same HTTPRoute under policy.linkerd.io (its traffic-shifting
and dynamic-request-routing tasks use v1beta2), so those apiVersions load too.
"""

from __future__ import annotations

import re
from typing import Annotated, ClassVar

from pydantic import AfterValidator, Field

from meshkit.config.schema import Choice, IstioModel, Resource, TypeName, invalid

GATEWAY_GROUP = "gateway.networking.k8s.io"
GATEWAY_API_VERSIONS = ("gateway.networking.k8s.io/v1", "gateway.networking.k8s.io/v1beta1")
GATEWAY_CLASSES = ("istio", "meshkit")
"""Classes the lab's ingress gateway serves: istio, so Istio's samples apply unchanged, and meshkit's own."""
HTTP_ROUTE_API_VERSIONS = (
    "gateway.networking.k8s.io/v1",
    "gateway.networking.k8s.io/v1beta1",
    "policy.linkerd.io/v1beta1",
    "policy.linkerd.io/v1beta2",
    "policy.linkerd.io/v1beta3",
)
GATEWAY_API_RETRY = (
    "retry is experimental in the Gateway API; without it Istio's default retry policy applies "
    "(2 retries on connection failures), as it does for a VirtualService"
)

# The Gateway API's Duration: 1 to 4 parts of up to 5 digits and a unit
# (https://gateway-api.sigs.k8s.io/geps/gep-2257/).
_GATEWAY_DURATION = re.compile(r"([0-9]{1,5}(h|m|s|ms)){1,4}")


def _checked_duration(value: str) -> str:
    if not _GATEWAY_DURATION.fullmatch(value):
        raise invalid(
            f"{value!r} is not a Gateway API duration: write whole numbers with units h, m, s or ms, "
            "such as '10s', '500ms' or '1m30s' ('0s' turns the timeout off)"
        )
    return value


GatewayDuration = Annotated[
    str, AfterValidator(_checked_duration), TypeName("Gateway API duration (e.g. 10s, 500ms; 0s: none)")
]

PathMatchType = Annotated[str, Choice(("Exact", "PathPrefix", "RegularExpression"))]
ValueMatchType = Annotated[str, Choice(("Exact", "RegularExpression"))]
Method = Annotated[str, Choice(("GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"))]
FilterType = Annotated[
    str,
    Choice(
        ("RequestHeaderModifier", "ResponseHeaderModifier", "URLRewrite"),
        (
            ("RequestMirror", "mirroring from an HTTPRoute is not implemented; use a VirtualService mirror"),
            ("RequestRedirect", "meshkit's proxy does not answer with redirects; route to a backend instead"),
            ("ExtensionRef", "meshkit has no filter extensions"),
            ("CORS", "CORS is not implemented in meshkit's proxy"),
            ("ExternalAuth", "meshkit has no external authorization; use an AuthorizationPolicy"),
        ),
    ),
]
PathModifierType = Annotated[
    str,
    Choice(
        ("ReplacePrefixMatch",),
        (("ReplaceFullPath", "meshkit's proxy rewrites a matched prefix only; use ReplacePrefixMatch"),),
    ),
]


class ParentReference(IstioModel):
    """What the route attaches to: a Service (the mesh's calls to it) or a Gateway."""

    UNSUPPORTED: ClassVar[dict[str, str]] = {
        "sectionName": "meshkit attaches a route to a whole Service or Gateway; name a Service's port with port",
    }

    group: str | None = Field(
        default=None, description='"" or core for a Service; gateway.networking.k8s.io (the default) for a Gateway.'
    )
    kind: str | None = Field(default=None, description="Service or Gateway (the default).")
    namespace: str | None = Field(default=None, description="The parent's namespace; the route's by default.")
    name: str = Field(description="The Service's or Gateway's name.")
    port: int | None = Field(
        default=None, ge=1, le=65535, description="Only calls to this port of the Service (Service parents only)."
    )


class HTTPPathMatch(IstioModel):
    """How the request path is matched."""

    type: PathMatchType | None = Field(default=None, description="PathPrefix by default.")
    value: str | None = Field(
        default=None,
        description='"/" by default. PathPrefix matches whole path segments: /foo matches /foo and /foo/bar, '
        "not /foobar.",
    )


class HTTPHeaderMatch(IstioModel):
    """A header the request must carry, with a value."""

    type: ValueMatchType | None = Field(default=None, description="Exact by default.")
    name: str = Field(description="The header name; case does not matter.")
    value: str = Field(description="The value, or the regex (RE2) the whole value must match.")


class HTTPQueryParamMatch(IstioModel):
    """A query parameter the request must carry, with a value."""

    type: ValueMatchType | None = Field(default=None, description="Exact by default.")
    name: str = Field(description="The parameter name (case matters).")
    value: str = Field(description="The value, or the regex (RE2) the whole value must match.")


class HTTPRouteMatch(IstioModel):
    """Conditions a request must meet; all given ones must hold."""

    path: HTTPPathMatch | None = Field(default=None, description='The path; PathPrefix "/" when left out.')
    headers: list[HTTPHeaderMatch] = Field(default_factory=list, description="Headers that must all match.")
    query_params: list[HTTPQueryParamMatch] = Field(
        default_factory=list, description="Query parameters that must all match."
    )
    method: Method | None = Field(default=None, description="The HTTP method.")


class HTTPHeader(IstioModel):
    """One header name and value."""

    name: str = Field(description="The header name.")
    value: str = Field(description="The header value.")


class HTTPHeaderFilter(IstioModel):
    """Header edits: set, then add, then remove."""

    set: list[HTTPHeader] = Field(default_factory=list, description="Replace these headers (add them if absent).")
    add: list[HTTPHeader] = Field(default_factory=list, description="Append these headers.")
    remove: list[str] = Field(default_factory=list, description="Remove these headers.")


class HTTPPathModifier(IstioModel):
    """How the path is rewritten."""

    UNSUPPORTED: ClassVar[dict[str, str]] = {
        "replaceFullPath": "meshkit's proxy rewrites a matched prefix only; use replacePrefixMatch",
    }

    type: PathModifierType = Field(description="ReplacePrefixMatch.")
    replace_prefix_match: str | None = Field(
        default=None, description="Replaces the PathPrefix the rule matched (the rule must match by PathPrefix)."
    )


class HTTPURLRewriteFilter(IstioModel):
    """Changes to the request before it is forwarded."""

    UNSUPPORTED: ClassVar[dict[str, str]] = {
        "hostname": "rewriting the Host header is not implemented; the upstream sees the service host",
    }

    path: HTTPPathModifier | None = Field(default=None, description="The path rewrite.")


class HTTPRouteFilter(IstioModel):
    """One processing step for the requests a rule matches."""

    UNSUPPORTED: ClassVar[dict[str, str]] = {
        "requestMirror": "mirroring from an HTTPRoute is not implemented; use a VirtualService mirror",
        "requestRedirect": "meshkit's proxy does not answer with redirects; route to a backend instead",
        "extensionRef": "meshkit has no filter extensions",
        "cors": "CORS is not implemented in meshkit's proxy",
        "externalAuth": "meshkit has no external authorization; use an AuthorizationPolicy",
    }

    type: FilterType = Field(description="Which filter this is; its settings go in the field of that name.")
    request_header_modifier: HTTPHeaderFilter | None = Field(
        default=None, description="Edits to the request the backend sees (type RequestHeaderModifier)."
    )
    response_header_modifier: HTTPHeaderFilter | None = Field(
        default=None, description="Edits to the response the caller sees (type ResponseHeaderModifier)."
    )
    url_rewrite: HTTPURLRewriteFilter | None = Field(default=None, description="A path rewrite (type URLRewrite).")


class HTTPBackendRef(IstioModel):
    """A Service to send requests to, and its share of them."""

    UNSUPPORTED: ClassVar[dict[str, str]] = {
        "filters": "per-backend filters are not implemented; put the filters on the rule",
    }

    group: str | None = Field(default=None, description='"" (the default) or core: a Service.')
    kind: str | None = Field(default=None, description="Service (the default).")
    name: str = Field(
        description="The Service; SERVICE-VERSION (reviews-v2) also names the workloads of SERVICE "
        "labelled version: VERSION, as Istio's bookinfo-versions.yaml defines it."
    )
    namespace: str | None = Field(default=None, description="Only the route's own namespace.")
    port: int | None = Field(default=None, ge=1, le=65535, description="The Service's port (required).")
    weight: int | None = Field(
        default=None, ge=0, le=1_000_000, description="Share of requests relative to the rule's other backends; 1 by default."
    )


class HTTPRouteTimeouts(IstioModel):
    """How long a request may take."""

    request: GatewayDuration | None = Field(
        default=None, description="Answer 504 when the whole request takes longer; 0s means no timeout."
    )
    backend_request: GatewayDuration | None = Field(
        default=None,
        description="Timeout for each try to a backend; without a retry stanza Istio uses it as the route's "
        "timeout, and so does meshkit.",
    )


class HTTPRouteRule(IstioModel):
    """Requests that match go to the rule's backends, through its filters."""

    UNSUPPORTED: ClassVar[dict[str, str]] = {
        "retry": GATEWAY_API_RETRY,
        "sessionPersistence": "meshkit has no session persistence; a DestinationRule consistentHash keeps a caller "
        "on one endpoint",
    }

    name: str | None = Field(default=None, description="A name for this rule, shown in traces and logs.")
    matches: list[HTTPRouteMatch] = Field(
        default_factory=list, description='Any one of these must match; none means PathPrefix "/".'
    )
    filters: list[HTTPRouteFilter] = Field(default_factory=list, description="Header edits and path rewrites.")
    backend_refs: list[HTTPBackendRef] = Field(
        default_factory=list,
        max_length=16,
        description="Services and their weights (at most 16, as in the Gateway API); at least one with a weight "
        "above 0.",
    )
    timeouts: HTTPRouteTimeouts | None = Field(default=None, description="Request timeouts.")


class HTTPRouteSpec(IstioModel):
    """Where the route attaches and its rules."""

    UNSUPPORTED: ClassVar[dict[str, str]] = {
        "useDefaultGateways": "meshkit has no default gateways; name the Gateway in parentRefs",
    }

    parent_refs: list[ParentReference] = Field(
        default_factory=list, description="The Services or Gateways the route attaches to; at least one."
    )
    hostnames: list[str] = Field(
        default_factory=list,
        description="Hosts on a Gateway this route answers for (every host when left out); ignored for Services.",
    )
    rules: list[HTTPRouteRule] = Field(
        default_factory=list, description="Rules; the most specific match wins, as the Gateway API orders them."
    )


class GatewayHTTPRoute(Resource):
    """gateway.networking.k8s.io HTTPRoute (also read under Linkerd's policy.linkerd.io)."""

    KIND: ClassVar[str] = "HTTPRoute"
    API_VERSIONS: ClassVar[tuple[str, ...]] = HTTP_ROUTE_API_VERSIONS
    EXPORT_API_VERSION: ClassVar[str] = "gateway.networking.k8s.io/v1"

    spec: HTTPRouteSpec


NO_GATEWAY_TLS = (
    "the lab's ingress gateway serves plain HTTP only; TLS termination and passthrough are not implemented"
)
ListenerProtocol = Annotated[
    str,
    Choice(
        ("HTTP",),
        (
            ("HTTPS", NO_GATEWAY_TLS),
            ("TLS", NO_GATEWAY_TLS),
            ("TCP", "the lab's ingress gateway routes HTTP/1.1 only; TCP routes are not implemented"),
            ("UDP", "the lab's ingress gateway routes HTTP/1.1 only; UDP routes are not implemented"),
        ),
    ),
]
FromNamespaces = Annotated[
    str,
    Choice(
        ("Same", "All"),
        (
            ("Selector", "meshkit has no Namespace objects with labels to select; write Same or All"),
            ("None", "a listener that admits no routes serves nothing; leave the listener out instead"),
        ),
    ),
]


class RouteNamespaces(IstioModel):
    """Which namespaces' routes may attach to a listener."""

    UNSUPPORTED: ClassVar[dict[str, str]] = {
        "selector": "meshkit has no Namespace objects with labels to select; write from: Same or All",
    }

    from_: FromNamespaces | None = Field(
        default=None, alias="from", description="Same (the Gateway's namespace, the default) or All."
    )


class RouteGroupKind(IstioModel):
    """A kind of route a listener admits."""

    group: str | None = Field(default=None, description="gateway.networking.k8s.io (the default).")
    kind: str = Field(description="HTTPRoute, the one route kind meshkit reads.")


class AllowedRoutes(IstioModel):
    """Which routes may attach to a listener."""

    namespaces: RouteNamespaces | None = Field(default=None, description="Whose routes; the Gateway's namespace by default.")
    kinds: list[RouteGroupKind] = Field(
        default_factory=list, description="Which kinds of route; HTTPRoute (the default for HTTP)."
    )


class Listener(IstioModel):
    """One port of the gateway and the hosts it answers for there."""

    UNSUPPORTED: ClassVar[dict[str, str]] = {"tls": NO_GATEWAY_TLS}

    name: str = Field(description="The listener's name, unique in the Gateway.")
    hostname: str | None = Field(
        default=None, description="The host it answers for (bookinfo.example.com, *.example.com); every host when left out."
    )
    port: int = Field(
        ge=1,
        le=65535,
        description="80 or 8080: the ports the lab's ingress gateway serves (on the local backend its loopback port "
        "stands for both).",
    )
    protocol: ListenerProtocol = Field(description="HTTP (the only protocol the lab's ingress gateway serves).")
    allowed_routes: AllowedRoutes | None = Field(default=None, description="Which routes may attach to it.")


class GatewayAPISpec(IstioModel):
    """The class that serves the Gateway and its listeners."""

    UNSUPPORTED: ClassVar[dict[str, str]] = {
        "addresses": "the lab's ingress gateway has one address, the loopback port lab.ingress_url() names",
        "infrastructure": "meshkit does not deploy a gateway per Gateway; the lab's ingress gateway serves it",
        "backendTLS": "meshkit's gateway calls the mesh over its own mTLS; there is no other TLS to configure",
        "allowedListeners": "listener sets are experimental in the Gateway API; meshkit has one gateway",
    }

    gateway_class_name: str = Field(
        description="istio (as in Istio's samples) or meshkit: served by the lab's ingress gateway, "
        "istio-ingressgateway."
    )
    listeners: list[Listener] = Field(description="The ports and hosts it accepts; at least one.")


class GatewayAPIGateway(Resource):
    """gateway.networking.k8s.io Gateway, served by the lab's ingress gateway."""

    KIND: ClassVar[str] = "Gateway"
    API_VERSIONS: ClassVar[tuple[str, ...]] = GATEWAY_API_VERSIONS
    EXPORT_API_VERSION: ClassVar[str] = "gateway.networking.k8s.io/v1"

    spec: GatewayAPISpec
