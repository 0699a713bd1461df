"""build_snapshot as a table: registry state in, sidecar document out."""

from __future__ import annotations

import json
from typing import Any

import pytest

from meshkit.config import canonical, parse
from meshkit.control import store as ops
from meshkit.control.resources import check_resource
from meshkit.control.snapshot import build_snapshot
from meshkit.control.store import State


def rec(instance: str, service: str | None, namespace: str = "default", port: int = 41000, **extra: Any) -> dict[str, Any]:
    workload = instance.rsplit("-", 1)[0]
    version = workload.rsplit("-", 1)[-1] if "-" in workload else None
    base = {
        "instance": instance, "namespace": namespace, "workload": workload, "service": service,
        "service_port": 9080 if service else None, "version": version, "service_account": "sa",
        "labels": {"app": service or workload}, "address": "127.0.0.1" if service else None,
        "port": port if service else None, "sidecar": False,
    }
    return {**base, **extra}


def state_of(*records: dict[str, Any]) -> State:
    state = State()
    for number, record in enumerate(records):
        state = ops.put_instance(state, record, f"t{number}")
    return state


def ep(instance: str, port: int, sidecar: bool = False) -> dict[str, Any]:
    workload = instance.rsplit("-", 1)[0]
    return {"address": "127.0.0.1", "port": port, "instance": instance, "workload": workload,
            "version": workload.rsplit("-", 1)[-1], "labels": {"app": workload.split("-")[0]}, "sidecar": sidecar,
            "service_account": "sa"}


CASES = [
    pytest.param(State(), {}, id="empty registry has no services"),
    pytest.param(
        state_of(rec("reviews-v1-0", "reviews")),
        {"reviews.default.svc.cluster.local": {"name": "reviews", "namespace": "default", "port": 9080,
                                               "endpoints": [ep("reviews-v1-0", 41000)]}},
        id="one instance is one service with one endpoint",
    ),
    pytest.param(
        state_of(rec("reviews-v2-0", "reviews", port=41002, sidecar=True), rec("reviews-v1-0", "reviews")),
        {"reviews.default.svc.cluster.local": {"name": "reviews", "namespace": "default", "port": 9080,
                                               "endpoints": [ep("reviews-v1-0", 41000), ep("reviews-v2-0", 41002, True)]}},
        id="instances of one service are grouped and ordered by name, sidecar flag kept",
    ),
    pytest.param(
        state_of(rec("ratings-v1-0", "ratings", namespace="shop", port=41005), rec("ratings-v1-0", "ratings")),
        {
            "ratings.default.svc.cluster.local": {"name": "ratings", "namespace": "default", "port": 9080,
                                                  "endpoints": [ep("ratings-v1-0", 41000)]},
            "ratings.shop.svc.cluster.local": {"name": "ratings", "namespace": "shop", "port": 9080,
                                               "endpoints": [ep("ratings-v1-0", 41005)]},
        },
        id="the same service name in two namespaces is two services",
    ),
    pytest.param(
        state_of(rec("client-0", None, sidecar=True)),
        {},
        id="an instance without a service has no endpoint",
    ),
]


@pytest.mark.parametrize("state, services", CASES)
def test_services_in_the_snapshot(state: State, services: dict[str, Any]) -> None:
    snapshot = build_snapshot(state, "default/client-0")
    assert snapshot == {
        "version": state.version,
        "node": "default/client-0",
        "services": services,
        "virtual_services": [],
        "destination_rules": [],
        "rate_limits": [],
        "gateways": [],
        "trust_bundle": None,
        "peer_authentications": [],
        "authorization_policies": [],
    }


def test_order_does_not_depend_on_registration_order() -> None:
    a = state_of(rec("b-v1-0", "b"), rec("a-v1-0", "a"), rec("a-v1-1", "a", port=41001))
    b = state_of(rec("a-v1-1", "a", port=41001), rec("a-v1-0", "a"), rec("b-v1-0", "b"))
    assert json.dumps(build_snapshot(a, "n")) == json.dumps(build_snapshot(b, "n"))
    assert list(build_snapshot(a, "n")["services"]) == ["a.default.svc.cluster.local", "b.default.svc.cluster.local"]


def test_the_snapshot_does_not_share_mutable_parts_with_the_state() -> None:
    state = state_of(rec("a-v1-0", "a"))
    build_snapshot(state, "n")["services"]["a.default.svc.cluster.local"]["endpoints"][0]["labels"]["x"] = "y"
    assert state.instances["default/a-v1-0"]["labels"] == {"app": "a"}


VS = {"apiVersion": "networking.istio.io/v1", "kind": "VirtualService", "metadata": {"name": "reviews"},
      "spec": {"hosts": ["reviews"], "http": [{"route": [{"destination": {"host": "reviews", "subset": "v1"}}]}]}}
DR = {"apiVersion": "networking.istio.io/v1", "kind": "DestinationRule", "metadata": {"name": "reviews"},
      "spec": {"host": "reviews", "subsets": [{"name": "v1", "labels": {"version": "v1"}}]}}


def limit(name: str, namespace: str = "default", selector: dict[str, str] | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {"tokenBucket": {"maxTokens": 5, "fillInterval": "1s"}}
    if selector is not None:
        spec["selector"] = {"matchLabels": selector}
    return {"apiVersion": "meshkit.dev/v1alpha1", "kind": "LocalRateLimit",
            "metadata": {"name": name, "namespace": namespace}, "spec": spec}


def with_resources(state: State, *objs: dict[str, Any]) -> State:
    return ops.put_resources(state, [(check_resource(obj), obj) for obj in objs])


def test_routes_and_destination_rules_go_to_every_node_in_canonical_form() -> None:
    state = with_resources(state_of(rec("reviews-v1-0", "reviews", labels={"app": "reviews", "version": "v1"})), VS, DR)
    for node in ("default/reviews-v1-0", "default/client-0", "other/unregistered"):
        snapshot = build_snapshot(state, node)
        assert snapshot["virtual_services"] == [canonical(parse(VS))]
        assert snapshot["destination_rules"] == [canonical(parse(DR))]
        assert snapshot["virtual_services"][0]["spec"]["hosts"] == ["reviews.default.svc.cluster.local"]


def test_a_rate_limit_goes_only_to_the_workloads_its_selector_picks_in_its_namespace() -> None:
    state = state_of(
        rec("reviews-v1-0", "reviews", labels={"app": "reviews", "version": "v1"}),
        rec("ratings-v1-0", "ratings", port=41001, labels={"app": "ratings", "version": "v1"}),
        rec("reviews-v1-0", "reviews", namespace="shop", port=41002, labels={"app": "reviews", "version": "v1"}),
    )
    state = with_resources(state, limit("reviews-only", selector={"app": "reviews"}), limit("whole-namespace"))
    names = {node: [form["name"] for form in build_snapshot(state, node)["rate_limits"]]
             for node in ("default/reviews-v1-0", "default/ratings-v1-0", "shop/reviews-v1-0", "default/unregistered")}
    assert names == {
        "default/reviews-v1-0": ["reviews-only", "whole-namespace"],
        "default/ratings-v1-0": ["whole-namespace"],
        "shop/reviews-v1-0": [],
        "default/unregistered": [],
    }


def test_every_snapshot_with_resources_is_accepted_by_the_sidecars_parser() -> None:
    from meshkit.core.snapshot import parse_snapshot

    state = with_resources(state_of(rec("reviews-v1-0", "reviews", labels={"app": "reviews", "version": "v1"})),
                           VS, DR, limit("reviews-only", selector={"app": "reviews"}))
    parsed = parse_snapshot(json.loads(json.dumps(build_snapshot(state, "default/reviews-v1-0"))), "default/reviews-v1-0")
    assert [vs.name for vs in parsed.virtual_services] == ["reviews"]
    assert [dr.subsets[0].name for dr in parsed.destination_rules] == ["v1"]
    assert [rl.max_tokens for rl in parsed.rate_limits] == [5]
