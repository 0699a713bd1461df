"""Istio's security tasks on the local lab, with Istio's YAML, and the lab's security views.

- Mutual TLS migration (https://istio.io/latest/docs/tasks/security/authentication/mtls-migration/):
  httpbin and curl in namespaces foo and bar with sidecars, curl in legacy
  without; every call succeeds under the default PERMISSIVE; STRICT in foo
  stops legacy's calls to foo only; mesh-wide STRICT stops them everywhere;
  calls between sidecars keep working throughout.
- Authorization on HTTP traffic (https://istio.io/latest/docs/tasks/security/authorization/authz-http/):
  allow-nothing denies productpage (403 RBAC: access denied); productpage-viewer
  lets GET through (the page loads but shows errors for details and reviews)
  and not POST; details-viewer and reviews-viewer restore the page.
- lab.security() and lab.certificates(), and the tour saying mTLS.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from meshkit.demo.apps import Latency, WorkloadSpec
from meshkit.lab import CLIENT, Lab

FIXTURES = Path(__file__).resolve().parent.parent / "unit" / "fixtures" / "istio"
HTTPBIN = WorkloadSpec(name="httpbin", service="httpbin", version="v1", service_account="httpbin", port=8000, latency=Latency(0.2, 1.0))

FOO_STRICT = """
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata:
  name: "default"
  namespace: "foo"
spec:
  mtls:
    mode: STRICT
"""

DETAILS_VIEWER = """
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata:
  name: "details-viewer"
  namespace: default
spec:
  selector:
    matchLabels:
      app: details
  action: ALLOW
  rules:
  - from:
    - source:
        principals: ["cluster.local/ns/default/sa/bookinfo-productpage"]
    to:
    - operation:
        methods: ["GET"]
"""

RATINGS_VIEWER = """
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata:
  name: "ratings-viewer"
  namespace: default
spec:
  selector:
    matchLabels:
      app: ratings
  action: ALLOW
  rules:
  - from:
    - source:
        principals: ["cluster.local/ns/default/sa/bookinfo-reviews"]
    to:
    - operation:
        methods: ["GET"]
"""


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    lab = Lab(home=tmp_path_factory.mktemp("security-lab")).up()
    try:
        yield lab
    finally:
        lab.down()


def matrix(lab: Lab) -> dict[tuple[str, str], int]:
    """Istio's loop: `curl http://httpbin.<to>:8000/` from curl in each namespace; the status (0: connection refused)."""
    found = {}
    for source in ("foo", "bar", "legacy"):
        for target in ("foo", "bar"):
            result = lab.call(f"httpbin.{target}", "/", source=f"{source}/curl", timeout=5)
            found[(source, target)] = result.status
    return found


def test_istio_mutual_tls_migration_task(lab: Lab) -> None:
    for namespace in ("foo", "bar"):
        lab.deploy([HTTPBIN, CLIENT], namespace=namespace, inject=True)
    lab.deploy(CLIENT, namespace="legacy", inject=False)

    assert set(matrix(lab).values()) == {200}, "PERMISSIVE by default: plaintext and mTLS both served"
    edges = lab.security()
    legacy = edges[edges["source"] == "unknown"]
    assert set(legacy["security"]) == {"plaintext"} and set(legacy["peer_identity"]) == {"-"}
    meshed = edges[edges["source"] == "curl"]
    assert set(meshed["security"]) == {"mTLS"}
    assert set(meshed["peer_identity"]) == {"spiffe://cluster.local/ns/foo/sa/curl", "spiffe://cluster.local/ns/bar/sa/curl"}
    assert set(edges["mode"]) == {"PERMISSIVE (default)"}

    lab.apply(FOO_STRICT)
    after = matrix(lab)
    assert after[("legacy", "foo")] == 0, "STRICT in foo refuses legacy's plaintext"
    assert {k: v for k, v in after.items() if k != ("legacy", "foo")} == dict.fromkeys(
        [("foo", "foo"), ("foo", "bar"), ("bar", "foo"), ("bar", "bar"), ("legacy", "bar")], 200
    )
    modes = lab.security().set_index("destination")["mode"]
    assert set(modes[modes.index.str.startswith("httpbin.foo")]) == {"STRICT (foo/default)"}

    lab.apply(FIXTURES / "peer-authentication-mesh-strict.yaml")
    everywhere = matrix(lab)
    assert everywhere[("legacy", "foo")] == everywhere[("legacy", "bar")] == 0
    assert {v for k, v in everywhere.items() if k[0] != "legacy"} == {200}

    # Back to PERMISSIVE: the legacy client is served again.
    lab.delete("PeerAuthentication", "default", namespace="istio-system")
    lab.delete("PeerAuthentication", "default", namespace="foo")
    assert set(matrix(lab).values()) == {200}


def test_istio_authorization_on_http_traffic_task(lab: Lab) -> None:
    lab.deploy("bookinfo")
    lab.inject("default")

    assert lab.call("productpage", "/productpage").status == 200
    lab.apply(FIXTURES / "authorization-policy-allow-nothing.yaml")
    denied = lab.call("productpage", "/productpage")
    assert (denied.status, denied.text, denied.flags) == (403, "RBAC: access denied", "RBAC")

    lab.apply(FIXTURES / "authorization-policy-productpage-viewer.yaml")
    page = lab.call("productpage", "/productpage")
    assert page.status == 200
    body = page.json()
    assert "error" in body["details"] and "error" in body["reviews"], "details and reviews still deny productpage"
    assert lab.call("productpage", "/productpage", method="POST").status == 403

    lab.apply(DETAILS_VIEWER)
    lab.apply(FIXTURES / "authorization-policy-reviews-viewer.yaml")
    lab.apply(RATINGS_VIEWER)
    body = lab.call("productpage", "/productpage").json()
    assert "error" not in body["details"] and "error" not in body["reviews"]

    edges = lab.security()
    by_destination = edges.groupby("destination")["denied"].sum()
    assert by_destination["productpage.default.svc.cluster.local"] >= 2  # allow-nothing, then POST
    assert by_destination["details.default.svc.cluster.local"] >= 1
    denials = lab.requests(reporter="destination")
    denials = denials[denials["code"] == 403]
    assert set(denials["flags"]) == {"RBAC"}

    for name in ("allow-nothing", "productpage-viewer", "details-viewer", "reviews-viewer", "ratings-viewer"):
        lab.delete("AuthorizationPolicy", name)
    assert lab.call("productpage", "/productpage", method="POST").status == 200


def test_every_sidecar_holds_a_certificate_for_its_workload_identity(lab: Lab) -> None:
    if not (lab.workloads()["app"] == "bookinfo").any():
        lab.deploy("bookinfo", inject=True)
    certs = lab.certificates()
    rows = certs.set_index(["namespace", "instance"])
    assert rows.loc[("default", "productpage-v1-0"), "identity"] == "spiffe://cluster.local/ns/default/sa/bookinfo-productpage"
    assert rows.loc[("default", "reviews-v2-0"), "identity"] == "spiffe://cluster.local/ns/default/sa/bookinfo-reviews"
    assert certs["serial"].notna().all() and certs["serial"].is_unique
    assert ((certs["time_to_renewal"] > pd.Timedelta(0)) & (certs["time_to_renewal"] < certs["time_to_expiry"])).all()
    assert (certs["not_after"] - certs["not_before"]).min().total_seconds() >= 24 * 3600  # the default 24 h (+1 min skew)
    assert not certs["expired"].any() and (certs["rotations"] == 0).all()
