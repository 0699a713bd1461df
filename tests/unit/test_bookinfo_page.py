"""Bookinfo's page for a browser and productpage's own routes: pure functions.

The fields are made the way the services make them (roles.compose for
reviews and for productpage), so the page is tested on what it really gets.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from meshkit.demo.bookinfo import (
    DETAILS_UNAVAILABLE, PRODUCT_RATINGS_UNAVAILABLE, RATINGS_UNAVAILABLE, REVIEWS_UNAVAILABLE,
)
from meshkit.demo.calls import CallResult
from meshkit.demo.headers import end_user_from_cookie, prefers_html
from meshkit.demo.page import description_html, render_page, stars_html
from meshkit.demo.productpage import (
    Route, api_answer, login_answer, login_user, logout_answer, method_answer, page_answer, page_calls,
    productpage_route, route_calls, static_answer,
)
from meshkit.demo.roles import compose
from meshkit.demo.spec import AppSpec, CallSpec, parse_spec

CHROME = "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8"
FIREFOX = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
RATINGS_BODY = {"id": 0, "ratings": {"Reviewer1": 5, "Reviewer2": 4}}
FORM = "application/x-www-form-urlencoded"


def _spec(**extra: Any) -> AppSpec:
    return parse_spec({"service": "svc", "version": "v1", "port": 0, **extra}, source="test")


def _ok(service: str, body: Any) -> CallResult:
    return CallResult(service, f"http://{service}:9080/", None, 200, body, None, 1, 1.0)


def _failed(service: str, status: int | None = None) -> CallResult:
    error = None if status is not None else "timed out after 3 s"
    return CallResult(service, f"http://{service}:9080/", None, status, None, error, 2, 6000.0)


def _reviews(version: str, color: str | None, ratings: CallResult | None) -> dict[str, Any]:
    """A reviews answer as the reviews service makes it (identity + fields)."""
    results = () if ratings is None else (ratings,)
    _, fields = compose(_spec(role="reviews", star_color=color), "0", results)
    return {"service": "reviews", "version": version, "instance": f"reviews-{version}", **fields}


def _page_fields(details: CallResult, reviews: CallResult) -> dict[str, Any]:
    _, fields = compose(_spec(role="productpage"), "0", (details, reviews))
    return {"service": "productpage", "version": "v1", "instance": "productpage-v1", **fields}


def _details() -> CallResult:
    _, fields = compose(_spec(role="details"), "0", ())
    return _ok("details", {"service": "details", "version": "v1", "instance": "details-v1", **fields})


def _stars(page: str) -> list[tuple[str, int]]:
    """(colour, filled stars) per review, as a reader of the page sees them."""
    return [(color, stars.count("&#9733;"))
            for color, stars in re.findall(r'<p class="stars" data-color="(\w+)"[^>]*>([^<]*)</p>', page)]


@pytest.mark.parametrize(("accept", "html"), [
    (CHROME, True),
    (FIREFOX, True),
    ("text/html", True),
    ("TEXT/HTML", True),
    ("text/*", True),
    ("text/html;q=0.9, */*;q=0.1", True),
    ("application/json;q=0.5, text/html", True),
    ("text/html;level=1;q=0.8, application/json;q=0.2", True),
    (None, False),
    ("", False),
    ("*/*", False),
    ("application/json", False),
    ("application/json, text/html", False),
    ("text/html;q=0.5, application/json", False),
    ("text/html;q=0", False),
    ("text/html;q=oops, */*", False),
    ("text/plain", False),
    ("application/*, text/html;q=0.9", False),
])
def test_only_a_client_that_prefers_html_gets_the_page(accept: str | None, html: bool) -> None:
    assert prefers_html(accept) is html


@pytest.mark.parametrize(("version", "color", "expected"), [
    ("v1", None, []),
    ("v2", "black", [("black", 5), ("black", 4)]),
    ("v3", "red", [("red", 5), ("red", 4)]),
])
def test_reviews_version_shows_as_bookinfo_does(version: str, color: str | None,
                                                 expected: list[tuple[str, int]]) -> None:
    ratings = None if version == "v1" else _ok("ratings", RATINGS_BODY)
    page = render_page(_page_fields(_details(), _ok("reviews", _reviews(version, color, ratings))), None)

    assert _stars(page) == expected
    assert f'<p class="served-by">Reviews served by: reviews-{version}</p>' in page
    assert "An extremely entertaining play by Shakespeare." in page and "Reviewer2" in page
    assert "<th>ISBN-10</th><td>1234567890</td>" in page and "<th>Publisher</th><td>PublisherA</td>" in page
    assert "<h1>The Comedy of Errors</h1>" in page
    assert "Error fetching" not in page and "<script" not in page


def test_each_failing_service_shows_bookinfos_apology() -> None:
    reviews_ok = _ok("reviews", _reviews("v2", "black", _ok("ratings", RATINGS_BODY)))

    no_details = render_page(_page_fields(_failed("details", 503), reviews_ok), None)
    no_reviews = render_page(_page_fields(_details(), _failed("reviews")), None)
    no_ratings = render_page(_page_fields(_details(), _ok("reviews", _reviews("v2", "black", _failed("ratings")))),
                             None)

    assert "Error fetching product details" in no_details and DETAILS_UNAVAILABLE in no_details
    assert _stars(no_details) == [("black", 5), ("black", 4)]
    assert "Error fetching product reviews" in no_reviews and REVIEWS_UNAVAILABLE in no_reviews
    assert "<th>Author</th><td>William Shakespeare</td>" in no_reviews
    assert _stars(no_ratings) == []
    assert no_ratings.count(f'<p class="rating-error">{RATINGS_UNAVAILABLE}</p>') == 2
    assert "Error fetching" not in no_ratings


def test_signed_in_user_and_sign_in_form() -> None:
    fields = _page_fields(_details(), _ok("reviews", _reviews("v1", None, None)))

    signed_in = render_page(fields, "jason")
    anonymous = render_page(fields, None)

    assert "Signed in as <b>jason</b>" in signed_in and 'href="logout"' in signed_in
    assert '<form class="login" method="post" action="login">' not in signed_in
    assert '<form class="login" method="post" action="login">' in anonymous
    assert 'name="username"' in anonymous and 'name="passwd"' in anonymous
    assert "Signed in" not in anonymous


def test_everything_interpolated_is_escaped() -> None:
    hostile = '<script>alert("x")</script>'
    reviews = {"instance": hostile, "reviews": [
        {"reviewer": hostile, "text": hostile, "rating": {"stars": 3, "color": 'red" onclick="x'}},
        {"reviewer": "r", "text": "t", "rating": {"error": hostile}},
    ]}
    fields = {"instance": hostile, "product": {"title": hostile, "descriptionHtml": hostile},
              "details": {"author": hostile, "ISBN-10": hostile}, "reviews": reviews}

    page = render_page(fields, hostile)

    assert "<script" not in page and "onclick" not in page
    assert "Signed in as <b>&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;</b>" in page
    # user, title, author, ISBN-10, reviewer, text, rating error, reviews' and the page's instance
    assert page.count("&lt;script&gt;") == 9
    assert _stars(page) == [("black", 3)]
    assert "Error fetching product" in render_page({"details": hostile, "reviews": [hostile]}, None)


def test_description_keeps_bold_italics_and_web_links_only() -> None:
    assert description_html('<a href="https://x.org/a?b=1&amp;c=2">W</a>: <b>bold</b> <i>it</i>') == (
        '<a href="https://x.org/a?b=1&amp;c=2" rel="noreferrer">W</a>: <b>bold</b> <i>it</i>')
    assert description_html('<a href="javascript:alert(1)">x</a><img src=x onerror=y>t') == "xt"
    assert description_html("<b>open <i>nested") == "<b>open <i>nested</i></b>"
    assert description_html("5 < 6 & </b> <style>p{}</style>") == "5 &lt; 6 &amp;  p{}"


def test_stars_are_clamped_and_v1_has_none() -> None:
    assert stars_html(None) == "" and stars_html({}) == ""
    assert stars_html({"stars": 9, "color": "red"}).count("&#9733;") == 5
    assert stars_html({"stars": -1}).count("&#9734;") == 5
    assert stars_html({"stars": True, "color": "red"}) == ""


@pytest.mark.parametrize(("path", "route"), [
    ("/login", Route("login", methods=("POST",))),
    ("/logout", Route("logout")),
    ("/static", Route("static")),
    ("/static/tailwind/tailwind.css", Route("static")),
    ("/api/v1/products", Route("products")),
    ("/api/v1/products/0", Route("product", "0")),
    ("/api/v1/products/007/reviews", Route("reviews", "7")),
    ("/api/v1/products/3/ratings", Route("ratings", "3")),
    ("/api/v1/products/x", None),
    ("/api/v1/products/1/other", None),
    ("/productpage", None),
    ("/staticfiles", None),
])
def test_productpage_routes(path: str, route: Route | None) -> None:
    assert productpage_route(path) == route


def test_page_calls_leave_ratings_to_its_api_route() -> None:
    details, reviews, ratings = (CallSpec(s, f"/{s}/{{id}}", 3.0, 0, 9080) for s in ("details", "reviews", "ratings"))
    calls = (details, reviews, ratings)

    assert page_calls(calls) == (details, reviews)
    assert route_calls(Route("product"), calls) == (details,)
    assert route_calls(Route("reviews"), calls) == (reviews,)
    assert route_calls(Route("ratings"), calls) == (ratings,)
    assert route_calls(Route("products"), calls) == ()
    assert route_calls(Route("ratings"), (details, reviews)) == ()


def test_api_answers_as_bookinfo_does() -> None:
    calls = (CallSpec("details", "/details/{id}", 3.0, 0, 9080),)
    products = api_answer(Route("products"), (), calls)
    details = api_answer(Route("product", "0"), (_details(),), calls)
    failed = api_answer(Route("reviews", "0"), (_failed("reviews", 503),), calls)
    timed_out = api_answer(Route("ratings", "0"), (_failed("ratings"),), calls)
    missing = api_answer(Route("ratings", "0"), (), calls)

    assert (products.status, products.content_type) == (200, "application/json")
    assert json.loads(products.body) == [{"id": 0, "title": "The Comedy of Errors",
                                          "descriptionHtml": json.loads(products.body)[0]["descriptionHtml"]}]
    assert json.loads(details.body) == _details().body and details.status == 200
    assert (failed.status, json.loads(failed.body)) == (503, {"error": REVIEWS_UNAVAILABLE})
    assert (timed_out.status, json.loads(timed_out.body)) == (500, {"error": PRODUCT_RATINGS_UNAVAILABLE})
    assert missing.status == 404
    assert "makes no call to ratings (its calls: details)" in json.loads(missing.body)["error"]


def test_login_sets_the_cookie_productpage_reads_and_logout_clears_it() -> None:
    answer = login_answer(b"username=jason&passwd=anything", FORM, html=True)

    headers = dict(answer.headers)
    assert answer.status == 302 and headers["location"] == "productpage"
    cookie = headers["set-cookie"]
    assert cookie.startswith("user=jason;") and "Path=/" in cookie and "HttpOnly" in cookie
    assert end_user_from_cookie([("cookie", cookie.split(";", 1)[0])]) == "jason"
    out = dict(logout_answer().headers)
    assert out["location"] == "productpage"
    assert out["set-cookie"].startswith("user=;") and "Max-Age=0" in out["set-cookie"]


@pytest.mark.parametrize(("body", "content_type"), [
    (b"username=%3Cscript%3E&passwd=x", FORM),
    (b"username=a%3Bb", FORM),
    (b"username=&passwd=x", FORM),
    (b"passwd=x", FORM),
    (b"username=a&username=b", FORM),
    (b"username=jason", "application/json"),
    (b"username=\xff", FORM),
])
def test_login_refuses_what_cannot_be_a_user_name(body: bytes, content_type: str) -> None:
    assert login_user(body, content_type) is None
    page = login_answer(body, content_type, html=True)
    assert page.status == 400 and page.content_type.startswith("text/html") and "<script" not in page.body.decode()
    program = login_answer(body, content_type, html=False)
    assert program.status == 400 and "any password will do" in json.loads(program.body)["error"]


def test_login_takes_a_form_with_a_charset_and_any_password() -> None:
    assert login_user(b"username=jason.b_2-x", FORM + "; charset=UTF-8") == "jason.b_2-x"
    assert login_user(b"username=jason", FORM) == "jason"


def test_page_answer_keeps_the_json_and_varies_on_accept() -> None:
    fields = _page_fields(_details(), _ok("reviews", _reviews("v2", "black", _ok("ratings", RATINGS_BODY))))

    as_json = page_answer(200, fields, "jason", html=False)
    as_html = page_answer(200, fields, "jason", html=True)

    assert json.loads(as_json.body) == fields and as_json.body == json.dumps(fields).encode()
    assert as_json.content_type == "application/json" and as_html.content_type == "text/html; charset=utf-8"
    assert ("vary", "accept") in as_json.headers and ("vary", "accept") in as_html.headers
    assert as_html.body.decode().startswith("<!doctype html>")


def test_static_is_empty_and_login_is_post_only() -> None:
    assert static_answer("/static/img/izzy.png").status == 404
    refused = method_answer(Route("login", methods=("POST",)), "GET")
    assert refused is not None and refused.status == 405 and ("allow", "POST") in refused.headers
    assert method_answer(Route("login", methods=("POST",)), "POST") is None
    assert method_answer(Route("products"), "HEAD") is None
