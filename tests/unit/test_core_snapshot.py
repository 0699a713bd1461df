"""Snapshot checks: whole or not at all, with the field path (meshkit.core.snapshot)."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from meshkit.core.snapshot import parse_snapshot, service_host
from meshkit.errors import ConfigError

NODE = "default/client-0"
GOOD: dict[str, Any] = {
    "version": 7,
    "node": NODE,
    "services": {
        "reviews.default.svc.cluster.local": {
            "name": "reviews",
            "namespace": "default",
            "port": 9080,
            "endpoints": [
                {"address": "127.0.0.1", "port": 41234, "instance": "reviews-v1-0", "workload": "reviews-v1", "version": "v1", "labels": {"app": "reviews"}, "sidecar": True}
            ],
        }
    },
}


def mutated(change: Any) -> dict[str, Any]:
    doc = copy.deepcopy(GOOD)
    change(doc)
    return doc


def reviews(doc: dict[str, Any]) -> dict[str, Any]:
    return doc["services"]["reviews.default.svc.cluster.local"]


def test_good_snapshot_is_typed() -> None:
    snap = parse_snapshot(GOOD, NODE)
    svc = snap.services["reviews.default.svc.cluster.local"]
    assert snap.version == 7 and svc.port == 9080 and svc.endpoints[0].workload == "reviews-v1" and svc.endpoints[0].sidecar


def test_unknown_top_level_key_is_named() -> None:
    with pytest.raises(ConfigError) as info:
        parse_snapshot({**GOOD, "routes": {}}, NODE)
    assert info.value.path == "routes" and "routes" in str(info.value)


def test_unknown_keys_inside_an_endpoint_are_ignored() -> None:
    doc = mutated(lambda d: reviews(d)["endpoints"][0].update(zone="a"))
    assert parse_snapshot(doc, NODE).version == 7


@pytest.mark.parametrize(
    ("change", "path"),
    [
        (lambda d: d.pop("version"), "version"),
        (lambda d: d.update(version="7"), "version"),
        (lambda d: d.update(version=True), "version"),
        (lambda d: d.update(node="default/other"), "node"),
        (lambda d: d.update(services=[]), "services"),
        (lambda d: reviews(d).update(port=0), "services.reviews.default.svc.cluster.local.port"),
        (lambda d: reviews(d).update(name="Reviews"), "services.reviews.default.svc.cluster.local.name"),
        (lambda d: reviews(d).update(namespace="other"), "services.reviews.default.svc.cluster.local"),
        (lambda d: reviews(d).update(endpoints={}), "services.reviews.default.svc.cluster.local.endpoints"),
        (lambda d: reviews(d)["endpoints"][0].update(port="41234"), "services.reviews.default.svc.cluster.local.endpoints[0].port"),
        (lambda d: reviews(d)["endpoints"][0].update(address="a b"), "services.reviews.default.svc.cluster.local.endpoints[0].address"),
        (lambda d: reviews(d)["endpoints"][0].update(workload="a\nb"), "services.reviews.default.svc.cluster.local.endpoints[0].workload"),
        (lambda d: reviews(d)["endpoints"][0].update(sidecar="yes"), "services.reviews.default.svc.cluster.local.endpoints[0].sidecar"),
        (lambda d: reviews(d)["endpoints"][0].pop("version"), "services.reviews.default.svc.cluster.local.endpoints[0].version"),
    ],
)
def test_malformed_field_is_reported_with_its_path(change: Any, path: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_snapshot(mutated(change), NODE)
    assert info.value.path == path
    assert info.value.kind == "snapshot"


def test_not_an_object() -> None:
    with pytest.raises(ConfigError):
        parse_snapshot([1, 2], NODE)


def test_service_host() -> None:
    assert service_host("reviews", "default") == "reviews.default.svc.cluster.local"
