"""The snapshot each sidecar receives, as a pure function of (state, node).

Pure so that what a sidecar gets can be tested as a table and shown to a
learner (`GET /v1/snapshot/{ns}/{instance}`) without a running mesh. Order is
deterministic (services by host, endpoints by namespace and instance), so two
builds of one state are byte-identical and a sidecar can compare them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from meshkit.config import canonical, parse
from meshkit.config.hosts import version_service
from meshkit.control.store import State
from meshkit.names import service_host
from meshkit.core.authz import applicable_policies
from meshkit.core.peer_auth import ROOT_NAMESPACE

MESH_WIDE_KINDS = {"VirtualService": "virtual_services", "DestinationRule": "destination_rules"}
"""Kinds every sidecar receives: any workload may call any host (Istio's
default exportTo is "*"), so routes and destination policies go everywhere."""

WORKLOAD_KINDS = {"LocalRateLimit": "rate_limits"}
"""Kinds a sidecar receives only when their selector picks its workload."""

GATEWAY_KINDS = {"Gateway": "gateways"}
"""Kinds a node receives when their selector picks its workload in any
namespace: a Gateway in default configures the ingress gateway in
istio-system, as on Istio (bookinfo-gateway.yaml). Sidecars that are not
gateways ignore them."""

SECURITY_KEYS = ("trust_bundle", "peer_authentications", "authorization_policies")
"""PeerAuthentications go to a sidecar when they are mesh-wide (istio-system),
in its namespace, or in a namespace it may call (auto mTLS must know a
destination's mode to honour DISABLE); AuthorizationPolicies when they select
its workload (its namespace's, or the root namespace's for every namespace)."""


_canonical_cache: tuple[Mapping[str, Any], list[dict[str, Any]]] | None = None


def canonical_resources(state: State) -> list[dict[str, Any]]:
    """Every stored resource in canonical form (meshkit.config.canonical), in key order.

    Computed once per state: each push builds one snapshot per sidecar from
    the same resources. States are immutable, so the resources mapping's
    identity is a safe cache key (the cache holds it, so it cannot be reused).
    """
    global _canonical_cache
    if _canonical_cache is None or _canonical_cache[0] is not state.resources:
        forms = [canonical(parse(state.resources[key])) for key in sorted(state.resources)]
        _canonical_cache = (state.resources, forms)
    return _canonical_cache[1]


def version_services(state: State, services: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """The per-version Services stored HTTPRoutes send to (reviews-v2: reviews' version v2 workloads).

    Istio's Gateway API samples split by Service, and Istio's Bookinfo
    defines reviews-v1/v2/v3 as Services selecting one version each;
    meshkit's workloads register one service each, so a backendRef
    `SERVICE-VERSION` is given a host of its own here, with the endpoints of
    SERVICE labelled that version (meshkit/config/hosts.py, version_service).
    Only hosts an HTTPRoute names get one, so a lab without HTTPRoutes keeps
    the snapshot it had.
    """
    labels_by_host = {host: [ep["labels"] for ep in entry["endpoints"]] for host, entry in services.items()}
    found: dict[str, dict[str, Any]] = {}
    for key, form in zip(sorted(state.resources), canonical_resources(state), strict=True):
        if state.resources[key].get("kind") != "HTTPRoute":
            continue
        for route in form["spec"]["http"]:
            for target in route["route"]:
                host = target["destination"]["host"]
                resolved = version_service(host, labels_by_host)
                if resolved is None or host in found:
                    continue
                service, version = resolved
                base = services[service]
                found[host] = {
                    "name": host.partition(".")[0],
                    "namespace": base["namespace"],
                    "port": base["port"],
                    "endpoints": [
                        {**ep, "labels": dict(ep["labels"])}
                        for ep in base["endpoints"]
                        if ep["labels"].get("version") == version
                    ],
                }
    return found


def selects(selector: Mapping[str, str] | None, labels: Mapping[str, str]) -> bool:
    """A workload selector picks a workload when every label it names matches; none picks all."""
    return selector is None or all(labels.get(k) == v for k, v in selector.items())


def build_snapshot(state: State, node_id: str, trust_bundle: str | None = None) -> dict[str, Any]:
    """The document in docs/internals.md: every registered service with its endpoints,
    the config (canonical form) that applies to this node, and the CA's
    `trust_bundle` (PEM) when the control plane has a CA."""
    services: dict[str, dict[str, Any]] = {}
    for key in sorted(state.instances):
        record = state.instances[key]
        if record["service"] is None:
            continue
        host = service_host(record["service"], record["namespace"])
        entry = services.setdefault(
            host,
            {"name": record["service"], "namespace": record["namespace"], "port": record["service_port"], "endpoints": []},
        )
        entry["endpoints"].append(
            {
                "address": record["address"],
                "port": record["port"],
                "instance": record["instance"],
                "workload": record["workload"],
                "version": record["version"],
                "labels": dict(record["labels"]),
                "sidecar": record["sidecar"],
                "service_account": record["service_account"],
            }
        )
    services.update(version_services(state, services))
    snapshot: dict[str, Any] = {
        "version": state.version,
        "node": node_id,
        "services": {host: services[host] for host in sorted(services)},
    }
    for key in (*MESH_WIDE_KINDS.values(), *WORKLOAD_KINDS.values(), *GATEWAY_KINDS.values()):
        snapshot[key] = []
    snapshot["trust_bundle"] = trust_bundle
    record = state.instances.get(node_id)
    peer_namespaces = {ROOT_NAMESPACE, *(entry["namespace"] for entry in services.values())}
    if record is not None:
        peer_namespaces.add(record["namespace"])
    peer_authentications: list[dict[str, Any]] = []
    authorization_policies: list[dict[str, Any]] = []
    for form in canonical_resources(state):
        if form["kind"] in MESH_WIDE_KINDS:
            snapshot[MESH_WIDE_KINDS[form["kind"]]].append(form)
        elif form["kind"] in WORKLOAD_KINDS and record is not None:
            if form["namespace"] == record["namespace"] and selects(form["spec"].get("selector"), record["labels"]):
                snapshot[WORKLOAD_KINDS[form["kind"]]].append(form)
        elif form["kind"] in GATEWAY_KINDS and record is not None:
            if selects(form["spec"]["selector"] or None, record["labels"]):
                snapshot[GATEWAY_KINDS[form["kind"]]].append(form)
        elif form["kind"] == "PeerAuthentication" and form["namespace"] in peer_namespaces:
            peer_authentications.append(form)
        elif form["kind"] == "AuthorizationPolicy":
            authorization_policies.append(form)
    snapshot["peer_authentications"] = peer_authentications
    snapshot["authorization_policies"] = (
        [dict(p) for p in applicable_policies(authorization_policies, record["namespace"], record["labels"])] if record is not None else []
    )
    return snapshot
