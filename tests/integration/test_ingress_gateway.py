"""Istio's ingress gateway in a local lab: bookinfo-gateway.yaml applied unchanged, Bookinfo from outside.

Real processes: the gateway (meshkit's proxy in gateway mode, workload
istio-ingressgateway in istio-system) takes plain HTTP on `lab.ingress_url()`
as a browser sends it (origin-form, any Host), routes with the VirtualService
bound to bookinfo-gateway and calls productpage over mTLS with its own
identity, so telemetry names it as the source.
"""

from __future__ import annotations

import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from tests.integration.sidecar_fixtures import binomial_bounds
from tests.integration.test_traffic_bookinfo import reviews_version

from meshkit.lab import Lab

DATA = Path(__file__).resolve().parents[1] / "data" / "istio"
ISTIO = Path(__file__).resolve().parents[1] / "unit" / "fixtures" / "istio"
JSON = {"accept": "application/json"}


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    lab = Lab(home=tmp_path_factory.mktemp("ingress")).up()
    try:
        lab.deploy("bookinfo", inject=True)
        lab.apply(ISTIO / "destination-rule-all.yaml")
        lab.apply(DATA / "bookinfo-gateway.yaml")
        yield lab
    finally:
        lab.down()


@pytest.fixture(scope="module")
def browser(lab: Lab) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=lab.ingress_url(), trust_env=False, timeout=20.0) as client:
        yield client


def test_the_ingress_url_is_a_loopback_port_and_the_gateway_is_istios(lab: Lab) -> None:
    url = lab.ingress_url()
    assert url.startswith("http://127.0.0.1:")
    printed = subprocess.run([sys.executable, "-m", "meshkit.cli", "--home", str(lab.state_dir), "ingress"],
                             capture_output=True, text=True, timeout=60, check=True)
    assert printed.stdout.strip() == url
    assert list(lab.get("gw").name) == ["bookinfo-gateway"]
    status = lab.proxy_status().set_index("node")
    assert status.loc["istio-system/istio-ingressgateway-0", "status"] == "SYNCED"
    certificate = lab.certificates().set_index("workload").loc["istio-ingressgateway"]
    assert "spiffe://cluster.local/ns/istio-system/sa/istio-ingressgateway-service-account" in certificate.to_dict().values()


def test_productpage_answers_through_the_gateway_and_other_paths_get_404(browser: httpx.Client) -> None:
    page = browser.get("/productpage", headers=JSON)
    assert page.status_code == 200, page.text
    assert page.headers["x-meshkit-version"] == "v1"
    assert "reviews" in page.json()
    for host in ("bookinfo.example.com", "localhost:8080"):
        assert browser.get("/productpage", headers={**JSON, "host": host}).status_code == 200
    missing = browser.get("/reviews/0")
    assert missing.status_code == 404
    assert missing.headers["x-meshkit-response-flags"] == "NR"
    assert "bookinfo-gateway" in missing.text or "no rule" in missing.text.lower() or "matches" in missing.text


def test_telemetry_names_the_gateway_as_the_source(lab: Lab, browser: httpx.Client) -> None:
    for _ in range(3):
        assert browser.get("/productpage", headers=JSON).status_code == 200
    records = lab.requests(workload="istio-ingressgateway")
    sent = records[(records["source_workload"] == "istio-ingressgateway") & (records["destination_workload"] == "productpage-v1")]
    assert len(sent) >= 3
    assert set(sent["reporter"]) == {"source", "destination"}
    served = sent[sent["reporter"] == "destination"]
    assert set(served["connection_security_policy"]) == {"mutual_tls"}
    assert set(served["source_principal"]) == {"spiffe://cluster.local/ns/istio-system/sa/istio-ingressgateway-service-account"}
    edges = lab.topology()
    edge = edges[(edges["source"] == "istio-ingressgateway") & (edges["destination"] == "productpage.default.svc.cluster.local")]
    assert len(edge) == 1 and edge["mtls_share"].iloc[0] == 1.0
    traces = lab.traces()
    assert traces["root"].str.startswith("istio-ingressgateway -> productpage").any(), traces


def test_a_50_50_reviews_split_seen_through_the_gateway(lab: Lab, browser: httpx.Client) -> None:
    lab.apply(ISTIO / "virtual-service-reviews-50-v3.yaml")
    try:
        n = 120
        seen = Counter(reviews_version(browser.get("/productpage", headers=JSON).json()["reviews"]) for _ in range(n))
        low, high = binomial_bounds(n, 0.5)
        assert set(seen) <= {"v1", "v3"}, seen
        assert low <= seen["v3"] <= high, seen
    finally:
        lab.delete("VirtualService", "reviews")


def test_strict_mtls_in_the_mesh_still_lets_the_gateway_in(lab: Lab, browser: httpx.Client) -> None:
    lab.apply(ISTIO / "peer-authentication-mesh-strict.yaml")
    try:
        for _ in range(5):
            page = browser.get("/productpage", headers=JSON)
            assert page.status_code == 200, page.text
            assert page.json()["reviews"]
        address = lab.services().set_index("service").loc["productpage", "address"]
        with pytest.raises(httpx.HTTPError):  # a plaintext caller outside the mesh is refused; the gateway is not
            httpx.get(f"http://{address}/productpage", timeout=10.0, trust_env=False)
    finally:
        lab.delete("PeerAuthentication", "default", "istio-system")


def test_an_authorization_policy_can_admit_the_gateway_by_its_identity(lab: Lab, browser: httpx.Client) -> None:
    lab.apply({
        "apiVersion": "security.istio.io/v1", "kind": "AuthorizationPolicy",
        "metadata": {"name": "productpage-from-ingress", "namespace": "default"},
        "spec": {"selector": {"matchLabels": {"app": "productpage"}}, "action": "ALLOW", "rules": [{"from": [{"source": {
            "principals": ["cluster.local/ns/istio-system/sa/istio-ingressgateway-service-account"]}}]}]},
    })
    try:
        lab.inject("curl")
        assert browser.get("/productpage", headers=JSON).status_code == 200
        inside = lab.call("productpage", "/productpage")
        assert inside.status == 403 and inside.flags == "RBAC"
    finally:
        lab.delete("AuthorizationPolicy", "productpage-from-ingress")
