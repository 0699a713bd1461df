"""The hot path's memos give the answer the uncached code gives, cold, warm and full.

Three places remember answers because a sidecar sees the same few values on
every request: normalised request targets (core.paths), valid authorities
(core.framing), and the routes each raw authority resolves to
(sidecar.routing_table). A memo that ever answered differently from the
function it stands for would be a routing or security bug that only shows on
the second request, so each is checked against its uncached twin on a fresh
memo, on a warm one, and past its bound.
"""

from __future__ import annotations

import string
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from meshkit.config import canonical, load
from meshkit.core import framing, paths
from meshkit.core.routes import compile_routes
from meshkit.core.snapshot import parse_snapshot
from meshkit.sidecar.routing_table import MAX_AUTHORITIES, RoutingTable

pytestmark = pytest.mark.fast

# Request targets built from path segments, most of them the plain kind the
# fast route takes, some with meaning to a normaliser (dots, escapes,
# separators) and some that must be refused; then raw byte soup.
_SEGMENTS = st.sampled_from(
    [b"a", b"Z9", b"-_~", b"reviews", b"x@y:z", b"!$&'()*+,=", b"", b".", b"..", b".a", b"%2e", b"%2F", b"%41",
     b"%", b"%zz", b";p", b"#f", b"\\", b" ", b"\x00", b"\x7f", b"\xc3\xa9", b"*", b'"']
)
_QUERIES = st.sampled_from([b"", b"?", b"?a=1", b"?a=1&b=%20", b'?q="x"', b"?#", b"?a b", b"?/../x", b"?\x01"])
_RAW = st.lists(st.sampled_from([b"/", b".", b"%", b"a", b"?", b"#", b"*", b"\x00", b"h"]), max_size=8).map(b"".join)
TARGETS = (
    st.tuples(st.lists(_SEGMENTS, max_size=6), st.booleans(), _QUERIES).map(
        lambda t: b"/" + b"/".join(t[0]) + (b"/" if t[1] and t[0] else b"") + t[2]
    )
    | _RAW
)
AUTHORITY_CHARS = (string.ascii_letters + string.digits + "-._~!$&'()*+,;=%:[]@/ ?#").encode()
AUTHORITIES = st.binary(max_size=20) | st.lists(
    st.sampled_from([bytes([c]) for c in AUTHORITY_CHARS]), max_size=20
).map(b"".join)


@pytest.fixture(autouse=True)
def fresh_memos() -> Iterator[None]:
    """Each test starts with empty memos and leaves them empty for the next."""
    paths._remembered.clear()
    framing._valid_authorities.clear()
    yield
    paths._remembered.clear()
    framing._valid_authorities.clear()


# --- core.paths.normalize_target -------------------------------------------


@settings(max_examples=400, deadline=None)
@given(TARGETS)
def test_normalize_target_agrees_with_the_general_route_cold_and_warm(target: bytes) -> None:
    expected = paths._normalize_any_target(target)
    paths._remembered.clear()
    assert paths.normalize_target(target) == expected  # cold
    assert paths.normalize_target(target) == expected  # warm (remembered unless refused)
    assert (target in paths._remembered) == (not isinstance(expected, framing.Rejection))


def test_normalize_target_refusals_are_never_remembered() -> None:
    for target in (b"/a%zz", b"/a;b", b"/a#b", b"/a b", b"x"):
        first = paths.normalize_target(target)
        assert isinstance(first, framing.Rejection), target
        assert paths.normalize_target(target) == first
    assert paths._remembered == {}


def test_normalize_target_memo_starts_over_when_full() -> None:
    targets = [f"/p{i}/../q{i}?x={i}".encode() for i in range(paths.MAX_REMEMBERED_TARGETS + 10)]
    for target in targets:
        assert paths.normalize_target(target) == paths._normalize_any_target(target)
        assert len(paths._remembered) <= paths.MAX_REMEMBERED_TARGETS
    # Past the bound the memo was cleared once and refilled with the latest.
    assert len(paths._remembered) == 10
    for target in targets:  # every answer still the general route's
        assert paths.normalize_target(target) == paths._normalize_any_target(target)


# --- core.framing: valid authorities ----------------------------------------


def _host_verdict(host: bytes) -> tuple[object, ...] | framing.Rejection:
    """The parse of a request naming `host`: the Rejection, or the head's fields as a comparable tuple."""
    head = framing.parse_request_head(b"GET", "1.1", b"/", [(b"host", host)])
    if isinstance(head, framing.Rejection):
        return head
    return tuple(getattr(head, name) for name in framing.RequestHead.__slots__)


@settings(max_examples=400, deadline=None)
@given(AUTHORITIES)
def test_host_check_agrees_with_the_authority_grammar_cold_and_warm(host: bytes) -> None:
    valid = framing._AUTHORITY.fullmatch(host.strip(b" \t")) is not None
    framing._valid_authorities.clear()
    cold = _host_verdict(host)
    warm = _host_verdict(host)
    assert (not isinstance(cold, framing.Rejection)) == valid
    assert cold == warm
    assert (host.strip(b" \t") in framing._valid_authorities) == valid


@settings(max_examples=400, deadline=None)
@given(AUTHORITIES, TARGETS)
def test_absolute_target_fast_path_agrees_with_the_general_route(authority: bytes, path: bytes) -> None:
    target = b"http://" + authority + b"/" + path
    expected = framing._split_other_target(b"GET", target)
    framing._valid_authorities.clear()
    assert framing.split_target(b"GET", target) == expected  # cold
    assert framing.split_target(b"GET", target) == expected  # warm


def test_valid_authorities_stay_bounded_and_bad_ones_are_never_kept() -> None:
    for i in range(framing.MAX_CACHED_NAMES + 50):
        assert not isinstance(_host_verdict(f"svc-{i}:9080".encode()), framing.Rejection)
    assert len(framing._valid_authorities) == framing.MAX_CACHED_NAMES
    # Full: a new valid one is still accepted and a bad one still refused.
    assert not isinstance(_host_verdict(b"late:1"), framing.Rejection)
    for _ in range(2):
        assert isinstance(_host_verdict(b"bad host"), framing.Rejection)
    assert b"bad host" not in framing._valid_authorities


# --- sidecar.routing_table: routes per raw authority -------------------------

NODE = "default/productpage-v1-0"
REVIEWS = "reviews.default.svc.cluster.local"


def _endpoint(port: int, app: str, version: str) -> dict[str, Any]:
    return {"address": "127.0.0.1", "port": port, "instance": f"{app}-{version}-0", "workload": f"{app}-{version}",
            "version": version, "labels": {"app": app, "version": version}, "sidecar": True}


def _routing_table() -> RoutingTable:
    services = {
        REVIEWS: {"name": "reviews", "namespace": "default", "port": 9080,
                  "endpoints": [_endpoint(1, "reviews", "v1"), _endpoint(2, "reviews", "v2")]},
        "ratings.default.svc.cluster.local": {"name": "ratings", "namespace": "default", "port": 9080,
                                              "endpoints": [_endpoint(3, "ratings", "v1")]},
    }
    doc: dict[str, Any] = {"version": 1, "node": NODE, "services": services, "virtual_services": [],
                           "destination_rules": [], "rate_limits": []}
    for resource in load("""
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews}
spec:
  hosts: [reviews]
  http:
  - route:
    - destination: {host: reviews, subset: v2}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews}
spec:
  host: reviews
  subsets:
  - {name: v1, labels: {version: v1}}
  - {name: v2, labels: {version: v2}}
"""):
        form = canonical(resource)
        doc["virtual_services" if form["kind"] == "VirtualService" else "destination_rules"].append(form)
    snapshot = parse_snapshot(doc, NODE)
    routes = compile_routes(snapshot, "default", {"app": "productpage"}, lambda spec: spec)
    return RoutingTable(snapshot, routes, ())  # type: ignore[arg-type]  # cluster specs stand in for live clusters


SPELLINGS = [b"reviews", b"reviews:9080", b"REVIEWS:9080", b"reviews.default", b"reviews.default.svc.cluster.local:9080",
             b"ratings", b"ratings:9080", b"nobody", b"nobody:1", b"reviews:1", b"", b"\xff\xfe"]


def test_host_routes_agree_with_resolve_cold_and_warm() -> None:
    table = _routing_table()
    for authority in SPELLINGS * 2:  # the second round is answered from the memo
        assert table.host_routes(authority) is table.routes.resolve(authority.decode("latin-1")), authority
    assert table.host_routes(b"reviews") is not None
    assert table.host_routes(b"nobody") is None


def test_host_routes_memo_is_bounded_and_still_right_when_full() -> None:
    table = _routing_table()
    for i in range(MAX_AUTHORITIES + 20):
        assert table.host_routes(f"invented-{i}:80".encode()) is None
    assert len(table._by_authority) == MAX_AUTHORITIES
    # Full: known hosts still resolve (per request), unknown ones still miss.
    for authority in SPELLINGS:
        assert table.host_routes(authority) is table.routes.resolve(authority.decode("latin-1")), authority
    assert len(table._by_authority) == MAX_AUTHORITIES


def test_a_new_table_starts_with_an_empty_memo() -> None:
    old = _routing_table()
    old.host_routes(b"reviews")
    assert _routing_table()._by_authority == {}
