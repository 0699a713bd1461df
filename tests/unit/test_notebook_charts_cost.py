"""Notebook 12's control logic and charts: which path a hop is on, the mesh policy it needs, latency per path,
CPU and memory per process, and the requests and limits that follow from what a sidecar used."""

from __future__ import annotations

import math
from typing import Any

import pandas as pd
import pytest

from meshkit.notebook.charts import cost
from meshkit.notebook.recorder import COLUMNS, DTYPES

MESH = {"apiVersion": "security.istio.io/v1", "kind": "PeerAuthentication",
        "metadata": {"name": "default", "namespace": "istio-system"}}


def policy(mode: str | None, namespace: str = "istio-system", **metadata: Any) -> dict[str, Any]:
    spec = {"mtls": {"mode": mode}} if mode else {}
    return {**MESH, "metadata": {"name": "default", "namespace": namespace, **metadata}, "spec": spec}


# -- the path -----------------------------------------------------------------------------


@pytest.mark.parametrize(("sidecars", "modes", "path"), [
    ({"curl": False, "details-v1": False}, {"details-v1": "PERMISSIVE"}, cost.DIRECT),
    ({"curl": True, "details-v1": True}, {"details-v1": "DISABLE"}, cost.PLAINTEXT),
    ({"curl": True, "details-v1": True}, {"details-v1": "PERMISSIVE"}, cost.MTLS),
    ({"curl": True, "details-v1": True}, {"details-v1": "STRICT"}, cost.MTLS),
    ({"curl": True, "details-v1": False}, {"details-v1": "PERMISSIVE"}, cost.MIXED),
])
def test_the_path_follows_the_sidecars_and_the_callees_mode(sidecars: dict[str, bool], modes: dict[str, str], path: str) -> None:
    assert cost.path_of(sidecars, modes) == path


def test_the_mode_in_force_is_decided_as_the_sidecars_decide_it() -> None:
    labels = {"details-v1": {"app": "details", "version": "v1"}}
    assert cost.modes_in_force([], "default", labels) == {"details-v1": "PERMISSIVE"}
    assert cost.modes_in_force([policy("DISABLE")], "default", labels) == {"details-v1": "DISABLE"}
    namespace_strict = policy("STRICT", namespace="default")
    assert cost.modes_in_force([policy("DISABLE"), namespace_strict], "default", labels) == {"details-v1": "STRICT"}


def test_plaintext_creates_a_mesh_wide_disable_when_there_is_none() -> None:
    action, resource = cost.mesh_policy(None, cost.PLAINTEXT)
    assert action == "apply" and resource == policy("DISABLE")


def test_plaintext_sets_only_the_mode_of_an_existing_policy() -> None:
    current = policy("STRICT", labels={"team": "sre"}, annotations={"why": "audit"})
    action, resource = cost.mesh_policy(current, cost.PLAINTEXT)
    assert action == "apply"
    assert resource == policy("DISABLE", labels={"team": "sre"}, annotations={"why": "audit"})
    assert current["spec"]["mtls"]["mode"] == "STRICT", "the lab's resource is not changed in place"
    assert cost.mesh_policy(policy("DISABLE"), cost.PLAINTEXT)[0] == "keep"


def test_mtls_deletes_a_policy_that_held_only_the_disable() -> None:
    assert cost.mesh_policy(policy("DISABLE"), cost.MTLS) == ("delete", None)


def test_mtls_keeps_a_policy_with_other_fields_and_clears_its_mode() -> None:
    action, resource = cost.mesh_policy(policy("DISABLE", labels={"team": "sre"}), cost.MTLS)
    assert action == "apply" and resource == policy(None, labels={"team": "sre"})


def test_mtls_and_direct_leave_a_policy_that_does_not_disable_alone() -> None:
    assert cost.mesh_policy(None, cost.MTLS) == ("keep", None)
    assert cost.mesh_policy(policy("STRICT"), cost.MTLS) == ("keep", policy("STRICT"))
    assert cost.mesh_policy(policy("DISABLE"), cost.DIRECT) == ("keep", policy("DISABLE"))


# -- latency per path -----------------------------------------------------------------------


def rows(spec: list[tuple[float, int, float, int]]) -> pd.DataFrame:
    """(at, run, latency_ms, code) -> recorder rows for details."""
    data = [(at, ms, code, "", "v1", "", "details", run) for at, run, ms, code in spec]
    return pd.DataFrame(data, columns=COLUMNS).astype(DTYPES)


def three_runs() -> pd.DataFrame:
    spec = []
    for run, base in ((1, 2.0), (2, 3.0), (3, 3.5)):
        spec += [(100.0 * run, run, 50.0, 200)]  # the first request of a run, during warm-up: left out
        spec += [(100.0 * run + 1 + i / 100, run, base + (i % 10) / 10, 200) for i in range(100)]
    return rows(spec)


def test_rows_are_labelled_with_the_path_their_run_was_sent_on() -> None:
    labelled = cost.with_paths(rows([(0.0, 1, 1.0, 200), (1.0, 2, 1.0, 200), (2.0, 9, 1.0, 200)]),
                               {1: cost.DIRECT, 2: cost.MTLS})
    assert list(labelled["path"]) == [cost.DIRECT, cost.MTLS, cost.MIXED]


def test_the_table_gives_each_paths_percentiles_and_what_it_adds_to_direct() -> None:
    labelled = cost.with_paths(three_runs(), {1: cost.DIRECT, 2: cost.PLAINTEXT, 3: cost.MTLS})
    table = cost.hop_table(labelled)
    assert list(table.index) == list(cost.PATHS)
    assert list(table["requests"]) == [100, 100, 100], "the warm-up request of each run is left out"
    assert table["requests"].dtype == "int64"
    assert table.loc[cost.DIRECT, "p50_ms"] == pytest.approx(2.45)
    assert table.loc[cost.PLAINTEXT, "+p50_ms"] == pytest.approx(1.0)
    assert table.loc[cost.MTLS, "+p50_ms"] == pytest.approx(1.5)
    assert table.loc[cost.DIRECT, "+p99_ms"] == 0.0


def test_percentiles_are_of_the_answered_requests_and_success_counts_all() -> None:
    spec = [(0.0, 1, 1.0, 200)] + [(1.0 + i, 1, 1.0, 200) for i in range(3)] + [(5.0, 1, 900.0, 503)]
    table = cost.hop_table(cost.with_paths(rows(spec), {1: cost.MTLS}))
    assert table.loc[cost.MTLS, "success"] == pytest.approx(0.75)
    assert table.loc[cost.MTLS, "p99_ms"] == pytest.approx(1.0)
    assert math.isnan(table.loc[cost.MTLS, "+p50_ms"]), "nothing to compare with without a direct run"


def test_the_latency_chart_has_one_bar_group_per_path_in_order() -> None:
    labelled = cost.with_paths(three_runs(), {1: cost.DIRECT, 2: cost.PLAINTEXT, 3: cost.MTLS})
    traces, layout = cost.hop_traces(labelled, hop="curl -> details")
    assert [t.name for t in traces] == list(cost.PATHS)
    assert list(traces[0].x) == ["p50", "p90", "p99"] and traces[0].y[0] == pytest.approx(2.45)
    assert traces[2].marker.color == cost.PATH_COLORS[cost.MTLS]
    assert "curl -> details" in layout["title"]["text"] and layout["barmode"] == "group"
    assert "width" not in layout


def test_no_rows_draw_an_empty_latency_chart_that_says_so() -> None:
    traces, layout = cost.hop_traces(cost.with_paths(rows([]), {}))
    assert traces == [] and layout["title"]["text"].endswith("no requests yet, pick a path and start load")


# -- CPU and memory -----------------------------------------------------------------------


def resources(cpu: dict[tuple[str, str], float], memory: float = 42.0) -> pd.DataFrame:
    """{(workload, role): cpu_percent} -> a lab.resources() table, plus the control plane and another workload."""
    data = [("default", w, f"{w}-0", role, 1, c, 1.0, memory) for (w, role), c in cpu.items()]
    data += [("", "control-plane", "control-plane", "control plane", 2, 3.0, 1.0, 62.0),
             ("default", "reviews-v1", "reviews-v1-0", "sidecar", 3, 1.0, 1.0, 41.0)]
    return pd.DataFrame(data, columns=cost.USAGE_INPUT)


def test_a_reading_keeps_the_hops_processes_and_the_control_plane() -> None:
    reading = cost.usage_reading(resources({("details-v1", "sidecar"): 6.0, ("details-v1", "app"): 4.0}),
                                 ["curl", "details-v1"], 10.0, cost.MTLS)
    assert list(reading["process"]) == ["details-v1 sidecar", "details-v1 app", "control plane"]
    assert set(reading["label"]) == {cost.MTLS}
    without = cost.usage_reading(resources({}), ["curl"], 10.0, "", control_plane=False)
    assert without.empty


class FakeLab:
    def __init__(self, answers: list[pd.DataFrame]) -> None:
        self.answers = answers
        self.samples: list[float] = []

    def resources(self, sample: float) -> pd.DataFrame:
        self.samples.append(sample)
        return self.answers.pop(0)


def test_the_sampler_labels_each_reading_with_the_path_of_its_moment() -> None:
    labels = iter([cost.DIRECT, cost.MTLS])
    times = iter([1.0, 3.0])
    lab = FakeLab([resources({("details-v1", "app"): 4.0}),
                   resources({("details-v1", "app"): 4.0, ("details-v1", "sidecar"): 6.0})])
    sampler = cost.UsageSampler(lab, ["curl", "details-v1"], sample_s=1.0, label=lambda: next(labels),  # type: ignore[arg-type]
                                clock=lambda: next(times))
    sampler()
    frame = sampler()
    assert lab.samples == [1.0, 1.0]
    assert list(frame["label"]) == [cost.DIRECT] * 2 + [cost.MTLS] * 3
    assert cost.stretches(frame) == [(cost.DIRECT, 1.0, 1.0), (cost.MTLS, 3.0, 3.0)]


def test_the_usage_chart_draws_cpu_and_memory_per_process_and_names_each_stretch() -> None:
    first = cost.usage_reading(resources({("details-v1", "app"): 4.0}), ["details-v1"], 1.0, cost.DIRECT)
    second = cost.usage_reading(resources({("details-v1", "app"): 5.0, ("details-v1", "sidecar"): 6.0}),
                                ["details-v1"], 3.0, cost.MTLS)
    traces, layout = cost.usage_traces(pd.concat([first, second], ignore_index=True))
    assert [(t.name, t.yaxis) for t in traces] == [
        ("path", "y"), ("control plane", "y"), ("control plane", "y2"), ("details-v1 app", "y"), ("details-v1 app", "y2"),
        ("details-v1 sidecar", "y"), ("details-v1 sidecar", "y2"),
    ]
    assert list(traces[3].y) == [4.0, 5.0] and list(traces[6].y) == [42.0]
    assert traces[5].line.dash == "solid" and traces[3].line.dash == "dot" and traces[1].line.dash == "dash"
    assert list(traces[0].text) == [cost.DIRECT, cost.MTLS], "each stretch of readings is named by its path"
    assert traces[0].y[0] > 6.0, "above the highest CPU line"
    assert layout["xaxis"]["anchor"] == "y2" and layout["xaxis"]["type"] == "date" and "annotations" not in layout
    assert all(isinstance(x, str) for t in traces for x in t.x), "times as text: a live chart sends datetime64 as nanoseconds"


def test_no_reading_draws_an_empty_usage_chart_that_says_so() -> None:
    traces, layout = cost.usage_traces(cost.UsageSampler(FakeLab([]), ["curl"]).history())  # type: ignore[arg-type]
    assert traces == [] and layout["title"]["text"].endswith("no reading yet, start load")


# -- requests and limits -----------------------------------------------------------------


def test_sizing_takes_each_sidecars_peak_on_the_path_and_derives_requests_and_limits() -> None:
    readings = pd.concat([
        cost.usage_reading(resources({("details-v1", "sidecar"): 30.0}, memory=40.0), ["details-v1"], 1.0, cost.PLAINTEXT),
        cost.usage_reading(resources({("details-v1", "sidecar"): 6.0, ("curl", "sidecar"): 5.0}, memory=41.5),
                           ["curl", "details-v1"], 2.0, cost.MTLS),
        cost.usage_reading(resources({("details-v1", "sidecar"): 0.0, ("curl", "sidecar"): 0.0}, memory=42.0),
                           ["curl", "details-v1"], 3.0, cost.MTLS),
    ], ignore_index=True)
    table = cost.sidecar_sizing(readings, rate=200.0)
    assert list(table.index) == ["curl", "details-v1"], "the app and the control plane are not sidecars"
    details = table.loc["details-v1"]
    assert details["peak_cpu_percent"] == 6.0, "the plaintext reading belongs to another path"
    assert details["cpu_us_per_request"] == pytest.approx(300.0)  # 0.06 core / 200 per second
    assert details["peak_memory_mib"] == 42.0
    assert details["cpu_request_m"] == 90 and details["cpu_limit_m"] == 360  # 60m x 1.5, x 4
    assert details["memory_request_mib"] == 64 and details["memory_limit_mib"] == 128  # 63 MiB up to 64, x 2
    assert cost.istio_annotations(details) == {
        "sidecar.istio.io/proxyCPU": "90m", "sidecar.istio.io/proxyCPULimit": "360m",
        "sidecar.istio.io/proxyMemory": "64Mi", "sidecar.istio.io/proxyMemoryLimit": "128Mi",
    }


def test_an_idle_sidecar_still_gets_the_smallest_cpu_request() -> None:
    readings = cost.usage_reading(resources({("curl", "sidecar"): 0.0}), ["curl"], 1.0, cost.MTLS)
    assert cost.sidecar_sizing(readings, rate=200.0).loc["curl", "cpu_request_m"] == cost.CPU_STEP_M


def test_no_readings_on_the_path_give_an_empty_sizing() -> None:
    assert cost.sidecar_sizing(cost.usage_reading(resources({}), [], 1.0, cost.DIRECT), rate=200.0).empty
