"""The snapshot a sidecar receives, checked before anything uses it.

A sidecar applies a snapshot whole or not at all: `parse_snapshot` either
returns a complete, typed `Snapshot` or raises `ConfigError` naming the
field path and the reason, which becomes the NACK the control plane shows.
Top-level keys this sidecar does not know are refused by name (docs/internals.md:
a later feature the sidecar cannot honour must not be silently ignored);
unknown keys inside a service or endpoint are ignored, so the control plane
can add descriptive fields without breaking older sidecars.

The traffic resources (`virtual_services`, `destination_rules`,
`rate_limits`, and for a gateway its `gateways`) are parsed by `meshkit.core.rules`, the security ones
(`trust_bundle`, `peer_authentications`, `authorization_policies`) by
`meshkit.core.security_rules`; a snapshot without them (a static snapshot
written before they existed) has none.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from meshkit.core.checks import Checker
from meshkit.core.rules import (
    DestinationRuleSpec,
    GatewaySpec,
    RateLimitSpec,
    VirtualServiceSpec,
    parse_destination_rule,
    parse_gateway,
    parse_rate_limit,
    parse_virtual_service,
)
from meshkit.core.security_rules import parse_authorization_policy, parse_peer_authentication, parse_trust_bundle
from meshkit.names import service_host

KNOWN_TOP_LEVEL_KEYS = (
    "version",
    "node",
    "services",
    "virtual_services",
    "destination_rules",
    "rate_limits",
    "gateways",
    "trust_bundle",
    "peer_authentications",
    "authorization_policies",
)

# RFC 1123 label, as Kubernetes requires for service and namespace names.
_DNS_LABEL = re.compile(r"[a-z0-9](?:[-a-z0-9]{0,61}[a-z0-9])?")
_ADDRESS = re.compile(r"[A-Za-z0-9.:\-]{1,253}")
# A service account as a SPIFFE ID path segment may hold it (meshkit.security.identity).
_SERVICE_ACCOUNT = re.compile(r"[A-Za-z0-9._\-]{1,253}")


@dataclass(frozen=True, slots=True)
class Endpoint:
    """One instance behind a service, as the control plane registered it."""

    address: str
    port: int
    instance: str
    workload: str
    version: str
    labels: Mapping[str, str] = field(default_factory=dict)
    sidecar: bool = False
    # The workload's service account: with the service's namespace, the
    # identity its sidecar must prove over mTLS. None from an older control plane.
    service_account: str | None = None


@dataclass(frozen=True, slots=True)
class Service:
    """A service host and the endpoints that currently serve it."""

    host: str
    name: str
    namespace: str
    port: int
    endpoints: tuple[Endpoint, ...]


@dataclass(frozen=True, slots=True)
class Snapshot:
    """One version of one node's configuration."""

    version: int
    node: str
    services: Mapping[str, Service]
    virtual_services: tuple[VirtualServiceSpec, ...] = ()
    destination_rules: tuple[DestinationRuleSpec, ...] = ()
    rate_limits: tuple[RateLimitSpec, ...] = ()
    # The Gateways whose selector picks this node's workload (a gateway's; a sidecar gets none).
    gateways: tuple[GatewaySpec, ...] = ()
    # PEM roots the mesh trusts; None: keep the bundle that came with the certificate.
    trust_bundle: str | None = None
    # Canonical forms (meshkit.core.security_rules): the PeerAuthentications
    # that decide this workload's mode and its destinations', and the
    # AuthorizationPolicies that select this workload.
    peer_authentications: tuple[Mapping[str, Any], ...] = ()
    authorization_policies: tuple[Mapping[str, Any], ...] = ()


def parse_snapshot(doc: Any, node: str) -> Snapshot:
    """A typed snapshot for `node`, or ConfigError saying what is wrong."""
    version_hint = doc.get("version") if isinstance(doc, dict) else None
    check = Checker(f"version {version_hint!r}"[:60])
    top = check.mapping(doc, "")
    unknown = sorted(key for key in top if key not in KNOWN_TOP_LEVEL_KEYS)
    if unknown:
        raise check.fail(unknown[0], f"unknown key {unknown[0]!r}: this sidecar does not implement it")
    version = check.integer(check.get(top, "version", ""), "version", 0, 2**63 - 1)
    got_node = check.text(check.get(top, "node", ""), "node")
    if got_node != node:
        raise check.fail("node", f"snapshot is for node {got_node!r}, this sidecar is {node!r}")
    raw_services = check.mapping(check.get(top, "services", ""), "services")
    services = {}
    for host, raw in raw_services.items():
        services[host] = _parse_service(check, host, raw)
    return Snapshot(
        version=version,
        node=node,
        services=services,
        virtual_services=tuple(parse_virtual_service(check, raw, f"virtual_services[{i}]") for i, raw in enumerate(_listed(check, top, "virtual_services"))),
        destination_rules=tuple(parse_destination_rule(check, raw, f"destination_rules[{i}]") for i, raw in enumerate(_listed(check, top, "destination_rules"))),
        rate_limits=tuple(parse_rate_limit(check, raw, f"rate_limits[{i}]") for i, raw in enumerate(_listed(check, top, "rate_limits"))),
        gateways=tuple(parse_gateway(check, raw, f"gateways[{i}]") for i, raw in enumerate(_listed(check, top, "gateways"))),
        trust_bundle=parse_trust_bundle(check, top.get("trust_bundle"), "trust_bundle"),
        peer_authentications=tuple(
            parse_peer_authentication(check, raw, f"peer_authentications[{i}]") for i, raw in enumerate(_listed(check, top, "peer_authentications"))
        ),
        authorization_policies=tuple(
            parse_authorization_policy(check, raw, f"authorization_policies[{i}]")
            for i, raw in enumerate(_listed(check, top, "authorization_policies"))
        ),
    )


def _listed(check: Checker, top: Mapping[str, Any], key: str) -> list[Any]:
    """A list of resources; absent means none (a snapshot from before traffic config)."""
    return check.items(top.get(key, []), key)


def _parse_service(check: Checker, host: str, raw: Any) -> Service:
    path = f"services.{host}"
    obj = check.mapping(raw, path)
    name = check.text(check.get(obj, "name", path), f"{path}.name", _DNS_LABEL)
    namespace = check.text(check.get(obj, "namespace", path), f"{path}.namespace", _DNS_LABEL)
    if host != service_host(name, namespace):
        raise check.fail(path, f"service key must be {service_host(name, namespace)!r}")
    port = check.integer(check.get(obj, "port", path), f"{path}.port", 1, 65535)
    raw_endpoints = check.get(obj, "endpoints", path)
    if not isinstance(raw_endpoints, list):
        raise check.fail(f"{path}.endpoints", "expected a list")
    endpoints = tuple(_parse_endpoint(check, f"{path}.endpoints[{i}]", e) for i, e in enumerate(raw_endpoints))
    return Service(host=host, name=name, namespace=namespace, port=port, endpoints=endpoints)


def _parse_endpoint(check: Checker, path: str, raw: Any) -> Endpoint:
    obj = check.mapping(raw, path)
    labels_raw = check.mapping(obj.get("labels", {}), f"{path}.labels")
    labels = {check.text(k, f"{path}.labels"): check.text(v, f"{path}.labels.{k}") for k, v in labels_raw.items()}
    sidecar = obj.get("sidecar", False)
    if not isinstance(sidecar, bool):
        raise check.fail(f"{path}.sidecar", f"expected true or false, got {sidecar!r}")
    return Endpoint(
        address=check.text(check.get(obj, "address", path), f"{path}.address", _ADDRESS),
        port=check.integer(check.get(obj, "port", path), f"{path}.port", 1, 65535),
        instance=check.text(check.get(obj, "instance", path), f"{path}.instance"),
        workload=check.text(check.get(obj, "workload", path), f"{path}.workload"),
        version=check.text(check.get(obj, "version", path), f"{path}.version"),
        labels=labels,
        sidecar=sidecar,
        service_account=check.optional_text(obj.get("service_account"), f"{path}.service_account", _SERVICE_ACCOUNT),
    )
