"""The controls of lessons 00-03 against a real lab: the load balancer widget and the sidecar control.

One Bookinfo lab for the module, sidecars everywhere (the lab's curl client
too, so the balancer it uses is the one configured), as notebook 03 has it.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import pytest

from meshkit.lab import Lab
from meshkit.notebook.bench import Bench
from meshkit.notebook.charts import mesh

RULE: dict[str, Any] = {
    "apiVersion": "networking.istio.io/v1",
    "kind": "DestinationRule",
    "metadata": {"name": "reviews", "namespace": "default"},
    "spec": {
        "host": "reviews",
        "trafficPolicy": {
            "loadBalancer": {"simple": "ROUND_ROBIN"},
            "connectionPool": {"tcp": {"maxConnections": 50}, "http": {"http1MaxPendingRequests": 20}},
            "outlierDetection": {"consecutive5xxErrors": 7, "interval": "2s", "baseEjectionTime": "15s"},
        },
        "subsets": [
            {"name": "v1", "labels": {"version": "v1"}},
            {"name": "v2", "labels": {"version": "v2"}, "trafficPolicy": {"connectionPool": {"tcp": {"maxConnections": 5}}}},
            {"name": "v3", "labels": {"version": "v3"}},
        ],
    },
}


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    with Lab(home=tmp_path_factory.mktemp("lab")) as lab:
        lab.deploy("bookinfo", inject=True)
        lab.inject("curl")
        yield lab


def without_balancer(rule: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(rule)
    out["spec"]["trafficPolicy"].pop("loadBalancer", None)
    return out


def versions(lab: Lab, calls: int, user: str | None = None) -> list[str]:
    headers = {"end-user": user} if user else None
    return [lab.call("reviews", "/reviews/0", headers=headers).version for _ in range(calls)]


def test_the_balancer_starts_from_the_lab_and_changes_only_the_load_balancer(lab: Lab) -> None:
    lab.apply(RULE)
    before = lab.get("DestinationRule", "reviews", "default")
    widget = mesh.BalancerWidget(lab, "reviews")
    assert widget.policy.value == "ROUND_ROBIN", "it shows the policy the lab has"

    assert widget.set_policy("CONSISTENT_HASH", "end-user"), widget.error
    after = lab.get("DestinationRule", "reviews", "default")
    assert after["spec"]["trafficPolicy"]["loadBalancer"] == {"consistentHash": {"httpHeaderName": "end-user"}}
    assert without_balancer(after) == without_balancer(before), "subsets, pool, outlier detection kept"
    assert widget.version == lab.health()["version"] and widget.ack_ms > 0
    for user in ("jason", "kim", "ana"):
        assert len(set(versions(lab, 4, user))) == 1, f"{user} stays on one version under the hash"

    widget.policy.value = "ROUND_ROBIN"
    widget.apply_button.click()
    assert widget.error == ""
    assert sorted(versions(lab, 6)) == ["v1", "v1", "v2", "v2", "v3", "v3"], "round robin takes each in turn"
    assert without_balancer(lab.get("DestinationRule", "reviews", "default")) == without_balancer(before)


def test_a_refused_policy_changes_nothing(lab: Lab) -> None:
    lab.apply(RULE)
    version = lab.health()["version"]
    widget = mesh.BalancerWidget(lab, "reviews")
    widget.policy.value = "CONSISTENT_HASH"
    widget.header.value = ""
    assert not widget.apply_policy() and "header" in widget.error
    assert lab.health()["version"] == version


def test_a_bench_moved_while_load_runs_shows_the_hash_then_the_spread(lab: Lab) -> None:
    lab.apply(RULE)
    widget = mesh.BalancerWidget(lab, "reviews")
    widget.set_policy("CONSISTENT_HASH", "end-user")
    bench = Bench(lab, widget, service="reviews", path="/reviews/0", charts=[mesh.versions_chart()],
                  rate=20, duration_s=4, live=False)
    run = bench.run_load(steps=[(2.0, lambda: widget.set_policy("ROUND_ROBIN"))], headers={"end-user": "jason"})
    assert run is not None and run.state == "done"
    frame = bench.frame()
    early, late = frame[frame["at"] < frame["at"].min() + 1.5], frame[frame["at"] > frame["at"].min() + 2.8]
    assert early["version"].nunique() == 1, "hashed on end-user: one version"
    assert late["version"].nunique() == 3, "round robin: every version"
    traces = bench.figures[0].data
    assert {t.name for t in traces} == {"v1", "v2", "v3"}


def test_the_sidecar_control_follows_the_lab(lab: Lab) -> None:
    control = mesh.SidecarControl(lab)
    assert all(control.sidecars.values()) and set(control.sidecars) == set(lab.workloads()["workload"])
    assert control.uninject("details-v1"), control.error
    assert not lab.workloads().set_index("workload").loc["details-v1", "sidecar"]
    assert control.sidecars["details-v1"] is False and "no sidecar" in dict(
        (v, k) for k, v in control.target.options)["details-v1"]
    control.target.value = "details-v1"
    control.inject_button.click()
    assert control.error == "" and control.sidecars["details-v1"] is True
    assert lab.workloads().set_index("workload").loc["details-v1", "sidecar"]
