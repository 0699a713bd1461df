"""Notebook 12's path control against a real lab: it starts from the lab, switches sidecars and the mesh-wide
mTLS mode, keeps every field it does not own, and the hop then really is direct, plaintext or mTLS."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import pytest

from meshkit.lab import Lab
from meshkit.notebook.charts import cost

MESH_POLICY = {
    "apiVersion": "security.istio.io/v1",
    "kind": "PeerAuthentication",
    "metadata": {"name": "default", "namespace": "istio-system", "labels": {"team": "platform"},
                 "annotations": {"owner": "sre"}},
    "spec": {"mtls": {"mode": "DISABLE"}},
}
DETAILS_ROUTE = {
    "apiVersion": "networking.istio.io/v1",
    "kind": "VirtualService",
    "metadata": {"name": "details", "namespace": "default"},
    "spec": {"hosts": ["details"], "http": [{"timeout": "2s", "route": [{"destination": {"host": "details"}}]}]},
}


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    with Lab(home=tmp_path_factory.mktemp("lab")) as lab:
        lab.deploy("bookinfo")
        yield lab


def config(lab: Lab) -> dict[tuple[str, str, str], dict[str, Any]]:
    return {(k, ns, n): lab.get(k, n, ns) for k, ns, n in lab.get().itertuples(index=False)}


def sidecars(lab: Lab) -> dict[str, bool]:
    table = lab.workloads().set_index("workload")
    return {w: bool(table.loc[w, "sidecar"]) for w in ("curl", "details-v1", "productpage-v1")}


def edge_security(lab: Lab) -> set[str]:
    """How curl's calls to details were secured in fresh traffic, as details' sidecar recorded them."""
    table = lab.security()
    before = {(r.security, r.requests) for r in table[table.source == "curl"].itertuples()}
    lab.load("details", "/details/0", rate=50, requests=20)
    table = lab.security()
    rows = table[(table.source == "curl") & table.destination.str.startswith("details.")]
    return {r.security for r in rows.itertuples() if (r.security, r.requests) not in before}


def test_it_starts_on_the_lab_path_and_keeps_every_field_it_does_not_own(lab: Lab) -> None:
    control = cost.PathControl(lab, client="curl", workloads=["details-v1"])
    assert control.path == cost.DIRECT and control.buttons.value == cost.DIRECT

    lab.inject("curl")
    lab.inject("details-v1")
    lab.apply([MESH_POLICY, DETAILS_ROUTE])
    control = cost.PathControl(lab, client="curl", workloads=["details-v1"])
    assert control.path == cost.PLAINTEXT, "a DISABLE already in the lab is where the control starts"
    assert "details-v1 accepts DISABLE" in control.state.value
    assert edge_security(lab) == {"plaintext"}

    before = config(lab)
    control.buttons.value = cost.MTLS  # what a click does
    assert control.error == "" and control.path == cost.MTLS
    after = config(lab)
    key = ("PeerAuthentication", "istio-system", "default")
    assert after[key]["metadata"] == MESH_POLICY["metadata"], "labels and annotations kept, so the policy stays"
    assert after[key]["spec"] == {}, "only its mode was the control's"
    assert {k: v for k, v in after.items() if k != key} == {k: v for k, v in before.items() if k != key}
    assert edge_security(lab) == {"mTLS"}

    control.set_path(cost.PLAINTEXT)
    expected = copy.deepcopy(MESH_POLICY)
    assert lab.get("PeerAuthentication", "default", "istio-system") == expected
    assert config(lab)[("VirtualService", "default", "details")] == DETAILS_ROUTE
    assert sidecars(lab) == {"curl": True, "details-v1": True, "productpage-v1": False}


def test_direct_restarts_only_the_hops_ends_and_a_policy_of_only_a_disable_goes_away(lab: Lab) -> None:
    lab.apply({**MESH_POLICY, "metadata": {"name": "default", "namespace": "istio-system"}})
    control = cost.PathControl(lab, client="curl", workloads=["details-v1"])
    assert control.set_path(cost.DIRECT)
    assert sidecars(lab) == {"curl": False, "details-v1": False, "productpage-v1": False}
    assert "restarted curl, details-v1 without a sidecar" in control.message
    assert lab.get("PeerAuthentication", "default", "istio-system")["spec"]["mtls"]["mode"] == "DISABLE", \
        "with no sidecar on the hop there is no mode to change"

    assert control.set_path(cost.MTLS)
    assert sidecars(lab) == {"curl": True, "details-v1": True, "productpage-v1": False}
    assert lab.get("PeerAuthentication").empty, "the policy held nothing but the DISABLE"
    assert "deleted PeerAuthentication istio-system/default" in control.message


def test_a_hop_with_one_sidecar_is_on_no_path_until_one_is_picked(lab: Lab) -> None:
    lab.uninject("details-v1")
    control = cost.PathControl(lab, client="curl", workloads=["details-v1"])
    assert control.path == cost.MIXED and control.buttons.value is None
    assert "not one of the three paths" in control.state.value
    assert control.set_path(cost.MTLS) and control.buttons.value == cost.MTLS


def test_an_unknown_path_or_workload_is_said_not_raised(lab: Lab) -> None:
    control = cost.PathControl(lab, client="curl", workloads=["nope-v1"])
    assert "no workload nope-v1" in control.error
    control = cost.PathControl(lab, client="curl", workloads=["details-v1"])
    assert not control.set_path("sidecars, carrier pigeon") and "unknown path" in control.error


def test_measured_paths_land_in_the_bench_as_runs_labelled_with_their_path(lab: Lab) -> None:
    control = cost.PathControl(lab, client="curl", workloads=["details-v1"])
    usage = cost.UsageSampler(lab, ["curl", "details-v1"], sample_s=0.2, label=lambda: control.path)
    bench = cost.cost_bench(lab, control, usage, service="details", path="/details/0", rate=50, duration_s=1.5,
                            live=False)
    runs = cost.measure_paths(bench, control, [cost.DIRECT, cost.MTLS], usage=usage, requests=60)
    assert [control.run_paths[r] for r in runs] == [cost.DIRECT, cost.MTLS]
    rows = bench.frame()
    assert [int((rows.run == r).sum()) for r in runs] == [60, 60]
    assert rows["at"].between(rows["at"].min(), rows["at"].min() + 120).all(), "each row at its wall-clock send time"
    table = cost.hop_table(cost.with_paths(rows, control.run_paths))
    assert list(table.index) == [cost.DIRECT, cost.MTLS] and (table.success == 1.0).all()
    readings = usage.history()
    assert {cost.DIRECT, cost.MTLS} <= set(readings.label)
    assert "details-v1 sidecar" in set(readings[readings.label == cost.MTLS].process)
    assert "details-v1 sidecar" not in set(readings[readings.label == cost.DIRECT].process)
    assert [t.name for t in bench.figures[1].data] == [cost.DIRECT, cost.MTLS], "the latency chart has a bar group per path"
