"""The security keys of a snapshot: what the control plane sends each node, and how the sidecar checks it."""

from __future__ import annotations

from typing import Any

import pytest

from meshkit.config import canonical, load
from meshkit.control import store as ops
from meshkit.control.resources import check_resource
from meshkit.control.snapshot import build_snapshot
from meshkit.control.store import State
from meshkit.core.authz import compile_policies
from meshkit.core.peer_auth import effective_mode
from meshkit.core.snapshot import parse_snapshot
from meshkit.errors import ConfigError

NODE = "default/productpage-v1-0"
BUNDLE = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"


def rec(instance: str, service: str, namespace: str = "default", sa: str = "sa", sidecar: bool = True) -> dict[str, Any]:
    workload = instance.rsplit("-", 1)[0]
    return {
        "instance": instance, "namespace": namespace, "workload": workload, "service": service,
        "service_port": 9080, "version": "v1", "service_account": sa, "labels": {"app": service},
        "address": "127.0.0.1", "port": 41000 + len(instance), "sidecar": sidecar,
    }


def state_with(yaml_text: str) -> State:
    state = State()
    for number, record in enumerate(
        [rec("productpage-v1-0", "productpage", sa="bookinfo-productpage"), rec("ratings-v1-0", "ratings", namespace="shop"),
         rec("legacy-v1-0", "legacy", namespace="legacy", sidecar=False)]
    ):
        state = ops.put_instance(state, record, f"t{number}")
    from meshkit.config import to_manifest

    items = [(check_resource(to_manifest(r)), to_manifest(r)) for r in load(yaml_text)]
    return ops.put_resources(state, items) if items else state


POLICIES = """
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: default, namespace: istio-system}
spec: {mtls: {mode: PERMISSIVE}}
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: shop-off, namespace: shop}
spec: {mtls: {mode: DISABLE}}
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: elsewhere, namespace: nobody-here}
spec: {mtls: {mode: STRICT}}
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: productpage-viewer, namespace: default}
spec:
  selector: {matchLabels: {app: productpage}}
  rules: [{to: [{operation: {methods: [GET], ports: ["9080"]}}]}]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: ratings-only, namespace: default}
spec:
  selector: {matchLabels: {app: ratings}}
  rules: [{to: [{operation: {methods: [GET]}}]}]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: mesh-deny, namespace: istio-system}
spec:
  action: DENY
  rules: [{to: [{operation: {paths: ["/admin*"]}}]}]
"""


def test_the_control_plane_sends_the_bundle_the_peer_policies_that_matter_and_the_policies_that_select_the_node() -> None:
    snapshot = build_snapshot(state_with(POLICIES), NODE, BUNDLE)
    assert snapshot["trust_bundle"] == BUNDLE
    assert [(p["namespace"], p["name"]) for p in snapshot["peer_authentications"]] == [
        ("istio-system", "default"), ("shop", "shop-off")
    ]
    assert sorted((p["namespace"], p["name"]) for p in snapshot["authorization_policies"]) == [
        ("default", "productpage-viewer"), ("istio-system", "mesh-deny")
    ]
    endpoints = {e["instance"]: e for s in snapshot["services"].values() for e in s["endpoints"]}
    assert endpoints["productpage-v1-0"]["service_account"] == "bookinfo-productpage"


def test_the_sidecar_parses_what_the_control_plane_sends() -> None:
    parsed = parse_snapshot(build_snapshot(state_with(POLICIES), NODE, BUNDLE), NODE)
    assert parsed.trust_bundle == BUNDLE
    assert effective_mode(parsed.peer_authentications, "shop", {"app": "ratings"}).mode == "DISABLE"
    assert effective_mode(parsed.peer_authentications, "default", {}).mode == "PERMISSIVE"
    compiled = compile_policies(parsed.authorization_policies)
    assert [p.name for p in compiled] == ["default/productpage-viewer", "istio-system/mesh-deny"]
    assert compiled[0].rules[0].operations[0].ports == (9080,)
    endpoint = parsed.services["productpage.default.svc.cluster.local"].endpoints[0]
    assert endpoint.service_account == "bookinfo-productpage"


def snapshot_with(**keys: Any) -> dict[str, Any]:
    return {"version": 3, "node": NODE, "services": {}, **keys}


def ap(**spec: Any) -> dict[str, Any]:
    return {"kind": "AuthorizationPolicy", "namespace": "default", "name": "p", "spec": {"selector": None, "action": "ALLOW", "rules": [], **spec}}


@pytest.mark.parametrize(
    ("keys", "path"),
    [
        ({"trust_bundle": "not a pem"}, "trust_bundle"),
        ({"trust_bundle": 7}, "trust_bundle"),
        ({"peer_authentications": [{"kind": "PeerAuthentication", "namespace": "default", "name": "x", "spec": {"selector": None, "mtls": {"mode": "MAYBE"}}}]},
         "peer_authentications[0].spec.mtls.mode"),
        ({"peer_authentications": {"a": 1}}, "peer_authentications"),
        ({"authorization_policies": [ap(action="CUSTOM")]}, "authorization_policies[0].spec.action"),
        ({"authorization_policies": [ap(rules=[{"to": [{"ports": ["http"]}]}])]}, "authorization_policies[0].spec.rules[0].to[0].ports[0]"),
        ({"authorization_policies": [ap(rules=[{"from": [{"principals": ["a\x00b"]}]}])]}, "authorization_policies[0].spec.rules[0].from[0].principals[0]"),
        ({"authorization_policies": [ap(rules=[{"when": [{"values": ["x"]}]}])]}, "authorization_policies[0].spec.rules[0].when[0].key"),
        ({"authorization_policies": [ap(selector={"app": 3})]}, "authorization_policies[0].spec.selector.app"),
        ({"authorization_policies": [{**ap(), "kind": "PeerAuthentication"}]}, "authorization_policies[0].kind"),
        ({"authorization_policies": [ap(dry_run="true")]}, "authorization_policies[0].spec.dry_run"),
        ({"authorization_policies": [ap(action="AUDIT", dry_run=True)]}, "authorization_policies[0].spec.dry_run"),
        ({"authorization_policies": [ap(rules=[{"from": [{"service_accounts": ["default/a b"]}]}])]},
         "authorization_policies[0].spec.rules[0].from[0].service_accounts[0]"),
    ],
    ids=["bundle-not-pem", "bundle-not-text", "unknown-mode", "not-a-list", "custom-action", "port-name", "nul-principal",
         "when-without-key", "selector-value", "wrong-kind", "dry-run-text", "dry-run-audit", "service-account-space"],
)
def test_malformed_security_keys_are_refused_with_the_field_path(keys: dict[str, Any], path: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_snapshot(snapshot_with(**keys), NODE)
    assert info.value.path == path, info.value


def test_a_when_key_meshkit_cannot_enforce_is_refused_when_compiled() -> None:
    parsed = parse_snapshot(snapshot_with(authorization_policies=[ap(rules=[{"when": [{"key": "request.auth.claims[iss]", "values": ["x"]}]}])]), NODE)
    with pytest.raises(ConfigError) as info:
        compile_policies(parsed.authorization_policies)
    assert "request.auth.claims" in str(info.value)


def test_dry_run_and_service_accounts_reach_the_sidecar_checked() -> None:
    (form,) = [canonical(r) for r in load("""
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: deny-curl, namespace: default, annotations: {"istio.io/dry-run": "true"}}
spec:
  action: DENY
  rules: [{from: [{source: {serviceAccounts: [curl]}}]}]
""")]
    (parsed,) = parse_snapshot(snapshot_with(authorization_policies=[form]), NODE).authorization_policies
    assert parsed["spec"]["dry_run"] is True
    assert parsed["spec"]["rules"][0]["from"][0]["service_accounts"] == ["default/curl"]
    (older,) = parse_snapshot(snapshot_with(authorization_policies=[ap()]), NODE).authorization_policies
    assert older["spec"]["dry_run"] is False


def test_canonical_istio_yaml_round_trips_through_the_sidecar_checks() -> None:
    from pathlib import Path

    fixtures = Path(__file__).parent / "fixtures" / "istio"
    forms = [canonical(r) for name in ("authorization-policy-allow-nothing.yaml", "authorization-policy-productpage-viewer.yaml")
             for r in load((fixtures / name).read_text())]
    parsed = parse_snapshot(snapshot_with(authorization_policies=forms), NODE)
    assert [p["name"] for p in parsed.authorization_policies] == ["allow-nothing", "productpage-viewer"]
    pa = [canonical(r) for r in load((fixtures / "peer-authentication-mesh-strict.yaml").read_text())]
    assert effective_mode(parse_snapshot(snapshot_with(peer_authentications=pa), NODE).peer_authentications, "default", {}).mode == "STRICT"
