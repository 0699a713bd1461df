"""PeerAuthentication and AuthorizationPolicy: who may talk to a workload.

PeerAuthentication says whether a workload's sidecar accepts plaintext, mTLS
or both (https://istio.io/latest/docs/reference/config/security/peer_authentication/);
AuthorizationPolicy says which callers and requests it lets through
(https://istio.io/latest/docs/reference/config/security/authorization-policy/).
meshkit identifies callers by their mTLS certificate only (SPIFFE IDs from
its own CA), so the request-principal (JWT) and IP-based fields are refused.
"""

from __future__ import annotations

from typing import Annotated, ClassVar

from pydantic import Field

from meshkit.config.schema import Choice, IstioModel, Resource, WorkloadSelector

SECURITY_API_VERSIONS = ("security.istio.io/v1", "security.istio.io/v1beta1", "meshkit.dev/v1alpha1")
NO_JWT = "meshkit has no request authentication (JWT); match the caller's mTLS identity with principals"
NO_IP = "meshkit matches callers by mTLS identity, not address; use principals or namespaces"
ONE_TRUST_DOMAIN = (
    "a lab has one CA and one trust domain (cluster.local unless set), so every caller is in it; "
    "match callers with principals or namespaces"
)
DRY_RUN_ANNOTATION = "istio.io/dry-run"
WHEN_KEYS = ("request.headers[NAME]", "source.principal", "source.namespace", "destination.port")

NO_PROVIDERS = "external authorization providers are not implemented; use ALLOW or DENY"
MTLSMode = Annotated[str, Choice(("UNSET", "DISABLE", "PERMISSIVE", "STRICT"))]
Action = Annotated[str, Choice(("ALLOW", "DENY", "AUDIT"), (("CUSTOM", NO_PROVIDERS),))]


class PeerAuthenticationMtls(IstioModel):
    """The mTLS mode a workload's sidecar accepts."""

    mode: MTLSMode = Field(
        default="UNSET",
        description="STRICT (mTLS only), PERMISSIVE (mTLS and plaintext), DISABLE (plaintext), "
        "UNSET (inherit from the namespace, then the mesh; PERMISSIVE by default).",
    )


class PeerAuthenticationSpec(IstioModel):
    """Mesh-wide (in istio-system, no selector), namespace-wide (no selector) or per workload."""

    UNSUPPORTED: ClassVar[dict[str, str]] = {
        "portLevelMtls": "meshkit workloads have one port; set mtls for the whole workload",
    }

    selector: WorkloadSelector | None = Field(
        default=None, description="The workloads it applies to; none means the whole namespace."
    )
    mtls: PeerAuthenticationMtls | None = Field(default=None, description="The mTLS mode.")


class PeerAuthentication(Resource):
    """security.istio.io PeerAuthentication."""

    KIND: ClassVar[str] = "PeerAuthentication"
    API_VERSIONS: ClassVar[tuple[str, ...]] = SECURITY_API_VERSIONS
    EXPORT_API_VERSION: ClassVar[str] = "security.istio.io/v1"

    spec: PeerAuthenticationSpec


class Source(IstioModel):
    """Who the caller is; all given fields must match.

    Strings match exactly, or by prefix (`abc*`), suffix (`*abc`) or presence (`*`).
    """

    UNSUPPORTED: ClassVar[dict[str, str]] = {
        "requestPrincipals": NO_JWT,
        "notRequestPrincipals": NO_JWT,
        "ipBlocks": NO_IP,
        "notIpBlocks": NO_IP,
        "remoteIpBlocks": NO_IP,
        "notRemoteIpBlocks": NO_IP,
        "trustDomains": ONE_TRUST_DOMAIN,
        "notTrustDomains": ONE_TRUST_DOMAIN,
    }

    principals: list[str] = Field(
        default_factory=list, description="Caller identities, such as cluster.local/ns/default/sa/bookinfo-productpage."
    )
    not_principals: list[str] = Field(default_factory=list, description="Caller identities that must not match.")
    namespaces: list[str] = Field(default_factory=list, description="Caller namespaces (from its mTLS identity).")
    not_namespaces: list[str] = Field(default_factory=list, description="Caller namespaces that must not match.")
    service_accounts: list[str] = Field(
        default_factory=list,
        description="Caller service accounts as NAMESPACE/NAME, or NAME in the policy's namespace (from its mTLS "
        "identity, like the principal cluster.local/ns/NAMESPACE/sa/NAME); exact, no wildcards; not together "
        "with principals or namespaces.",
    )
    not_service_accounts: list[str] = Field(
        default_factory=list, description="Caller service accounts that must not match (same form)."
    )


class RuleFrom(IstioModel):
    """One caller description."""

    source: Source = Field(description="The caller.")


class Operation(IstioModel):
    """What the request does; all given fields must match.

    Strings match exactly, or by prefix (`/api/*`), suffix (`*.html`) or presence (`*`).
    """

    hosts: list[str] = Field(default_factory=list, description="Host header values.")
    not_hosts: list[str] = Field(default_factory=list, description="Host header values that must not match.")
    ports: list[str] = Field(default_factory=list, description="Destination ports, as strings: '9080'.")
    not_ports: list[str] = Field(default_factory=list, description="Destination ports that must not match.")
    methods: list[str] = Field(default_factory=list, description="HTTP methods, such as GET.")
    not_methods: list[str] = Field(default_factory=list, description="HTTP methods that must not match.")
    paths: list[str] = Field(default_factory=list, description="Request paths (normalized, without query).")
    not_paths: list[str] = Field(default_factory=list, description="Request paths that must not match.")


class RuleTo(IstioModel):
    """One request description."""

    operation: Operation = Field(description="The request.")


class Condition(IstioModel):
    """An extra condition on request attributes."""

    key: str = Field(description="One of " + ", ".join(WHEN_KEYS) + ".")
    values: list[str] = Field(default_factory=list, description="The attribute must match one of these.")
    not_values: list[str] = Field(default_factory=list, description="The attribute must match none of these.")


class Rule(IstioModel):
    """A request matches a rule when it matches any from, any to and every when."""

    from_: list[RuleFrom] = Field(default_factory=list, alias="from", description="Callers (none: any caller).")
    to: list[RuleTo] = Field(default_factory=list, description="Requests (none: any request).")
    when: list[Condition] = Field(default_factory=list, description="Extra conditions, all required.")


class AuthorizationPolicySpec(IstioModel):
    """Allow or deny requests to the selected workloads."""

    UNSUPPORTED: ClassVar[dict[str, str]] = {
        "provider": NO_PROVIDERS,
        "targetRef": "policies attach to workloads with selector in meshkit",
        "targetRefs": "policies attach to workloads with selector in meshkit",
    }

    selector: WorkloadSelector | None = Field(
        default=None, description="The workloads it applies to; none means the whole namespace."
    )
    action: Action = Field(
        default="ALLOW", description="ALLOW, DENY or AUDIT (log only); ALLOW by default."
    )
    rules: list[Rule] = Field(
        default_factory=list,
        description="A request matching any rule gets the action; an ALLOW policy with no rules allows nothing.",
    )


class AuthorizationPolicy(Resource):
    """security.istio.io AuthorizationPolicy.

    The annotation istio.io/dry-run: "true" makes it a dry run, as in Istio:
    evaluated on every request and reported (access log, metric,
    lab.security()), never enforced.
    """

    KIND: ClassVar[str] = "AuthorizationPolicy"
    API_VERSIONS: ClassVar[tuple[str, ...]] = SECURITY_API_VERSIONS
    EXPORT_API_VERSION: ClassVar[str] = "security.istio.io/v1"

    spec: AuthorizationPolicySpec

    @property
    def dry_run(self) -> bool:
        """Only "true" turns enforcement off; policy_rules refuses values other than "true" and "false"."""
        return self.metadata.annotations.get(DRY_RUN_ANNOTATION) == "true"
