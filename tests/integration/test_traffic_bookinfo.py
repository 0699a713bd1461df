"""Istio's Bookinfo traffic tasks on a local lab, with the YAML exactly as Istio publishes it.

Request routing, traffic shifting and fault injection
(https://istio.io/latest/docs/tasks/traffic-management/): the resources are
the files of Istio's samples/bookinfo/networking (tests/unit/fixtures/istio),
applied with `lab.apply`, and each test checks the outcome Istio's task
describes. One lab serves the module; each test applies what it needs.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.integration.sidecar_fixtures import binomial_bounds

from meshkit.lab import Lab

ISTIO = Path(__file__).resolve().parents[1] / "unit" / "fixtures" / "istio"
JASON = {"cookie": "user=jason"}
REVIEWS_UNAVAILABLE = "Sorry, product reviews are currently unavailable for this book."
RATINGS_UNAVAILABLE = "Ratings service is currently unavailable"


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    lab = Lab(home=tmp_path_factory.mktemp("bookinfo")).up()
    try:
        lab.deploy("bookinfo", inject=True)
        lab.inject("curl")
        lab.apply(ISTIO / "destination-rule-all.yaml")
        yield lab
    finally:
        lab.down()


def page_reviews(lab: Lab, headers: dict[str, str] | None = None) -> dict:
    result = lab.call("productpage", "/productpage", headers=headers, timeout=20.0)
    assert result.status == 200, result
    return result.json()["reviews"]


def reviews_version(reviews: dict) -> str:
    """v1 shows no stars, v2 black, v3 red: what a learner sees on the page."""
    ratings = [review.get("rating") for review in reviews["reviews"]]
    if all(rating is None for rating in ratings):
        return "v1"
    colors = {rating.get("color") for rating in ratings if rating}
    return {"black": "v2", "red": "v3"}.get(colors.pop(), "?") if len(colors) == 1 else "?"


def test_route_all_traffic_to_v1(lab: Lab) -> None:
    lab.apply(ISTIO / "virtual-service-all-v1.yaml")
    seen = Counter(reviews_version(page_reviews(lab)) for _ in range(15))
    assert seen == {"v1": 15}


def test_route_by_user_identity_jason_sees_v2_everyone_else_v1(lab: Lab) -> None:
    lab.apply(ISTIO / "virtual-service-all-v1.yaml")
    lab.apply(ISTIO / "virtual-service-reviews-test-v2.yaml")
    jason = Counter(reviews_version(page_reviews(lab, JASON)) for _ in range(10))
    others = Counter(reviews_version(page_reviews(lab, {"cookie": "user=bob"})) for _ in range(5))
    anonymous = Counter(reviews_version(page_reviews(lab)) for _ in range(5))
    assert jason == {"v2": 10} and others == {"v1": 5} and anonymous == {"v1": 5}


def test_header_routing_from_the_client_is_exact(lab: Lab) -> None:
    lab.apply(ISTIO / "virtual-service-reviews-test-v2.yaml")
    jason = Counter(lab.call("reviews", "/reviews/0", headers={"end-user": "jason"}).version for _ in range(20))
    others = Counter(lab.call("reviews", "/reviews/0", headers={"end-user": who}).version for who in ("jasonx", "Jason", "bob", "") * 5)
    assert jason == {"v2": 20} and others == {"v1": 20}


@pytest.mark.parametrize(("manifest", "weights"), [("virtual-service-reviews-50-v3.yaml", {"v1": 50, "v3": 50}), ("virtual-service-reviews-80-20.yaml", {"v1": 80, "v2": 20})])
def test_traffic_shifting_follows_the_weights(lab: Lab, manifest: str, weights: dict[str, int]) -> None:
    lab.apply(ISTIO / manifest)
    n = 600
    frame = lab.load("reviews", "/reviews/0", rate=300, requests=n)
    assert (frame.code == 200).all()
    counts = Counter(frame.version)
    assert set(counts) == set(weights)
    for version, weight in weights.items():
        low, high = binomial_bounds(n, weight / 100)
        assert low <= counts[version] <= high, counts


def test_a_90_10_split_is_within_10_per_100_calls_and_a_binomial_bound_over_2000(lab: Lab) -> None:
    lab.apply(
        {
            "apiVersion": "networking.istio.io/v1", "kind": "VirtualService", "metadata": {"name": "reviews"},
            "spec": {"hosts": ["reviews"], "http": [{"route": [
                {"destination": {"host": "reviews", "subset": "v1"}, "weight": 90},
                {"destination": {"host": "reviews", "subset": "v2"}, "weight": 10},
            ]}]},
        }
    )
    frame = lab.load("reviews", "/reviews/0", rate=400, requests=2000)
    assert (frame.code == 200).all()
    v2 = (frame.version == "v2").to_numpy()
    # Istio's own tolerance: each block of 100 calls within 10 of the weight...
    per_hundred = [int(v2[i : i + 100].sum()) for i in range(0, 2000, 100)]
    assert all(0 <= share <= 20 for share in per_hundred), per_hundred
    # ...and the whole run within the 99.9% binomial interval.
    low, high = binomial_bounds(2000, 0.1)
    assert low <= int(v2.sum()) <= high
    assert set(frame.version) == {"v1", "v2"}


def test_delay_fault_for_jason_breaks_the_page_after_productpages_own_timeouts(lab: Lab) -> None:
    """Istio's task: with a 7 s delay on ratings for jason, productpage gives up on
    reviews (3 s timeout, one retry) and shows its apology after about 6 s."""
    lab.apply(ISTIO / "virtual-service-all-v1.yaml")
    lab.apply(ISTIO / "virtual-service-reviews-test-v2.yaml")
    lab.apply(ISTIO / "virtual-service-ratings-test-delay.yaml")
    started = time.monotonic()
    result = lab.call("productpage", "/productpage", headers=JASON, timeout=20.0)
    elapsed = time.monotonic() - started
    assert result.status == 200
    assert result.json()["reviews"] == {"error": REVIEWS_UNAVAILABLE}
    assert 5.9 <= elapsed < 7.5, elapsed
    others = page_reviews(lab, {"cookie": "user=bob"})
    assert reviews_version(others) == "v1"


def test_abort_fault_for_jason_shows_ratings_unavailable(lab: Lab) -> None:
    lab.apply(ISTIO / "virtual-service-all-v1.yaml")
    lab.apply(ISTIO / "virtual-service-reviews-test-v2.yaml")
    lab.apply(ISTIO / "virtual-service-ratings-test-abort.yaml")
    reviews = page_reviews(lab, JASON)
    assert [review["rating"] for review in reviews["reviews"]] == [{"error": RATINGS_UNAVAILABLE}] * 2
    assert reviews_version(page_reviews(lab)) == "v1"
    direct = lab.call("ratings", "/ratings/0", headers={"end-user": "jason"})
    assert direct.status == 500 and direct.flags == "FI"
