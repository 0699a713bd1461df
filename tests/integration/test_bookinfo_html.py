"""Bookinfo's page in a lab: HTML for a browser, JSON for programs, sign-in routes jason.

Real processes through their sidecars, as a learner's browser reaches
productpage: with a browser's Accept the page comes back with the stars of
the reviews version that answered; without it, the JSON the lessons read.
Signing in as jason with Bookinfo's form sets the cookie that productpage
turns into `end-user: jason`, which Istio's reviews-test-v2 rule routes to
reviews v2 (black stars) on every request.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from meshkit.lab import Lab

ISTIO = Path(__file__).resolve().parents[1] / "unit" / "fixtures" / "istio"
BROWSER_ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
BROWSER = {"accept": BROWSER_ACCEPT}
STAR_COLOR = {"v1": set(), "v2": {"black"}, "v3": {"red"}}


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    lab = Lab(home=tmp_path_factory.mktemp("bookinfo-html")).up()
    try:
        lab.deploy("bookinfo", inject=True)
        lab.inject("curl")
        lab.apply(ISTIO / "destination-rule-all.yaml")
        yield lab
    finally:
        lab.down()


def page(lab: Lab, headers: dict[str, str]) -> str:
    result = lab.call("productpage", "/productpage", headers={**BROWSER, **headers}, timeout=20.0)
    assert result.status == 200, result
    assert result.headers["content-type"] == "text/html; charset=utf-8"
    return result.text


def served_by(html: str) -> str:
    """The reviews version the page names ("Reviews served by: reviews-v2...")."""
    found = re.search(r"Reviews served by: reviews-(v\d)", html)
    assert found, html
    return found.group(1)


def star_colors(html: str) -> set[str]:
    return set(re.findall(r'<p class="stars" data-color="(\w+)"', html))


def test_browser_gets_the_page_with_the_stars_of_the_version_that_answered(lab: Lab) -> None:
    seen: Counter[str] = Counter()
    for _ in range(30):
        html = page(lab, {})
        version = served_by(html)
        assert star_colors(html) == STAR_COLOR[version], html
        assert "<h1>The Comedy of Errors</h1>" in html and 'action="login"' in html
        seen[version] += 1
    # No VirtualService for reviews: each request picks among its three
    # versions (a version missing from 30 has odds of 3 * (2/3)^30, 2e-5).
    assert set(seen) == {"v1", "v2", "v3"}, seen


def test_programs_keep_the_json(lab: Lab) -> None:
    for headers in ({}, {"accept": "*/*"}, {"accept": "application/json"}):
        result = lab.call("productpage", "/productpage", headers=headers, timeout=20.0)
        assert result.status == 200 and result.headers["content-type"] == "application/json"
        body = result.json()
        assert body["instance"].startswith("productpage-v1") and body["product"]["title"] == "The Comedy of Errors"
    products = lab.call("productpage", "/api/v1/products")
    assert [p["id"] for p in products.json()] == [0]


def test_signing_in_as_jason_routes_him_to_reviews_v2(lab: Lab) -> None:
    lab.apply(ISTIO / "virtual-service-reviews-test-v2.yaml")
    try:
        signed_in_routing(lab)
    finally:
        lab.delete("VirtualService", "reviews")


def signed_in_routing(lab: Lab) -> None:
    login = lab.call("productpage", "/login", method="POST", body="username=jason&passwd=anything",
                     headers={**BROWSER, "content-type": "application/x-www-form-urlencoded"})
    assert login.status == 302, login
    assert login.headers["location"] == "productpage"
    cookie = login.headers["set-cookie"].split(";", 1)[0]
    assert cookie == "user=jason"

    jason = [page(lab, {"cookie": cookie}) for _ in range(10)]
    anonymous = [page(lab, {}) for _ in range(5)]

    assert all("Signed in as <b>jason</b>" in html for html in jason)
    assert Counter(served_by(html) for html in jason) == {"v2": 10}
    assert all(star_colors(html) == {"black"} for html in jason)
    assert Counter(served_by(html) for html in anonymous) == {"v1": 5}
    assert all(star_colors(html) == set() and "Signed in" not in html for html in anonymous)
    logout = lab.call("productpage", "/logout", headers={**BROWSER, "cookie": cookie})
    assert logout.status == 302 and "Max-Age=0" in logout.headers["set-cookie"]
