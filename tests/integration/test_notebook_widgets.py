"""Widgets against a real lab: set a value or click, then read the lab's config.

One Bookinfo lab for the module, with sidecars everywhere (the lab's curl
client too, so routing applies to its load) and Istio's
destination-rule-all.yaml applied, as a learner's notebook would have it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from meshkit.lab import Lab
from meshkit.notebook import (
    AuthorizationWidget,
    BreakerWidget,
    Dashboard,
    FaultWidget,
    HeaderRouteWidget,
    LoadGenerator,
    MtlsWidget,
    Recorder,
    RetryWidget,
    SplitWidget,
)
from meshkit.notebook import istio

ISTIO = Path(__file__).resolve().parents[1] / "unit" / "fixtures" / "istio"


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    with Lab(home=tmp_path_factory.mktemp("lab")) as lab:
        lab.deploy("bookinfo", inject=True)
        lab.inject("curl")
        lab.apply(ISTIO / "destination-rule-all.yaml")
        yield lab


@pytest.fixture(autouse=True)
def clean_routes(lab: Lab) -> Iterator[None]:
    """Each test starts from the DestinationRules alone."""
    yield
    for kind in ("VirtualService", "PeerAuthentication", "AuthorizationPolicy"):
        table = lab.get(kind)
        for namespace, name in zip(table["namespace"], table["name"], strict=True):
            lab.delete(kind, name, namespace)
    lab.apply(ISTIO / "destination-rule-all.yaml")


def config_state(lab: Lab) -> tuple[int, list[dict[str, Any]]]:
    return lab.health()["version"], [lab.get(k, n, ns) for k, ns, n in lab.get().itertuples(index=False)]


def eventually(check: Callable[[], bool], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.05)
    return check()


def test_moving_a_slider_applies_a_split_that_adds_up_to_100(lab: Lab) -> None:
    split = SplitWidget(lab, "reviews")
    assert split.subsets == ["v1", "v2", "v3"] and split.weights == {"v1": 100, "v2": 0, "v3": 0}
    assert all(not s.continuous_update for s in split.sliders.values()), "applied on release"
    split.sliders["v2"].value = 40
    assert split.weights == {"v1": 60, "v2": 40, "v3": 0}
    assert split.sliders["v1"].value == 60
    assert istio.split_of(lab.get("VirtualService", "reviews")) == {"v1": 60, "v2": 40}
    assert split.version == lab.health()["version"] and split.ack_ms > 0
    assert f"config version {split.version}" in split.message and split.error == ""
    split.sliders["v3"].value = 50
    assert istio.split_of(lab.get("VirtualService", "reviews")) == {"v1": 30, "v2": 20, "v3": 50}


def test_the_split_widget_starts_from_the_yaml_already_applied(lab: Lab) -> None:
    lab.apply(ISTIO / "virtual-service-reviews-80-20.yaml")
    assert SplitWidget(lab, "reviews").weights == {"v1": 80, "v2": 20, "v3": 0}


def test_a_service_without_subsets_says_what_to_apply(lab: Lab) -> None:
    split = SplitWidget(lab, "curl")
    assert split.sliders == {} and "no DestinationRule with subsets for curl" in split.error


def test_the_observed_split_follows_the_slider(lab: Lab) -> None:
    board = Dashboard(lab, "reviews", live=False)
    assert board.loadgen.path.value == "/reviews/1", "the first path reviews answers"
    board.split.sliders["v3"].value = 100
    board.run_load(rate=50, duration_s=1)
    assert board.split_table().set_index("version")["observed"].to_dict() == {"v1": 0.0, "v2": 0.0, "v3": 100.0}
    board.split.sliders["v1"].value = 100
    board.recorder.clear()
    board.run_load(rate=50, duration_s=1)
    table = board.split_table().set_index("version")
    assert table["observed"].to_dict() == {"v1": 100.0, "v2": 0.0, "v3": 0.0}
    assert table["configured"].to_dict() == {"v1": 100.0, "v2": 0.0, "v3": 0.0}


def test_header_rule_builder_routes_one_user_and_keeps_the_split(lab: Lab) -> None:
    SplitWidget(lab, "reviews").set_weights({"v1": 50, "v3": 50})
    rule = HeaderRouteWidget(lab, "reviews")
    rule.subset.value = "v2"
    rule.apply_button.click()
    vs = lab.get("VirtualService", "reviews")
    assert vs["spec"]["http"][0]["match"] == [{"headers": {"end-user": {"exact": "jason"}}}]
    assert istio.split_of(vs) == {"v1": 50, "v3": 50}
    assert lab.call("reviews", "/reviews/1", headers={"end-user": "jason"}).version == "v2"
    rule.remove_button.click()
    assert len(lab.get("VirtualService", "reviews")["spec"]["http"]) == 1


def test_an_invalid_value_shows_the_config_error_and_applies_nothing(lab: Lab) -> None:
    rule = HeaderRouteWidget(lab, "reviews", header="End-User")
    rule.subset.value = "v2"
    before = config_state(lab)
    rule.apply_button.click()
    assert "header names in matches must be lowercase" in rule.error
    assert "spec.http[0].match[0].headers.End-User" in rule.status.value
    assert config_state(lab) == before and rule.version == 0
    rule.match_type.value = "regex"
    rule.header.value = "end-user"
    rule.value.value = "(a)\\1"
    rule.apply_button.click()
    assert "backreference" in rule.error.lower() and config_state(lab) == before


def test_fault_injection_on_one_rule(lab: Lab) -> None:
    rule = HeaderRouteWidget(lab, "ratings")
    rule.subset.value = "v1"
    rule.apply_button.click()
    fault = FaultWidget(lab, "ratings")
    assert [label for label, _ in fault.rule.options] == [
        "every rule", "1: end-user exact 'jason' -> v1", "2: default -> ratings"]
    fault.rule.value = 0
    fault.abort_status.value = 700
    fault.abort_percent.value = 100.0
    fault.apply_button.click()
    assert "httpStatus" in fault.error and "fault" not in lab.get("VirtualService", "ratings")["spec"]["http"][0]
    fault.abort_status.value = 500
    fault.delay_ms.value = 50
    fault.delay_percent.value = 100.0
    fault.apply_button.click()
    assert fault.error == ""
    rules = lab.get("VirtualService", "ratings")["spec"]["http"]
    assert rules[0]["fault"] == {"delay": {"fixedDelay": "50ms", "percentage": {"value": 100.0}},
                                 "abort": {"httpStatus": 500, "percentage": {"value": 100.0}}}
    assert "fault" not in rules[1]
    assert lab.call("ratings", "/ratings/1", headers={"end-user": "jason"}).status == 500
    assert lab.call("ratings", "/ratings/1").status == 200


def test_retries_and_timeout(lab: Lab) -> None:
    retry = RetryWidget(lab, "reviews")
    retry.retry_on.value = "5xx,bogus"
    retry.apply_button.click()
    assert "unknown retry condition 'bogus'" in retry.error
    retry.retry_on.value = "5xx,connect-failure"
    retry.attempts.value = 3
    retry.per_try_timeout_ms.value = 500
    retry.timeout_ms.value = 2000
    retry.apply_button.click()
    route = lab.get("VirtualService", "reviews")["spec"]["http"][0]
    assert route["retries"] == {"attempts": 3, "perTryTimeout": "500ms", "retryOn": "5xx,connect-failure"}
    assert route["timeout"] == "2s"
    retry.timeout_ms.value = 0
    retry.apply_button.click()
    assert "timeout" not in lab.get("VirtualService", "reviews")["spec"]["http"][0]


def test_circuit_breaker_and_outlier_detection_keep_the_subsets(lab: Lab) -> None:
    breaker = BreakerWidget(lab, "reviews")
    breaker.outlier_on.value = True
    breaker.interval_ms.value = 0
    breaker.apply_button.click()
    assert "interval" in breaker.error
    breaker.interval_ms.value = 1000
    breaker.apply_button.click()
    rule = lab.get("DestinationRule", "reviews")
    assert istio.subsets(rule) == ["v1", "v2", "v3"]
    assert rule["spec"]["trafficPolicy"]["connectionPool"] == {"tcp": {"maxConnections": 1},
                                                               "http": {"http1MaxPendingRequests": 1}}
    assert rule["spec"]["trafficPolicy"]["outlierDetection"]["interval"] == "1s"
    SplitWidget(lab, "reviews").set_weights({"v2": 100})
    assert lab.call("reviews", "/reviews/1").version == "v2"


def test_mtls_mode_per_namespace_and_per_workload(lab: Lab) -> None:
    mtls = MtlsWidget(lab)
    assert mtls.buttons.value is None and mtls.mode == ""
    mtls.buttons.value = "STRICT"
    assert lab.get("PeerAuthentication", "default")["spec"] == {"mtls": {"mode": "STRICT"}}
    assert mtls.version == lab.health()["version"]
    mtls.set_mode("DISABLE", workload="reviews-v2")
    pa = lab.get("PeerAuthentication", "reviews-v2")
    assert pa["spec"] == {"selector": {"matchLabels": {"app": "reviews", "version": "v2"}}, "mtls": {"mode": "DISABLE"}}
    mtls.scope.value = mtls.scope.options[0][1]
    assert mtls.buttons.value == "STRICT", "switching scope shows that scope's mode and applies nothing"
    assert lab.get("PeerAuthentication", "default")["spec"]["mtls"]["mode"] == "STRICT"


def test_authorization_allow_or_deny_a_caller_on_a_path(lab: Lab) -> None:
    authz = AuthorizationWidget(lab, "reviews")
    assert "bookinfo-productpage" in authz.caller.options and "curl" in authz.caller.options
    authz.apply_button.click()
    assert "service account" in authz.error
    authz.caller.value = "bookinfo-productpage"
    authz.path.value = "/reviews/*"
    authz.apply_button.click()
    policy = lab.get("AuthorizationPolicy", "deny-bookinfo-productpage-to-reviews")
    assert policy["spec"] == {
        "selector": {"matchLabels": {"app": "reviews"}},
        "action": "DENY",
        "rules": [{"from": [{"source": {"principals": ["cluster.local/ns/default/sa/bookinfo-productpage"]}}],
                   "to": [{"operation": {"paths": ["/reviews/*"]}}]}],
    }
    authz.path.value = "/reviews/*/bad*"
    authz.apply_button.click()
    assert "*" in authz.error and len(lab.get("AuthorizationPolicy")) == 1
    authz.remove_button.click()
    assert authz.error == "" and lab.get("AuthorizationPolicy").empty


def test_load_runs_at_once_share_the_recorder_and_stop_on_click(lab: Lab) -> None:
    recorder = Recorder()
    gen = LoadGenerator(lab, recorder, service="reviews", path="/reviews/1", rate=40.0, duration_s=1.0)
    first = gen.start()
    second = gen.start(service="ratings", path="/ratings/1", rate=20.0)
    long = gen.start(duration_s=60.0)
    assert first is not None and second is not None and long is not None
    assert gen.active == 3 and len(gen.run_box.children) == 3
    first.wait(10)
    second.wait(10)
    assert eventually(lambda: long.completed > 0)
    long.stop_button.click()
    long.wait(10)
    assert (first.state, second.state, long.state) == ("done", "done", "stopped")
    assert long.stop_button.disabled and 0 < long.completed < long.total
    assert gen.active == 0
    frame = recorder.frame()
    assert frame.groupby("run").size().to_dict() == {first.run_id: 40, second.run_id: 20, long.run_id: long.completed}
    assert set(frame[frame.run == second.run_id]["target"]) == {"ratings"}
    assert (frame["code"] == 200).all() and first.bar.value == 40


def test_bad_load_values_are_shown_and_start_nothing(lab: Lab) -> None:
    gen = LoadGenerator(lab, service="reviews")
    gen.headers.value = "end-user jason"
    assert gen.start() is None and "line 1" in gen.error
    gen.headers.value = ""
    assert gen.start(path="reviews") is None and "must start with '/'" in gen.error
    assert gen.runs == [] and gen.active == 0


def test_headless_dashboard_gives_data_and_static_figures(lab: Lab) -> None:
    board = Dashboard(lab, "reviews", live=False)
    board.split.set_weights({"v1": 50, "v2": 50})
    run = board.run_load(rate=50, duration_s=2)
    assert run is not None and run.state == "done"
    numbers = board.summary()
    assert numbers["count"] == 100 and numbers["success_rate"] == 1.0 and numbers["p99_ms"] > 0
    figs = board.figures()
    assert set(figs) == {"latency", "split", "rate", "topology", "certificates"}
    assert {t.name.split()[0] for t in figs["latency"].data} <= {"v1", "v2"}
    nodes = next(t for t in figs["topology"].data if t.name == "nodes")
    assert {"curl", "reviews"} <= set(nodes.text)
    assert "reviews: split v1 50%, v2 50%, v3 0%" in board.text() and "100 requests" in board.text()
    assert board.split_table()["observed"].sum() == pytest.approx(100.0)


def test_live_charts_update_while_the_load_runs(lab: Lab) -> None:
    pytest.importorskip("anywidget", reason="plotly's FigureWidget needs anywidget")
    board = Dashboard(lab, "reviews", path="/reviews/1", live=True)
    run = board.loadgen.start(rate=40, duration_s=2)
    assert run is not None
    assert eventually(lambda: len(board.charts.latency.data) > 0, timeout=3)
    assert run.state == "running", "the chart moved before the run ended"
    assert board.refresher.running
    run.wait(10)
    assert eventually(lambda: not board.refresher.running)
    assert board.refresher.last_error == ""
    observed = board.charts.split.data[1]
    assert sum(observed.y) == pytest.approx(100.0)
    assert board.charts.topology is not None and len(board.charts.topology.data) > 0
