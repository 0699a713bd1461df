"""The charts and controls of lessons 00-03 (meshkit.notebook.charts.mesh), on small tables and a fake lab."""

from __future__ import annotations

import copy
from types import SimpleNamespace
from typing import Any

import pandas as pd
import pytest

from meshkit.errors import UnknownWorkload
from meshkit.notebook.charts import mesh

T0 = 1_800_000_000.0


def rows(spec: list[tuple[float, float, int, str, int]]) -> pd.DataFrame:
    """(seconds after T0, latency ms, code, version, run) -> the recorder's frame."""
    return pd.DataFrame(
        [{"at": T0 + t, "latency_ms": ms, "code": code, "flags": "", "version": v, "error": "", "target": "x", "run": run}
         for t, ms, code, v, run in spec]
    )


# -- run labels ---------------------------------------------------------------------


def test_sidecar_summary_says_none_all_or_how_many() -> None:
    def frame(flags: list[bool]) -> pd.DataFrame:
        return pd.DataFrame({"workload": [f"w{i}" for i in range(len(flags))], "sidecar": flags})

    assert mesh.sidecar_summary(frame([False, False])) == "without sidecars"
    assert mesh.sidecar_summary(frame([True, True])) == "with sidecars"
    assert mesh.sidecar_summary(frame([True, False, False])) == "sidecars on 1 of 3 workloads"


def test_a_run_is_named_once_when_it_starts() -> None:
    said = iter(["without sidecars", "with sidecars", "never asked"])
    labels = mesh.RunLabels(lambda run: next(said))
    labels.on_run(SimpleNamespace(run_id=1))
    labels.on_run(SimpleNamespace(run_id=1))  # the same run ending
    labels.on_run(SimpleNamespace(run_id=2))
    assert labels == {1: "without sidecars", 2: "with sidecars"}


# -- latency per request ------------------------------------------------------------------


def test_latency_per_request_has_a_color_and_a_median_per_run_and_marks_failures() -> None:
    frame = rows([(0.0, 10, 200, "v1", 1), (0.5, 12, 200, "v1", 1), (1.0, 14, 200, "v1", 1),
                  (30.0, 20, 200, "v1", 2), (30.5, 22, 200, "v1", 2), (31.0, 900, 503, "", 2)])
    traces, layout = mesh.latency_per_request(frame, {1: "without sidecars", 2: "with sidecars"})
    by_name = {t.name: t for t in traces}
    assert list(by_name) == ["run 1: without sidecars", "run 1: without sidecars median",
                             "run 2: with sidecars", "run 2: with sidecars median", "failed"]
    assert list(by_name["run 2: with sidecars"].x) == [0.0, 0.5], "x counts from each run's first request"
    assert list(by_name["run 2: with sidecars"].y) == [20, 22], "a failed request is not a dot of its run"
    assert list(by_name["run 1: without sidecars median"].y) == [12.0, 12.0]
    assert list(by_name["failed"].y) == [900] and list(by_name["failed"].text) == ["run 2: with sidecars: 503"]
    assert by_name["run 1: without sidecars"].marker.color != by_name["run 2: with sidecars"].marker.color
    assert "width" not in layout and layout["legend"]["orientation"] == "h"


def test_latency_per_request_names_an_unlabelled_run_by_number_and_says_when_empty() -> None:
    traces, _ = mesh.latency_per_request(rows([(0.0, 5, 200, "v1", 7)]))
    assert traces[0].name == "run 7"
    traces, layout = mesh.latency_per_request(rows([]).reindex(columns=["at", "latency_ms", "code", "run"]))
    assert traces == [] and "no requests yet" in layout["annotations"][0]["text"]


# -- edges ---------------------------------------------------------------------------------


def topology(edges: list[tuple[str, str, int, float, str]], window: float | None = 10.0) -> pd.DataFrame:
    frame = pd.DataFrame(
        [{"source": s, "destination": f"{d}.default.svc.cluster.local", "requests": n, "rps": rps, "security": sec,
          "reporter": "destination"} for s, d, n, rps, sec in edges],
        columns=["source", "destination", "requests", "rps", "security", "reporter"],
    )
    frame.attrs["window_s"] = window
    return frame


def test_edge_traffic_draws_one_bar_per_edge_grouped_by_how_it_was_secured() -> None:
    traces, layout = mesh.edge_traffic(topology([
        ("curl", "productpage", 60, 6.0, "mutual_tls"),
        ("productpage-v1", "reviews", 60, 6.0, "mutual_tls"),
        ("unknown", "details", 30, 3.0, "none"),
    ]))
    by_name = {t.name: t for t in traces}
    assert set(by_name) == {"mTLS (locked)", "plaintext"}
    assert list(by_name["mTLS (locked)"].y) == ["curl \N{RIGHTWARDS ARROW} productpage", "productpage-v1 \N{RIGHTWARDS ARROW} reviews"]
    assert list(by_name["mTLS (locked)"].x) == [6.0, 6.0] and list(by_name["mTLS (locked)"].text) == ["60 req", "60 req"]
    assert list(by_name["plaintext"].y) == ["unknown (no sidecar) \N{RIGHTWARDS ARROW} details"]
    assert layout["title"]["text"].endswith("(last 10 s)")
    assert layout["yaxis"]["categoryarray"][0].startswith("unknown"), "edges read top-down by name"


def test_edge_traffic_says_why_it_is_empty() -> None:
    traces, layout = mesh.edge_traffic(topology([]))
    assert traces == [] and "without sidecars" in layout["annotations"][0]["text"]


# -- pushes -----------------------------------------------------------------------------------

PUSHES = [
    {"version": 12, "at": T0, "acks": {}, "nacks": {}},
    {"version": 13, "at": T0 + 1, "acks": {"default/curl-0": 1900.0, "default/reviews-v1-0": 2400.5}, "nacks": {}},
    {"version": 14, "at": T0 + 9, "acks": {"default/curl-0": 12.0}, "nacks": {"default/reviews-v1-0": "bad route"}},
]


def test_push_table_has_a_row_per_version_and_sidecar() -> None:
    table = mesh.push_table(PUSHES)
    assert list(table.columns) == mesh.PUSH_COLUMNS
    assert list(table["version"]) == [12, 13, 13, 14, 14]
    assert list(table["node"]) == ["", "curl-0", "reviews-v1-0", "curl-0", "reviews-v1-0"]
    assert list(table["nack"])[-1] == "bad route" and pd.isna(table["ack_ms"].iloc[-1])


def test_ack_times_shows_the_slowest_ack_each_ack_and_each_nack() -> None:
    traces, layout = mesh.ack_times(mesh.push_table(PUSHES))
    bar, dots, nacks = traces
    assert list(bar.x) == ["12", "13", "14"] and list(bar.y) == [None, 2400.5, 12.0]
    assert list(bar.text) == ["0 ACKs", "2 ACKs", "1 ACK"]
    assert list(dots.x) == ["13", "13", "14"] and list(dots.text) == ["curl-0", "reviews-v1-0", "curl-0"]
    assert list(nacks.x) == ["14"] and "bad route" in nacks.text[0]
    assert layout["yaxis"]["type"] == "log" and layout["xaxis"]["categoryarray"] == ["12", "13", "14"]


def test_ack_times_of_nothing_says_so() -> None:
    traces, layout = mesh.ack_times(mesh.push_table([]))
    assert traces == [] and layout["annotations"][0]["text"] == "no config pushed yet"


def test_push_history_reads_the_control_planes_push_history() -> None:
    lab = SimpleNamespace(_control=lambda: SimpleNamespace(pushes=lambda limit: PUSHES[-limit:]))
    assert list(mesh.push_history(lab, limit=1)["version"]) == [14, 14]  # type: ignore[arg-type]


# -- versions over time ----------------------------------------------------------------------


def test_versions_over_time_counts_each_version_per_second_with_zeros_and_failures() -> None:
    frame = rows([(0.1, 5, 200, "v1", 1), (0.6, 5, 200, "v1", 1), (1.2, 5, 200, "v2", 1), (1.7, 5, 503, "", 1),
                  (2.1, 5, 200, "v3", 1), (3.5, 5, 200, "v3", 1)])
    traces, layout = mesh.versions_over_time(frame)
    by_name = {t.name: t for t in traces}
    assert list(by_name) == ["v1", "v2", "v3", "failed"]
    assert list(by_name["v1"].x) == [0.5, 1.5, 2.5], "the newest second (still filling) is left out"
    assert list(by_name["v1"].y) == [2.0, 0.0, 0.0]
    assert list(by_name["v2"].y) == [0.0, 1.0, 0.0] and list(by_name["failed"].y) == [0.0, 1.0, 0.0]
    assert list(by_name["v3"].y) == [0.0, 0.0, 1.0]
    assert by_name["failed"].line.color == mesh.FAILED_COLOR
    assert [by_name[v].line.dash for v in ("v1", "v2", "v3")] == ["solid", "dash", "dot"], "equal rates stay visible"
    assert layout["legend"]["title"]["text"] == "answered by:"


def test_versions_over_time_keeps_a_horizon_and_halves_counts_for_two_second_bins() -> None:
    frame = rows([(float(t), 5, 200, "v1", 1) for t in range(20)])
    traces, _ = mesh.versions_over_time(frame, bin_s=2.0, horizon_s=6.0)
    assert list(traces[0].x) == [13.0, 15.0, 17.0] and list(traces[0].y) == [1.0, 1.0, 1.0]
    assert mesh.versions_over_time(rows([]))[0] == []


# -- the load balancer: pure edits -------------------------------------------------------------

FULL_RULE: dict[str, Any] = {
    "apiVersion": "networking.istio.io/v1",
    "kind": "DestinationRule",
    "metadata": {"name": "reviews", "namespace": "default", "labels": {"team": "books"}},
    "spec": {
        "host": "reviews",
        "trafficPolicy": {
            "loadBalancer": {"simple": "LEAST_CONN"},
            "connectionPool": {"tcp": {"maxConnections": 10}, "http": {"http1MaxPendingRequests": 5}},
            "outlierDetection": {"consecutive5xxErrors": 3, "interval": "1s", "baseEjectionTime": "30s"},
        },
        "subsets": [{"name": "v1", "labels": {"version": "v1"},
                     "trafficPolicy": {"loadBalancer": {"simple": "RANDOM"}}},
                    {"name": "v2", "labels": {"version": "v2"}}],
    },
}


def without_balancer(rule: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(rule)
    out["spec"]["trafficPolicy"].pop("loadBalancer", None)
    return out


@pytest.mark.parametrize(("rule", "values"), [
    (None, {"policy": "LEAST_REQUEST", "header": "end-user"}),
    ({"spec": {"host": "reviews", "subsets": []}}, {"policy": "LEAST_REQUEST", "header": "end-user"}),
    (FULL_RULE, {"policy": "LEAST_REQUEST", "header": "end-user"}),
    ({"spec": {"trafficPolicy": {"loadBalancer": {"simple": "ROUND_ROBIN"}}}}, {"policy": "ROUND_ROBIN", "header": "end-user"}),
    ({"spec": {"trafficPolicy": {"loadBalancer": {"consistentHash": {"httpHeaderName": "x-user"}}}}},
     {"policy": "CONSISTENT_HASH", "header": "x-user"}),
], ids=["no rule", "no policy", "LEAST_CONN is LEAST_REQUEST", "round robin", "hash"])
def test_the_widget_shows_the_rules_balancer(rule: dict[str, Any] | None, values: dict[str, str]) -> None:
    assert mesh.balancer_values(rule) == values


def test_setting_a_policy_changes_only_the_load_balancer() -> None:
    before = copy.deepcopy(FULL_RULE)
    out = mesh.with_load_balancer(FULL_RULE, "reviews", "default", "ROUND_ROBIN")
    assert FULL_RULE == before, "the rule given is not changed"
    assert out["spec"]["trafficPolicy"]["loadBalancer"] == {"simple": "ROUND_ROBIN"}
    assert without_balancer(out) == without_balancer(FULL_RULE)
    assert out["spec"]["subsets"][0]["trafficPolicy"] == {"loadBalancer": {"simple": "RANDOM"}}


def test_a_hash_replaces_simple_and_keeps_the_balancers_other_fields() -> None:
    rule = copy.deepcopy(FULL_RULE)
    rule["spec"]["trafficPolicy"]["loadBalancer"] = {"simple": "RANDOM", "futureField": 1}
    hashed = mesh.with_load_balancer(rule, "reviews", "default", "CONSISTENT_HASH", " end-user ")
    assert hashed["spec"]["trafficPolicy"]["loadBalancer"] == {"futureField": 1, "consistentHash": {"httpHeaderName": "end-user"}}
    back = mesh.with_load_balancer(hashed, "reviews", "default", "LEAST_REQUEST")
    assert back["spec"]["trafficPolicy"]["loadBalancer"] == {"futureField": 1, "simple": "LEAST_REQUEST"}
    assert without_balancer(back) == without_balancer(rule)


def test_without_a_rule_a_new_one_named_after_the_service() -> None:
    out = mesh.with_load_balancer(None, "reviews", "shop", "RANDOM")
    assert out == {"apiVersion": "networking.istio.io/v1", "kind": "DestinationRule",
                   "metadata": {"name": "reviews", "namespace": "shop"},
                   "spec": {"host": "reviews", "trafficPolicy": {"loadBalancer": {"simple": "RANDOM"}}}}


def test_a_bad_policy_or_a_hash_without_header_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown load balancer"):
        mesh.with_load_balancer(None, "reviews", "default", "FASTEST")
    with pytest.raises(ValueError, match="needs the header"):
        mesh.with_load_balancer(None, "reviews", "default", "CONSISTENT_HASH", "  ")


# -- controls against a fake lab -----------------------------------------------------------------


class FakeLab:
    """What the controls use of a Lab: workloads, inject/uninject, get/apply of DestinationRules."""

    namespace = "default"

    def __init__(self, rule: dict[str, Any] | None = None) -> None:
        self.sidecar = {"curl": False, "details-v1": False, "reviews-v1": True}
        self.calls: list[tuple[str, str]] = []
        self.rule = copy.deepcopy(rule)
        self.applied: list[dict[str, Any]] = []
        self.version = 20

    def health(self) -> dict[str, Any]:
        return {"ok": True, "version": self.version}

    def workloads(self) -> pd.DataFrame:
        names = list(self.sidecar)
        return pd.DataFrame({"namespace": "default", "workload": names, "version": ["v1"] * len(names),
                             "sidecar": [self.sidecar[n] for n in names],
                             "config": ["SYNCED" if self.sidecar[n] else "-" for n in names]})

    def inject(self, target: str) -> None:
        self._set(target, True)

    def uninject(self, target: str) -> None:
        self._set(target, False)

    def _set(self, target: str, on: bool) -> None:
        self.calls.append(("inject" if on else "uninject", target))
        if target == "nope":
            raise UnknownWorkload("no workload 'nope'")
        for name in self.sidecar if target == "default" else [target]:
            self.sidecar[name] = on
            self.version += 1

    def get(self, kind: str, name: str | None = None, namespace: str | None = None) -> Any:
        if name is not None:
            return copy.deepcopy(self.rule)
        found = [self.rule] if self.rule else []
        return pd.DataFrame({"namespace": [r["metadata"]["namespace"] for r in found],
                             "name": [r["metadata"]["name"] for r in found]})

    def apply(self, resource: dict[str, Any]) -> pd.DataFrame:
        self.applied.append(copy.deepcopy(resource))
        self.rule = copy.deepcopy(resource)
        self.version += 1
        frame = pd.DataFrame()
        frame.attrs.update(version=self.version, ack_ms=12.5, warnings=[])
        return frame


def test_the_sidecar_control_shows_each_workloads_sidecar_and_restarts_the_chosen_one() -> None:
    lab = FakeLab()
    control = mesh.SidecarControl(lab)  # type: ignore[arg-type]
    assert control.sidecars == {"curl": False, "details-v1": False, "reviews-v1": True}
    assert control.target.options[1] == ("details-v1 (no sidecar)", "details-v1")
    assert control.target.options[-1] == ("every workload of namespace default", "default")
    assert "reviews-v1" in control.table.value and "SYNCED" in control.table.value
    control.target.value = "details-v1"
    control.inject_button.click()
    assert lab.calls == [("inject", "details-v1")] and control.sidecars["details-v1"] is True
    assert control.target.value == "details-v1", "the choice stays after the refresh"
    assert ("details-v1 (sidecar)", "details-v1") in control.target.options
    assert control.message == "details-v1 restarted with a sidecar: 2 of 3 workloads have a sidecar now"
    assert control.error == ""
    assert control.inject("default") and set(control.sidecars.values()) == {True}
    assert control.message.startswith("every workload of namespace default restarted with a sidecar: 3 of 3")
    assert control.uninject("curl") and control.sidecars["curl"] is False


def test_the_sidecar_control_shows_a_refusal() -> None:
    lab = FakeLab()
    control = mesh.SidecarControl(lab)  # type: ignore[arg-type]
    control.target.options = [*control.target.options, ("nope", "nope")]
    assert not control.inject("nope")
    assert "no workload 'nope'" in control.error and not control.inject_button.disabled


def test_the_balancer_widget_starts_from_the_lab_and_applies_only_the_balancer() -> None:
    rule = copy.deepcopy(FULL_RULE)
    rule["spec"]["trafficPolicy"]["loadBalancer"] = {"consistentHash": {"httpHeaderName": "x-user"}}
    lab = FakeLab(rule)
    widget = mesh.BalancerWidget(lab, "reviews")  # type: ignore[arg-type]
    assert widget.policy.value == "CONSISTENT_HASH" and widget.header.value == "x-user" and not widget.header.disabled
    widget.policy.value = "ROUND_ROBIN"
    assert widget.header.disabled
    widget.apply_button.click()
    assert lab.applied[-1]["spec"]["trafficPolicy"]["loadBalancer"] == {"simple": "ROUND_ROBIN"}
    assert without_balancer(lab.applied[-1]) == without_balancer(rule)
    assert widget.version == 21 and "config version 21" in widget.message
    assert widget.set_policy("CONSISTENT_HASH", "end-user")
    assert lab.rule["spec"]["trafficPolicy"]["loadBalancer"] == {"consistentHash": {"httpHeaderName": "end-user"}}
    widget.header.value = ""
    assert not widget.apply_policy() and "needs the header" in widget.error and len(lab.applied) == 2


def test_the_balancer_widget_follows_a_change_made_elsewhere_but_keeps_an_edit() -> None:
    lab = FakeLab(copy.deepcopy(FULL_RULE))
    widget = mesh.BalancerWidget(lab, "reviews")  # type: ignore[arg-type]
    assert widget.policy.value == "LEAST_REQUEST"
    lab.apply(mesh.with_load_balancer(lab.rule, "reviews", "default", "RANDOM"))  # another cell, the CLI
    widget.sync()
    assert widget.policy.value == "RANDOM" and widget.synced_version == lab.version
    widget.header.value = "x-tenant"  # typed, not applied
    lab.apply(mesh.with_load_balancer(lab.rule, "reviews", "default", "CONSISTENT_HASH", "end-user"))
    widget.sync()
    assert widget.policy.value == "CONSISTENT_HASH" and widget.header.value == "x-tenant" and widget.kept == ["header"]


def test_the_balancer_widget_without_a_rule_shows_istios_default() -> None:
    widget = mesh.BalancerWidget(FakeLab(), "reviews")  # type: ignore[arg-type]
    assert widget.policy.value == "LEAST_REQUEST" and widget.header.disabled
    assert "no DestinationRule yet" in widget.message


@pytest.mark.parametrize(("draw", "empty", "full"), [
    (mesh.latency_per_request, rows([]), rows([(0.0, 5, 200, "v1", 1)])),
    (mesh.edge_traffic, topology([]), topology([("curl", "productpage", 6, 0.6, "none")])),
    (mesh.ack_times, mesh.push_table([]), mesh.push_table(PUSHES)),
    (mesh.versions_over_time, rows([]), rows([(0.0, 5, 200, "v1", 1), (1.5, 5, 200, "v1", 1)])),
], ids=["latency", "edges", "acks", "versions"])
def test_a_live_chart_drops_its_empty_note_once_data_comes(draw: Any, empty: pd.DataFrame, full: pd.DataFrame) -> None:
    from meshkit.notebook.figures import fill
    from meshkit.notebook.live import new_figure

    fig = new_figure(False, {})
    fill(fig, *draw(empty))
    assert len(fig.layout.annotations) == 1
    fill(fig, *draw(full))
    assert fig.layout.annotations == () and fig.data
    assert fig.layout.yaxis.visible is not False
