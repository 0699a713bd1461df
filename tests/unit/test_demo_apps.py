"""The demo apps have Bookinfo's and the shop's names, shape and timeouts."""

from __future__ import annotations

import dataclasses

import pytest

from meshkit.demo.apps import APPS, Call, Latency, WorkloadSpec, get_app
from meshkit.demo.spec import parse_spec
from meshkit.errors import ConfigError, UnknownWorkload


def _by_name(app: str) -> dict[str, WorkloadSpec]:
    return {w.name: w for w in get_app(app)}


def test_bookinfo_has_istios_workloads_versions_and_service_accounts() -> None:
    workloads = _by_name("bookinfo")
    assert {name: (w.service, w.version, w.service_account) for name, w in workloads.items()} == {
        "productpage-v1": ("productpage", "v1", "bookinfo-productpage"),
        "details-v1": ("details", "v1", "bookinfo-details"),
        "reviews-v1": ("reviews", "v1", "bookinfo-reviews"),
        "reviews-v2": ("reviews", "v2", "bookinfo-reviews"),
        "reviews-v3": ("reviews", "v3", "bookinfo-reviews"),
        "ratings-v1": ("ratings", "v1", "bookinfo-ratings"),
    }
    assert all(w.port == 9080 for w in workloads.values())
    assert workloads["reviews-v2"].labels == {"app": "reviews", "version": "v2"}


def test_productpage_calls_details_then_reviews_with_bookinfos_timeouts() -> None:
    productpage = _by_name("bookinfo")["productpage-v1"]
    # ratings only for its API route /api/v1/products/<id>/ratings; the page calls details and reviews.
    assert productpage.calls == (Call("details", "/details/{id}", timeout_s=3.0, retries=0),
                                 Call("reviews", "/reviews/{id}", timeout_s=3.0, retries=1),
                                 Call("ratings", "/ratings/{id}", timeout_s=3.0, retries=0))
    assert productpage.concurrent_calls is False
    assert set(productpage.paths) == {"/productpage", "/"}


def test_reviews_versions_differ_as_in_bookinfo() -> None:
    workloads = _by_name("bookinfo")
    assert workloads["reviews-v1"].calls == ()
    assert workloads["reviews-v2"].calls == (Call("ratings", "/ratings/{id}", timeout_s=10.0),)
    assert workloads["reviews-v3"].calls == (Call("ratings", "/ratings/{id}", timeout_s=2.5),)
    assert (workloads["reviews-v2"].star_color, workloads["reviews-v3"].star_color) == ("black", "red")


def test_the_delay_task_surprise_holds_productpage_gives_up_before_reviews_v2_does() -> None:
    workloads = _by_name("bookinfo")
    reviews_call = workloads["productpage-v1"].calls[1]
    productpage_patience = reviews_call.timeout_s * (reviews_call.retries + 1)
    ratings_delay = 7.0
    assert productpage_patience == 6.0
    assert productpage_patience < ratings_delay < workloads["reviews-v2"].calls[0].timeout_s


def test_shop_has_a_canary_that_is_slower_and_fails_more() -> None:
    workloads = _by_name("shop")
    assert set(workloads) == {"frontend-v1", "catalog-v1", "catalog-v2", "cart-v1", "payment-v1", "inventory-v1"}
    assert all(w.service_account == f"shop-{w.service}" for w in workloads.values())
    assert [c.service for c in workloads["frontend-v1"].calls] == ["catalog", "cart"]
    assert {c.service for c in workloads["cart-v1"].calls} == {"payment", "inventory"}
    v1, v2 = workloads["catalog-v1"], workloads["catalog-v2"]
    assert v2.latency.p50_ms > v1.latency.p50_ms and v2.latency.p99_ms > v1.latency.p99_ms
    assert v2.error_rate > v1.error_rate


@pytest.mark.parametrize("app", sorted(APPS))
def test_every_call_targets_a_service_of_the_same_app_on_its_port(app: str) -> None:
    ports = {w.service: w.port for w in get_app(app)}
    for workload in get_app(app):
        for call in workload.calls:
            assert ports.get(call.service) == call.port, (workload.name, call)


@pytest.mark.parametrize("app", sorted(APPS))
def test_every_workload_has_a_valid_process_spec(app: str) -> None:
    for workload in get_app(app):
        doc = workload.app_spec(namespace="shop", host="127.0.0.1", port=41300, resolver="dns.json")
        spec = parse_spec(doc, source=workload.name)
        assert (spec.service, spec.version, spec.namespace, spec.port) == (
            workload.service, workload.version, "shop", 41300)
        assert [c.service for c in spec.calls] == [c.service for c in workload.calls]
        assert spec.resolver == "dns.json"


def test_unknown_app_names_the_known_ones() -> None:
    with pytest.raises(UnknownWorkload, match="'bookinf'; known apps: bookinfo, shop"):
        get_app("bookinf")


def test_a_bad_workload_is_rejected_naming_it_and_the_field() -> None:
    base = _by_name("bookinfo")["ratings-v1"]
    with pytest.raises(ConfigError, match=r"WorkloadSpec 'ratings-v1' at latency_ms.p99"):
        dataclasses.replace(base, latency=Latency(10.0, 1.0))
    with pytest.raises(ConfigError, match=r"at error_rate"):
        dataclasses.replace(base, error_rate=1.5)
    with pytest.raises(ConfigError, match=r"at service_account"):
        dataclasses.replace(base, service_account="Bad\nName")
    with pytest.raises(ConfigError, match=r"at replicas"):
        dataclasses.replace(base, replicas=0)
    with pytest.raises(ConfigError, match=r"at calls\[0\].timeout_s"):
        dataclasses.replace(base, calls=(Call("details", "/x", timeout_s=0.0),))
