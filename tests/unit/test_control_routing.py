"""The router: pattern matching, captures, 404 and 405."""

from __future__ import annotations

import pytest

from meshkit.control.asgi import HttpError, Request, Response
from meshkit.control.routing import Router, match_path, split_pattern


@pytest.mark.parametrize(
    "pattern, path, expected",
    [
        ("/healthz", "/healthz", {}),
        ("/healthz", "/healthz/", {}),
        ("/healthz", "/health", None),
        ("/v1/r/{ns}/{name}", "/v1/r/default/reviews", {"ns": "default", "name": "reviews"}),
        ("/v1/r/{ns}/{name}", "/v1/r/default", None),
        ("/v1/r/{ns}/{name}", "/v1/r/default/a/b", None),
        ("/v1/r/{ns}/{name}", "/v1/r//reviews", None),
        ("/v1/r/{ns}/{name}", "/v1/r/default/a%2Fb", {"ns": "default", "name": "a/b"}),
        ("/v1/r/{ns}/{name}", "/v1/r/de%66ault/x", {"ns": "default", "name": "x"}),
    ],
)
def test_match_path(pattern: str, path: str, expected: dict[str, str] | None) -> None:
    assert match_path(split_pattern(pattern), path) == expected


async def handler(request: Request) -> Response:
    return Response(200, {})


def router() -> Router:
    table = Router()
    table.add("GET", "/v1/things/{name}", handler, "admin")
    table.add("PUT", "/v1/things/{name}", handler, "admin")
    return table


def test_resolve_finds_the_route_and_its_captures() -> None:
    route, params = router().resolve("PUT", "/v1/things/a")
    assert route.method == "PUT" and params == {"name": "a"}


def test_an_unknown_path_is_404_naming_it() -> None:
    with pytest.raises(HttpError) as caught:
        router().resolve("GET", "/v2/things/a")
    assert caught.value.status == 404 and "/v2/things/a" in caught.value.message


def test_a_known_path_with_the_wrong_method_is_405_listing_the_allowed_ones() -> None:
    with pytest.raises(HttpError) as caught:
        router().resolve("POST", "/v1/things/a")
    assert caught.value.status == 405 and "GET, PUT" in caught.value.message


def test_a_path_that_is_not_utf8_is_400() -> None:
    with pytest.raises(HttpError) as caught:
        router().resolve("GET", "/v1/things/%ff")
    assert caught.value.status == 400
