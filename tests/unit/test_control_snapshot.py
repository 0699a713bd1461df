"""build_snapshot as a table: registry state in, sidecar document out."""

from __future__ import annotations

import json
from typing import Any

import pytest

from meshkit.control import store as ops
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
            "version": workload.rsplit("-", 1)[-1], "labels": {"app": workload.split("-")[0]}, "sidecar": sidecar}


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
    assert snapshot == {"version": state.version, "node": "default/client-0", "services": services}


def test_order_does_not_depend_on_registration_order() -> None:
    a = state_of(rec("b-v1-0", "b"), rec("a-v1-0", "a"), rec("a-v1-1", "a", port=41001))
    b = state_of(rec("a-v1-1", "a", port=41001), rec("a-v1-0", "a"), rec("b-v1-0", "b"))
    assert json.dumps(build_snapshot(a, "n")) == json.dumps(build_snapshot(b, "n"))
    assert list(build_snapshot(a, "n")["services"]) == ["a.default.svc.cluster.local", "b.default.svc.cluster.local"]


def test_the_snapshot_does_not_share_mutable_parts_with_the_state() -> None:
    state = state_of(rec("a-v1-0", "a"))
    build_snapshot(state, "n")["services"]["a.default.svc.cluster.local"]["endpoints"][0]["labels"]["x"] = "y"
    assert state.instances["default/a-v1-0"]["labels"] == {"app": "a"}
