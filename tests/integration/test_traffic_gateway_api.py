"""Gateway API HTTPRoutes (GAMMA: attached to a Service) on a local Bookinfo lab.

Istio's samples/bookinfo/gateway-api routes are applied exactly as Istio
publishes them (tests/unit/fixtures/gateway-api); they send to per-version
Services (reviews-v1, reviews-v2, ...) that meshkit reads as the workloads of
reviews labelled that version. Splits are measured on traffic. Istio's
gateway-api bookinfo-gateway.yaml (a Gateway of class istio and an HTTPRoute
attached to it) opens Bookinfo on the lab's ingress gateway.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from tests.integration.sidecar_fixtures import binomial_bounds

from meshkit.errors import ConfigError
from meshkit.lab import Lab

ROUTES = Path(__file__).resolve().parents[1] / "unit" / "fixtures" / "gateway-api"


@pytest.fixture(scope="module")
def module_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    lab = Lab(home=tmp_path_factory.mktemp("gateway-api")).up()
    try:
        lab.deploy("bookinfo", inject=True)
        lab.inject("curl")
        yield lab
    finally:
        lab.down()


@pytest.fixture
def lab(module_lab: Lab) -> Iterator[Lab]:
    """The module's lab, with every HTTPRoute a test applied removed afterwards."""
    yield module_lab
    for name in module_lab.get("httproute")["name"]:
        module_lab.delete("httproute", name)


def reviews_route(*rules: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "metadata": {"name": "reviews"},
        "spec": {"parentRefs": [{"group": "", "kind": "Service", "name": "reviews", "port": 9080}], "rules": list(rules)},
    }


def to(*backends: tuple[str, int | None]) -> list[dict[str, Any]]:
    return [{"name": name, "port": 9080, **({} if weight is None else {"weight": weight})} for name, weight in backends]


def reviews_version(reviews: dict[str, Any]) -> str:
    """v1 shows no stars, v2 black, v3 red: what a learner sees on the page."""
    ratings = [review.get("rating") for review in reviews["reviews"]]
    if all(rating is None for rating in ratings):
        return "v1"
    colors = {rating.get("color") for rating in ratings if rating}
    return {"black": "v2", "red": "v3"}.get(colors.pop(), "?") if len(colors) == 1 else "?"


def measured_split(lab: Lab, n: int) -> Counter[str]:
    frame = lab.load("reviews", "/reviews/0", rate=300, requests=n)
    assert (frame.code == 200).all()
    return Counter(frame.version)


@pytest.mark.parametrize(
    ("route", "weights"),
    [
        (reviews_route({"backendRefs": to(("reviews-v1", 80), ("reviews-v2", 20))}), {"v1": 80, "v2": 20}),
        (ROUTES / "istio-route-reviews-50-v3.yaml", {"v1": 50, "v3": 50}),
        (reviews_route({"backendRefs": to(("reviews-v1", 3), ("reviews-v3", 1))}), {"v1": 75, "v3": 25}),
    ],
    ids=["gamma-80-20", "istio-route-reviews-50-v3", "relative-weights-3-to-1"],
)
def test_a_gamma_split_follows_the_weights(lab: Lab, route: Any, weights: dict[str, int]) -> None:
    lab.apply(route)
    n = 600
    counts = measured_split(lab, n)
    assert set(counts) == set(weights), counts
    for version, weight in weights.items():
        low, high = binomial_bounds(n, weight / 100)
        assert low <= counts[version] <= high, counts


def test_istios_route_all_v1_and_route_reviews_v3_change_what_the_page_shows(lab: Lab) -> None:
    lab.apply(ROUTES / "istio-route-all-v1.yaml")
    pages = Counter(reviews_version(lab.call("productpage", "/productpage", timeout=20.0).json()["reviews"])
                    for _ in range(12))
    assert pages == {"v1": 12}
    lab.apply(ROUTES / "istio-route-reviews-v3.yaml")
    pages = Counter(reviews_version(lab.call("productpage", "/productpage", timeout=20.0).json()["reviews"])
                    for _ in range(12))
    assert pages == {"v3": 12}


def test_a_header_match_sends_jason_to_v2_and_everyone_else_to_v1(lab: Lab) -> None:
    lab.apply(reviews_route(
        {"matches": [{"headers": [{"name": "End-User", "value": "jason"}]}], "backendRefs": to(("reviews-v2", None))},
        {"backendRefs": to(("reviews-v1", None))},
    ))
    jason = Counter(lab.call("reviews", "/reviews/0", headers={"end-user": "jason"}).version for _ in range(20))
    others = Counter(lab.call("reviews", "/reviews/0", headers={"end-user": who}).version
                     for who in ("jasonx", "Jason", "bob", "") * 5)
    assert jason == {"v2": 20} and others == {"v1": 20}


def test_a_path_prefix_matches_whole_segments_and_header_filters_reach_the_caller(lab: Lab) -> None:
    lab.apply(reviews_route(
        {"matches": [{"path": {"type": "PathPrefix", "value": "/reviews"}}], "backendRefs": to(("reviews-v3", None)),
         "filters": [{"type": "ResponseHeaderModifier",
                      "responseHeaderModifier": {"set": [{"name": "x-route", "value": "prefix"}]}}]},
        {"backendRefs": to(("reviews-v1", None))},
    ))
    segment = lab.call("reviews", "/reviews/0")
    assert (segment.version, segment.headers.get("x-route")) == ("v3", "prefix")
    assert lab.call("reviews", "/reviewsx").version == "v1"


def test_export_gives_the_httproute_back_as_written(lab: Lab) -> None:
    lab.apply(ROUTES / "istio-route-reviews-90-10.yaml")
    (written,) = yaml.safe_load_all((ROUTES / "istio-route-reviews-90-10.yaml").read_text())
    exported = [doc for doc in yaml.safe_load_all(lab.export_istio()) if doc and doc["kind"] == "HTTPRoute"]
    assert exported == [{**written, "metadata": {**written["metadata"], "namespace": "default"}}]


def test_a_refused_httproute_names_its_field_and_leaves_the_lab_unchanged(lab: Lab) -> None:
    lab.apply(ROUTES / "istio-route-reviews-v1.yaml")
    before = lab.get("httproute", "reviews")
    bad = reviews_route({"backendRefs": to(("reviews-v3", None)), "filters": [{"type": "RequestMirror"}]})
    with pytest.raises(ConfigError) as caught:
        lab.apply(bad)
    assert caught.value.path == "spec.rules[0].filters[0].type"
    assert "RequestMirror is not supported in meshkit" in caught.value.reason
    unknown = reviews_route({"backendRefs": to(("reviews-v9", None))})
    with pytest.raises(ConfigError) as caught:
        lab.apply(unknown)
    assert caught.value.path == "spec.rules[0].backendRefs[0].name"
    assert lab.get("httproute", "reviews") == before
    assert Counter(lab.call("reviews", "/reviews/0").version for _ in range(10)) == {"v1": 10}


@pytest.fixture
def gateway_lab(lab: Lab) -> Iterator[Lab]:
    """The lab with Istio's gateway-api bookinfo-gateway.yaml applied unchanged; the Gateway removed afterwards."""
    lab.apply(ROUTES / "istio-bookinfo-gateway.yaml")
    yield lab
    lab.delete("Gateway", "bookinfo-gateway")


def test_istios_gateway_api_bookinfo_gateway_serves_the_productpage(gateway_lab: Lab) -> None:
    with httpx.Client(base_url=gateway_lab.ingress_url(), trust_env=False, timeout=20.0) as browser:
        page = browser.get("/productpage", headers={"accept": "application/json"})
        assert page.status_code == 200, page.text
        assert page.headers["x-meshkit-version"] == "v1"
        assert "reviews" in page.json()
        static = browser.get("/static/css/style.css", headers={"host": "bookinfo.example.com"})
        assert static.headers.get("x-meshkit-response-flags") != "NR"  # routed to productpage, whatever it answers
        missing = browser.get("/reviews/0")
        assert missing.status_code == 404
        assert missing.headers["x-meshkit-response-flags"] == "NR"
        assert browser.get("/productpage/extra").status_code == 404
    inside = gateway_lab.call("productpage", "/productpage")  # the mesh's own calls are not the gateway's route
    assert inside.status == 200
    sent = gateway_lab.requests(workload="istio-ingressgateway")
    assert (sent["destination_workload"] == "productpage-v1").any()


def test_export_gives_the_gateway_and_its_route_back_as_written(gateway_lab: Lab) -> None:
    written = [doc for doc in yaml.safe_load_all((ROUTES / "istio-bookinfo-gateway.yaml").read_text()) if doc]
    exported = [doc for doc in yaml.safe_load_all(gateway_lab.export_istio())
                if doc and doc["apiVersion"].startswith("gateway.networking.k8s.io/")]
    assert sorted(exported, key=lambda doc: doc["kind"]) == sorted(
        ({**doc, "metadata": {**doc["metadata"], "namespace": "default"}} for doc in written), key=lambda doc: doc["kind"]
    )


def test_a_refused_gateway_names_its_field_and_an_istio_gateway_of_its_name_is_not_replaced(gateway_lab: Lab) -> None:
    (gateway, _) = yaml.safe_load_all((ROUTES / "istio-bookinfo-gateway.yaml").read_text())
    gateway["spec"]["listeners"][0]["protocol"] = "HTTPS"
    with pytest.raises(ConfigError) as caught:
        gateway_lab.apply(gateway)
    assert caught.value.path == "spec.listeners[0].protocol"
    assert "HTTPS is not supported in meshkit" in caught.value.reason
    istio = {"apiVersion": "networking.istio.io/v1", "kind": "Gateway", "metadata": {"name": "bookinfo-gateway"},
             "spec": {"selector": {"istio": "ingressgateway"},
                      "servers": [{"port": {"number": 8080, "name": "http", "protocol": "HTTP"}, "hosts": ["*"]}]}}
    with pytest.raises(ConfigError) as caught:
        gateway_lab.apply(istio)
    assert caught.value.path == "apiVersion"
    (stored,) = gateway_lab.get("gw")["name"]
    assert gateway_lab.get("gw", stored)["apiVersion"] == "gateway.networking.k8s.io/v1"
