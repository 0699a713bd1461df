"""Bookinfo in a real browser through the ingress gateway: Debian's Chromium, Playwright.

What Istio's getting-started has a learner do: apply bookinfo-gateway.yaml
(unchanged), open the ingress URL's /productpage, see the page, sign in as
jason with Bookinfo's form while reviews-test-v2 is applied, and see black
stars (reviews v2) on every reload. Every request goes browser -> gateway
(plain HTTP, origin-form, Host 127.0.0.1:PORT) -> productpage over mTLS.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import BrowserContext

from meshkit.lab import Lab

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "data" / "istio"
ISTIO = ROOT / "unit" / "fixtures" / "istio"


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Lab]:
    lab = Lab(home=tmp_path / "lab").up()
    try:
        lab.deploy("bookinfo", inject=True)
        lab.apply(ISTIO / "destination-rule-all.yaml")
        lab.apply(DATA / "bookinfo-gateway.yaml")
        yield lab
    finally:
        lab.down()


def test_a_browser_opens_bookinfo_through_the_gateway_and_jason_sees_black_stars(
    lab: Lab, browser: BrowserContext
) -> None:
    lab.apply(ISTIO / "virtual-service-reviews-test-v2.yaml")
    page = browser.new_page()
    response = page.goto(lab.ingress_url() + "/productpage")
    assert response is not None and response.status == 200
    assert page.locator("h1").inner_text() == "The Comedy of Errors"
    assert page.locator("p.stars").count() == 0  # anonymous: reviews v1, no stars

    page.fill("input[name=username]", "jason")
    page.fill("input[name=passwd]", "jason")
    with page.expect_navigation():
        page.click("form.login button[type=submit]")
    assert page.url == lab.ingress_url() + "/productpage"
    for _ in range(5):
        assert "Signed in as" in page.content() and "jason" in page.content()
        colors = {page.locator("p.stars").nth(i).get_attribute("data-color") for i in range(page.locator("p.stars").count())}
        assert colors == {"black"}, page.content()
        page.reload()

    missing = page.goto(lab.ingress_url() + "/reviews/0")
    assert missing is not None and missing.status == 404
