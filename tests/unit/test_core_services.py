"""Host names resolve to services as Kubernetes DNS would (meshkit.core.services)."""

from __future__ import annotations

import pytest

from meshkit.core.services import build_index, normalize_host, resolve, spellings
from meshkit.core.snapshot import Service

REVIEWS = Service("reviews.default.svc.cluster.local", "reviews", "default", 9080, ())
RATINGS = Service("ratings.prod.svc.cluster.local", "ratings", "prod", 9080, ())
INDEX = build_index([(REVIEWS, "reviews"), (RATINGS, "ratings")], caller_namespace="default")


@pytest.mark.parametrize(
    ("authority", "expected"),
    [
        ("reviews", "reviews"),
        ("reviews:9080", "reviews"),
        ("reviews.default", "reviews"),
        ("reviews.default.svc", "reviews"),
        ("reviews.default.svc.cluster.local", "reviews"),
        ("reviews.default.svc.cluster.local.", "reviews"),
        ("REVIEWS.Default.SVC.cluster.local:80", "reviews"),
        ("ratings", None),
        ("ratings.prod", "ratings"),
        ("ratings.prod.svc.cluster.local:1", "ratings"),
        ("reviews.prod", None),
        ("reviews.default.svc.cluster", None),
        ("127.0.0.1:9080", None),
        ("[::1]:9080", None),
        ("", None),
    ],
)
def test_resolution_follows_the_callers_search_path(authority: str, expected: str | None) -> None:
    assert resolve(INDEX, authority) == expected


def test_a_caller_in_another_namespace_resolves_its_own_bare_names() -> None:
    index = build_index([(REVIEWS, "reviews"), (RATINGS, "ratings")], caller_namespace="prod")
    assert resolve(index, "ratings") == "ratings"
    assert resolve(index, "reviews") is None
    assert resolve(index, "reviews.default") == "reviews"


@pytest.mark.parametrize(("authority", "host"), [("a:1", "a"), ("A.B.", "a.b"), ("[::1]:80", "[::1]"), ("[::1]", "[::1]"), ("x", "x")])
def test_normalize_host(authority: str, host: str) -> None:
    assert normalize_host(authority) == host


def test_bare_name_is_a_spelling_only_in_the_same_namespace() -> None:
    assert "reviews" in spellings("reviews", "default", "default")
    assert "reviews" not in spellings("reviews", "default", "prod")
