"""Widgets against a real lab: set a value or click, then read the lab's config.

One Bookinfo lab for the module, with sidecars everywhere (the lab's curl
client too, so routing applies to its load) and Istio's
destination-rule-all.yaml applied, as a learner's notebook would have it.

Every widget is also a view of the lab: it starts from what the lab has,
writes back only its own fields (compared with lab.get before and after),
and follows a change applied elsewhere.
"""

from __future__ import annotations

import asyncio
import copy
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
from meshkit.notebook.controls import WATCHER

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
    assert not breaker.pool_on.value and not breaker.outlier_on.value, "the DestinationRule has neither"
    breaker.pool_on.value = True
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
    assert (mtls.buttons.value, mtls.source) == ("PERMISSIVE", "default"), "no policy: Istio's default in force"
    mtls.buttons.value = "STRICT"
    assert lab.get("PeerAuthentication", "default")["spec"] == {"mtls": {"mode": "STRICT"}}
    assert mtls.version == lab.health()["version"]
    mtls.set_mode("DISABLE", workload="reviews-v2")
    pa = lab.get("PeerAuthentication", "reviews-v2")
    assert pa["spec"] == {"selector": {"matchLabels": {"app": "reviews", "version": "v2"}}, "mtls": {"mode": "DISABLE"}}
    assert (mtls.mode, mtls.source) == ("DISABLE", "workload")
    mtls.scope.value = mtls.scope.options[0][1]
    assert mtls.buttons.value == "STRICT", "switching scope shows that scope's mode and applies nothing"
    assert (mtls.source, mtls.policy) == ("namespace", "default/default")
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


# -- every widget is a view of the lab ----------------------------------------


def applied(lab: Lab, resource: dict[str, Any]) -> dict[str, Any]:
    """Apply a resource as a learner's YAML cell would, and return it as the lab stores it."""
    lab.apply(resource)
    meta = resource["metadata"]
    return lab.get(resource["kind"], meta["name"], meta.get("namespace", "default"))


REVIEWS_HOST = "reviews.default.svc.cluster.local"
META = {"namespace": "default", "labels": {"team": "reviews"}, "annotations": {"note": "written by hand"}}


def reviews_routes() -> dict[str, Any]:
    """A VirtualService with more in it than any widget shows."""
    return {
        "apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
        "metadata": {"name": "reviews", **META},
        "spec": {"hosts": ["reviews"], "http": [
            {"match": [{"headers": {"end-user": {"exact": "jason"}}}], "timeout": "3s",
             "route": [{"destination": {"host": "reviews", "subset": "v2"}}]},
            {"match": [{"uri": {"prefix": "/reviews/2"}}],
             "route": [{"destination": {"host": "reviews", "subset": "v3"}}]},
            {"retries": {"attempts": 3, "retryOn": "5xx", "retryRemoteLocalities": True},
             "route": [
                 {"destination": {"host": REVIEWS_HOST, "subset": "v1"}, "weight": 80,
                  "headers": {"response": {"set": {"x-split": "v1"}}}},
                 {"destination": {"host": REVIEWS_HOST, "subset": "v2"}, "weight": 20}]},
        ]},
    }


def test_the_split_starts_from_the_lab_and_changes_only_the_weights(lab: Lab) -> None:
    before = applied(lab, reviews_routes())
    split = SplitWidget(lab, "reviews")
    assert split.weights == {"v1": 80, "v2": 20, "v3": 0}
    split.sliders["v3"].value = 50
    after = lab.get("VirtualService", "reviews")
    assert istio.split_of(after) == {"v1": 40, "v2": 10, "v3": 50}
    assert after["metadata"] == before["metadata"] and after["spec"]["http"][:2] == before["spec"]["http"][:2]
    default, was = after["spec"]["http"][2], before["spec"]["http"][2]
    assert default["retries"] == was["retries"]
    assert [{k: v for k, v in d.items() if k != "weight"} for d in default["route"][:2]] == \
        [{k: v for k, v in d.items() if k != "weight"} for d in was["route"]]
    assert default["route"][2]["destination"] == {"host": REVIEWS_HOST, "subset": "v3"}


def test_the_split_follows_a_change_made_elsewhere(lab: Lab) -> None:
    split = SplitWidget(lab, "reviews")
    lab.apply(ISTIO / "virtual-service-reviews-50-v3.yaml")
    assert split.weights == {"v1": 100, "v2": 0, "v3": 0}, "not yet read"
    split.refresh()
    assert split.weights == {"v1": 50, "v2": 0, "v3": 50} and split.sliders["v3"].value == 50
    assert split.synced_version == lab.health()["version"]
    lab.apply(ISTIO / "virtual-service-reviews-80-20.yaml")
    split.sliders["v3"].value = 20
    assert istio.split_of(lab.get("VirtualService", "reviews")) == {"v1": 64, "v2": 16, "v3": 20}, \
        "the others made room from the lab's 80/20, not from the 50/50 on screen"


def test_the_header_rule_starts_from_the_lab_and_changes_only_that_rule(lab: Lab) -> None:
    before = applied(lab, reviews_routes())
    rule = HeaderRouteWidget(lab, "reviews")
    shown = {name: control.value for name, control in rule.form.items()}
    assert shown == {"header": "end-user", "match_type": "exact", "value": "jason", "subset": "v2",
                     "default": istio.KEEP}
    rule.value.value = "kim"
    rule.subset.value = "v3"
    rule.apply_button.click()
    after = lab.get("VirtualService", "reviews")
    assert after["spec"]["http"][0] == {**before["spec"]["http"][0], "match": [{"headers": {"end-user": {"exact": "kim"}}}],
                                        "route": [{"destination": {"host": "reviews", "subset": "v3"}}]}
    assert after["spec"]["http"][1:] == before["spec"]["http"][1:] and after["metadata"] == before["metadata"]
    rule.remove_button.click()
    assert lab.get("VirtualService", "reviews")["spec"]["http"] == before["spec"]["http"][1:]


def test_the_header_rule_follows_a_change_made_elsewhere_and_keeps_what_the_learner_typed(lab: Lab) -> None:
    rule = HeaderRouteWidget(lab, "reviews")
    lab.apply(ISTIO / "virtual-service-reviews-test-v2.yaml")
    rule.refresh()
    assert (rule.header.value, rule.value.value, rule.subset.value) == ("end-user", "jason", "v2")
    rule.value.value = "bob"
    lab.apply(istio.with_header_route(lab.get("VirtualService", "reviews"), "reviews", "default",
                                      "x-canary", "prefix", "yes", "v3"))
    rule.refresh()
    assert (rule.header.value, rule.match_type.value, rule.value.value, rule.subset.value) == \
        ("x-canary", "prefix", "bob", "v3")
    assert rule.kept == ["value"] and "bob" not in str(lab.get("VirtualService", "reviews"))


def test_a_fault_starts_on_the_rule_that_has_it_and_changes_only_the_fault(lab: Lab) -> None:
    delay = istio.find_virtual_service(config_docs("virtual-service-ratings-test-delay.yaml"), "ratings", "default")
    assert delay is not None
    delay["spec"]["http"][1]["retries"] = {"attempts": 1}
    before = applied(lab, delay)
    fault = FaultWidget(lab, "ratings")
    assert fault.rule.value == 0 and (fault.delay_ms.value, fault.delay_percent.value) == (7000, 100.0)
    fault.delay_ms.value = 50
    fault.apply_button.click()
    after = lab.get("VirtualService", "ratings")
    assert after["spec"]["http"][0] == {**before["spec"]["http"][0],
                                        "fault": {"delay": {"fixedDelay": "50ms", "percentage": {"value": 100.0}}}}
    assert after["spec"]["http"][1] == before["spec"]["http"][1] and after["metadata"] == before["metadata"]
    lab.apply(ISTIO / "virtual-service-ratings-test-abort.yaml")
    fault.refresh()
    assert (fault.rule.value, fault.delay_ms.value, fault.abort_status.value, fault.abort_percent.value) == \
        (0, 0, 500, 100.0)


def test_retries_start_from_the_lab_and_keep_the_fields_no_control_shows(lab: Lab) -> None:
    before = applied(lab, reviews_routes())
    retry = RetryWidget(lab, "reviews")
    assert retry.rule.value == 0, "the first rule with a timeout or retries"
    assert (retry.attempts.value, retry.retry_on.value, retry.timeout_ms.value) == (2, "", 3000), \
        "a 3 s timeout and Istio's default retries"
    retry.rule.value = 2
    assert (retry.attempts.value, retry.retry_on.value, retry.timeout_ms.value) == (3, "5xx", 0)
    retry.attempts.value = 4
    retry.apply_button.click()
    after = lab.get("VirtualService", "reviews")
    assert after["spec"]["http"][2] == {**before["spec"]["http"][2],
                                        "retries": {**before["spec"]["http"][2]["retries"], "attempts": 4}}
    assert after["spec"]["http"][:2] == before["spec"]["http"][:2] and after["metadata"] == before["metadata"]
    changed = copy.deepcopy(after)
    changed["spec"]["http"][2]["timeout"] = "1500ms"
    lab.apply(changed)
    retry.refresh()
    assert (retry.attempts.value, retry.timeout_ms.value) == (4, 1500)


def pick_rule() -> dict[str, Any]:
    """Notebook 07's `pick` rule, on reviews: subsets, load balancing and outlier detection, and no breaker."""
    return {
        "apiVersion": "networking.istio.io/v1", "kind": "DestinationRule",
        "metadata": {"name": "reviews", **META},
        "spec": {"host": "reviews",
                 "trafficPolicy": {"loadBalancer": {"simple": "ROUND_ROBIN"},
                                   "connectionPool": {"tcp": {"connectTimeout": "2s"}},
                                   "outlierDetection": {"consecutive5xxErrors": 3, "interval": "1s",
                                                        "baseEjectionTime": "10s", "maxEjectionPercent": 100,
                                                        "consecutiveGatewayErrors": 2}},
                 "subsets": [{"name": v, "labels": {"version": v}} for v in ("v1", "v2", "v3")]},
    }


def test_the_breaker_starts_from_the_destination_rule_and_apply_keeps_its_outlier_detection(lab: Lab) -> None:
    before = applied(lab, pick_rule())
    breaker = BreakerWidget(lab, "reviews")
    assert breaker.outlier_on.value and breaker.consecutive_5xx.value == 3 and breaker.interval_ms.value == 1000
    assert breaker.pool_on.value and breaker.max_connections.value == 0, "a connectionPool with no limit yet"
    breaker.apply_button.click()
    assert breaker.error == "" and lab.get("DestinationRule", "reviews") == before, "Apply without a change changes nothing"
    breaker.max_connections.value = 1
    breaker.apply_button.click()
    after = lab.get("DestinationRule", "reviews")
    policy = before["spec"]["trafficPolicy"]
    assert after["spec"]["trafficPolicy"] == {**policy, "connectionPool": {"tcp": {"connectTimeout": "2s",
                                                                                   "maxConnections": 1}}}
    assert after["metadata"] == before["metadata"] and after["spec"]["subsets"] == before["spec"]["subsets"]


def test_the_breaker_follows_a_change_made_elsewhere_and_applies_over_it(lab: Lab) -> None:
    before = applied(lab, pick_rule())
    breaker = BreakerWidget(lab, "reviews")
    breaker.max_connections.value = 9
    elsewhere = copy.deepcopy(before)
    elsewhere["spec"]["trafficPolicy"]["outlierDetection"]["consecutive5xxErrors"] = 7
    lab.apply(elsewhere)
    breaker.apply_button.click()
    after = lab.get("DestinationRule", "reviews")["spec"]["trafficPolicy"]
    assert after["outlierDetection"]["consecutive5xxErrors"] == 7, "synced before applying: the lab's 7, not the stale 3"
    assert after["connectionPool"]["tcp"]["maxConnections"] == 9, "the learner's edit"
    lab.apply(ISTIO / "destination-rule-all.yaml")
    breaker.refresh()
    assert not breaker.pool_on.value and not breaker.outlier_on.value


def test_mtls_shows_the_mesh_wide_mode_in_force_and_where_it_comes_from(lab: Lab) -> None:
    mesh = applied(lab, config_docs("peer-authentication-mesh-strict.yaml")[0])
    mtls = MtlsWidget(lab)
    assert (mtls.buttons.value, mtls.source, mtls.policy) == ("STRICT", "mesh", "istio-system/default")
    assert "mesh-wide" in mtls.where.value
    mtls.scope.value = "reviews-v2"
    assert (mtls.buttons.value, mtls.source) == ("STRICT", "mesh")
    mtls.buttons.value = "PERMISSIVE"
    assert lab.get("PeerAuthentication", "reviews-v2")["spec"]["mtls"] == {"mode": "PERMISSIVE"}
    assert (mtls.mode, mtls.source) == ("PERMISSIVE", "workload")
    assert lab.get("PeerAuthentication", "default", "istio-system") == mesh, "the mesh-wide policy is not the widget's"
    lab.apply(istio.peer_authentication("default", "DISABLE"))
    mtls.refresh()
    assert (mtls.buttons.value, mtls.source) == ("PERMISSIVE", "workload"), "the workload's own policy still decides"
    mtls.scope.value = ""
    assert (mtls.buttons.value, mtls.source, mtls.policy) == ("DISABLE", "namespace", "default/default")


def test_mtls_changes_only_the_mode_of_the_policy_in_force(lab: Lab) -> None:
    policy = istio.peer_authentication("default", "PERMISSIVE", {"app": "reviews"}, "all-reviews")
    policy["metadata"].update(labels=META["labels"], annotations=META["annotations"])
    before = applied(lab, policy)
    mtls = MtlsWidget(lab)
    mtls.set_mode("STRICT", workload="reviews-v1")
    after = lab.get("PeerAuthentication", "all-reviews")
    assert after == {**before, "spec": {**before["spec"], "mtls": {"mode": "STRICT"}}}
    assert mtls.policy == "default/all-reviews" and lab.get("PeerAuthentication").shape[0] == 1


def test_authorization_starts_from_the_policy_in_the_lab_and_changes_only_its_own_fields(lab: Lab) -> None:
    viewer = config_docs("authorization-policy-reviews-viewer.yaml")[0]
    viewer["metadata"].update(labels=META["labels"])
    viewer["spec"]["rules"].append({"to": [{"operation": {"paths": ["/health"]}}]})
    before = applied(lab, viewer)
    authz = AuthorizationWidget(lab, "reviews")
    assert authz.choice.value == "reviews-viewer"
    assert (authz.action.value, authz.caller.value, authz.path.value) == ("ALLOW", "bookinfo-productpage", "")
    assert "the rest of this policy stays" in authz.note.value
    authz.path.value = "/reviews/*"
    authz.apply_button.click()
    after = lab.get("AuthorizationPolicy", "reviews-viewer")
    first = before["spec"]["rules"][0]
    assert after["spec"]["rules"][0] == {**first, "to": [{"operation": {**first["to"][0]["operation"],
                                                                        "paths": ["/reviews/*"]}}]}
    assert after["spec"]["rules"][1:] == before["spec"]["rules"][1:] and after["metadata"] == before["metadata"]
    assert after["spec"]["selector"] == before["spec"]["selector"]
    elsewhere = copy.deepcopy(after)
    elsewhere["spec"]["action"] = "DENY"
    lab.apply(elsewhere)
    authz.refresh()
    assert authz.action.value == "DENY" and authz.path.value == "/reviews/*"
    lab.delete("AuthorizationPolicy", "reviews-viewer", "default")
    authz.refresh()
    assert authz.choice.value == istio.NEW_POLICY and authz.note.value == ""


def test_a_displayed_widget_follows_the_lab_without_being_asked(lab: Lab, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(WATCHER, "interval_s", 0.1)
    breaker = BreakerWidget(lab, "reviews")
    hidden = BreakerWidget(lab, "reviews")

    async def shown_while_another_cell_applies() -> None:
        breaker._view_count = 1  # what the frontend reports once it draws the widget
        assert WATCHER.running
        lab.apply(pick_rule())
        await asyncio.sleep(WATCHER.interval_s * 2.5)
        breaker._view_count = 0
        await asyncio.sleep(WATCHER.interval_s * 1.5)

    asyncio.run(shown_while_another_cell_applies())
    assert breaker.outlier_on.value and breaker.consecutive_5xx.value == 3
    assert not hidden.outlier_on.value, "a widget nobody shows is read when it is used, not on a timer"
    assert not WATCHER.running, "the timer stops once nothing is displayed"
    assert WATCHER.last_error == ""


def config_docs(name: str) -> list[dict[str, Any]]:
    """An Istio sample as the dicts a learner's YAML becomes, in the lab's namespace."""
    import yaml

    docs = [d for d in yaml.safe_load_all((ISTIO / name).read_text()) if d]
    for doc in docs:
        doc["metadata"].setdefault("namespace", "default")
    return docs


def test_the_dashboards_configured_split_follows_a_change_made_elsewhere(lab: Lab) -> None:
    board = Dashboard(lab, "reviews", live=False)
    board.split.set_weights({"v1": 100, "v2": 0, "v3": 0})
    lab.apply(istio.with_split(lab.get("vs", "reviews"), "reviews", "default", {"v1": 20, "v2": 0, "v3": 80}))
    board.split.refresh()
    configured = board.split_table().set_index("version")["configured"]
    assert configured.to_dict() == {"v1": 20.0, "v2": 0.0, "v3": 80.0}
