"""Composing responses, forwarding headers, retry and routing decisions: pure functions."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from meshkit.demo.bookinfo import DETAILS_UNAVAILABLE, RATINGS_UNAVAILABLE, REVIEWS_UNAVAILABLE
from meshkit.demo.calls import CallResult, should_retry
from meshkit.demo.headers import FORWARDED_HEADERS, end_user_from_cookie, forwarded_headers
from meshkit.demo.outbound import plan_target, proxy_from_environ
from meshkit.demo.resolver import Resolver, write_resolver
from meshkit.demo.roles import compose, outgoing_headers
from meshkit.demo.spec import AppSpec, CallSpec, parse_spec
from meshkit.errors import ConfigError


def _spec(**extra: Any) -> AppSpec:
    return parse_spec({"service": "svc", "version": "v1", "port": 0, **extra}, source="test")


def _ok(service: str, body: Any) -> CallResult:
    return CallResult(service, f"http://{service}:9080/", None, 200, body, None, 1, 1.0)


def _failed(service: str, error: str | None = "timed out after 3 s", status: int | None = None) -> CallResult:
    return CallResult(service, f"http://{service}:9080/", None, status, None, error, 2, 6000.0)


def test_reviews_v2_shows_black_stars_from_ratings() -> None:
    status, fields = compose(_spec(role="reviews", star_color="black"), "0",
                             (_ok("ratings", {"ratings": {"Reviewer1": 5, "Reviewer2": 4}}),))
    assert status == 200
    assert [(r["reviewer"], r["rating"]) for r in fields["reviews"]] == [
        ("Reviewer1", {"stars": 5, "color": "black"}), ("Reviewer2", {"stars": 4, "color": "black"})]


def test_reviews_shows_ratings_unavailable_when_the_call_failed_and_no_rating_without_a_call() -> None:
    _, failed = compose(_spec(role="reviews", star_color="red"), "0", (_failed("ratings"),))
    assert [r["rating"] for r in failed["reviews"]] == [{"error": RATINGS_UNAVAILABLE}] * 2
    _, v1 = compose(_spec(role="reviews"), "0", ())
    assert all("rating" not in r for r in v1["reviews"])


def test_productpage_apologises_for_each_part_that_failed() -> None:
    reviews_body = {"version": "v3", "reviews": []}
    status, fields = compose(_spec(role="productpage"), "0",
                             (_failed("details", None, 500), _ok("reviews", reviews_body)))
    assert status == 200
    assert fields["details"] == {"error": DETAILS_UNAVAILABLE}
    assert fields["reviews"] == reviews_body
    _, nothing = compose(_spec(role="productpage"), "0", (_ok("details", {"author": "x"}), _failed("reviews")))
    assert nothing["reviews"] == {"error": REVIEWS_UNAVAILABLE}
    assert nothing["product"]["title"] == "The Comedy of Errors"


def test_details_and_ratings_answer_for_the_requested_product() -> None:
    assert compose(_spec(role="details"), "3", ())[1]["id"] == 3
    assert compose(_spec(role="ratings"), "3", ())[1] == {"id": 3, "ratings": {"Reviewer1": 5, "Reviewer2": 4}}


def test_generic_service_nests_answers_and_fails_502_naming_the_failed_call() -> None:
    status, fields = compose(_spec(), "0", (_ok("catalog", {"version": "v2"}), _ok("cart", {})))
    assert (status, fields) == (200, {"catalog": {"version": "v2"}, "cart": {}})
    status, fields = compose(_spec(), "0", (_ok("catalog", {}), _failed("cart", None, 503)))
    assert status == 502
    assert fields["error"] == "downstream call failed: cart: answered 503"


def test_call_record_names_who_served() -> None:
    record = _ok("reviews", {"instance": "reviews-v2-0"}).record()
    assert (record["served_by"], record["status"], record["error"]) == ("reviews-v2-0", 200, None)
    assert _failed("reviews").record()["served_by"] is None


@pytest.mark.parametrize(("status", "error", "retry"), [
    (200, None, False), (404, None, False), (500, None, True), (503, None, True), (None, "timed out", True)])
def test_only_transport_errors_and_5xx_are_retried(status: int | None, error: str | None, retry: bool) -> None:
    assert should_retry(status, error) is retry


def test_forwarded_headers_keep_tracing_and_identity_and_drop_the_rest() -> None:
    incoming = [(b"x-request-id", b"r1"), (b"traceparent", b"00-ab-cd-01"), (b"end-user", b"jason"),
                (b"cookie", b"a=1"), (b"cookie", b"b=2"), (b"host", b"productpage:9080"),
                (b"x-forwarded-client-cert", b"By=spiffe://evil"), (b"content-length", b"0")]
    assert forwarded_headers(incoming) == [("x-request-id", "r1"), ("traceparent", "00-ab-cd-01"),
                                           ("end-user", "jason"), ("cookie", "a=1"), ("cookie", "b=2")]
    assert {"x-b3-traceid", "x-b3-spanid", "x-b3-sampled", "b3", "tracestate", "x-ot-span-context",
            "user-agent"} <= FORWARDED_HEADERS


def test_proxy_comes_from_http_proxy_in_either_case() -> None:
    assert proxy_from_environ({"HTTP_PROXY": "http://127.0.0.1:1"}) == "http://127.0.0.1:1"
    assert proxy_from_environ({"http_proxy": "http://127.0.0.1:2"}) == "http://127.0.0.1:2"
    assert proxy_from_environ({"HTTP_PROXY": ""}) is None


def test_plan_target_uses_absolute_form_through_the_sidecar_and_host_header_without(tmp_path: Path) -> None:
    call = CallSpec("ratings", "/ratings/{id}", 10.0, 0, 9080)
    through = plan_target(call, "/ratings/0", proxied=True, resolver=None)
    assert (through.url, through.host_header, through.address) == ("http://ratings:9080/ratings/0", None, None)

    dns = tmp_path / "dns.json"
    write_resolver(dns, {"ratings.default.svc.cluster.local": [("127.0.0.1", 41250)]})
    direct = plan_target(call, "/ratings/0", proxied=False, resolver=Resolver(str(dns), "default"))
    assert (direct.url, direct.host_header, direct.address) == (
        "http://127.0.0.1:41250/ratings/0", "ratings:9080", "127.0.0.1:41250")

    with pytest.raises(ConfigError, match="no sidecar"):
        plan_target(call, "/ratings/0", proxied=False, resolver=None)


@pytest.mark.parametrize(("cookie", "user"), [
    ("user=jason", "jason"), ("a=1; user=jason; b=2", "jason"), ("user=", None), ("username=jason", None),
    ("user=jason\u00e9", None), ("user=a b", None)])
def test_the_login_cookie_names_the_end_user_only_when_it_is_a_plain_name(cookie: str, user: str | None) -> None:
    assert end_user_from_cookie([("cookie", cookie)]) == user


def test_productpage_alone_turns_the_login_cookie_into_end_user() -> None:
    incoming = [(b"cookie", b"user=jason"), (b"x-request-id", b"r1")]
    assert ("end-user", "jason") in outgoing_headers(_spec(role="productpage"), incoming)
    assert ("end-user", "jason") not in outgoing_headers(_spec(role="reviews"), incoming)
    explicit = [(b"cookie", b"user=jason"), (b"end-user", b"alice")]
    assert [v for k, v in outgoing_headers(_spec(role="productpage"), explicit) if k == "end-user"] == ["alice"]
