"""The security lessons' charts (09 mTLS, 10 authorization): calls per hop, drawn as lanes, from small tables."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd
import plotly.graph_objects as go
import pytest

from meshkit.notebook.charts import security as charts
from meshkit.notebook.charts.security import (
    ALLOWED,
    DENIED,
    MAX_LANES,
    MTLS,
    OUTSIDE,
    PLAINTEXT,
    REFUSED,
    HopSource,
    Mirror,
    Outsider,
    authz_hops,
    caller_name,
    calls_from_client,
    calls_from_telemetry,
    combine,
    hop_order,
    hop_rates,
    mtls_hops,
    service_name,
)
from meshkit.notebook.recorder import Recorder, Row

HOST = "{}.default.svc.cluster.local"


def record(at: float, source: str, version: str, service: str, *, mtls: bool = True, code: int = 200,
           flags: str = "-", reporter: str = "destination") -> dict[str, Any]:
    """One row as lab.requests() has it (the columns these charts read)."""
    return {"start": at, "reporter": reporter, "source_workload": source, "source_version": version,
            "destination_service": HOST.format(service), "code": code, "flags": flags,
            "connection_security_policy": "mutual_tls" if mtls else "none"}


def calls(rows: list[tuple[float, str, str, str]], denied: set[int] | None = None) -> pd.DataFrame:
    """A calls table from (at, caller, callee, security) tuples; `denied` holds row numbers a policy refused."""
    denied = denied or set()
    return pd.DataFrame({
        "at": [r[0] for r in rows], "caller": [r[1] for r in rows], "callee": [r[2] for r in rows],
        "security": [r[3] for r in rows], "denied": [i in denied for i in range(len(rows))],
        "code": [403 if i in denied else 200 for i in range(len(rows))],
    })


def steady(caller: str, callee: str, security: str, start: float, end: float, per_s: int = 10) -> list[tuple[float, str, str, str]]:
    return [(start + i / per_s, caller, callee, security) for i in range(int((end - start) * per_s))]


def lane_traces(traces: list[Any]) -> dict[str, list[Any]]:
    """The areas by the y axis (lane) they are drawn on (lane names, text traces, left out)."""
    out: dict[str, list[Any]] = {}
    for trace in traces:
        if trace.mode != "text":
            out.setdefault(trace.yaxis, []).append(trace)
    return out


def lane_names(traces: list[Any]) -> dict[str, str]:
    """The name written in each lane."""
    return {t.yaxis: t.text[0] for t in traces if t.mode == "text"}


# -- calls ---------------------------------------------------------------------------------


def test_a_caller_is_named_by_its_service_and_an_unknown_source_is_outside_the_mesh() -> None:
    assert caller_name("productpage-v1", "v1") == "productpage"
    assert caller_name("curl", "v1") == "curl"
    assert caller_name("unknown", "") == OUTSIDE
    assert caller_name("reviews-v2", "") == "reviews-v2"


@pytest.mark.parametrize(("host", "name"), [
    ("reviews.default.svc.cluster.local", "reviews"),
    ("productpage.default", "productpage"),
    ("reviews.default:9080", "reviews"),
    ("curl.legacy.svc.cluster.local", "curl.legacy"),
])
def test_a_callee_is_named_as_a_learner_says_it(host: str, name: str) -> None:
    assert service_name(host) == name


def test_telemetry_counts_each_request_once_where_it_arrived() -> None:
    records = pd.DataFrame([
        record(10.0, "curl", "v1", "productpage", reporter="source"),
        record(10.0, "curl", "v1", "productpage"),
        record(10.1, "productpage-v1", "v1", "reviews", mtls=False),
        record(10.2, "unknown", "", "productpage", mtls=False),
        record(10.3, "productpage-v1", "v1", "details", code=403, flags="RBAC"),
        record(10.4, "productpage-v1", "v1", "details", code=403, flags="-"),  # the app's own 403
    ])
    got = calls_from_telemetry(records)
    assert list(got.columns) == charts.CALL_COLUMNS
    assert list(zip(got.caller, got.callee, got.security, strict=True)) == [
        ("curl", "productpage", MTLS), ("productpage", "reviews", PLAINTEXT), (OUTSIDE, "productpage", PLAINTEXT),
        ("productpage", "details", MTLS), ("productpage", "details", MTLS),
    ]
    assert got.denied.tolist() == [False, False, False, True, False]


def test_a_plaintext_caller_is_named_by_its_own_sidecars_report_never_by_the_callee() -> None:
    rows = [
        # productpage's sidecar sent it (plaintext under DISABLE); reviews' sidecar saw an unverified caller.
        {**record(10.0, "productpage-v1", "v1", "reviews", mtls=False, reporter="source"), "request_id": "r1"},
        {**record(10.0, "unknown", "unknown", "reviews", mtls=False), "request_id": "r1"},
        # the same request id, another hop: productpage -> details.
        {**record(10.1, "productpage-v1", "v1", "details", mtls=False, reporter="source"), "request_id": "r1"},
        {**record(10.1, "unknown", "unknown", "details", mtls=False), "request_id": "r1"},
        # no sidecar reported sending this one: outside the mesh.
        {**record(10.2, "unknown", "unknown", "reviews", mtls=False), "request_id": "r2"},
    ]
    got = calls_from_telemetry(pd.DataFrame(rows))
    assert list(zip(got.caller, got.callee, strict=True)) == [
        ("productpage", "reviews"), ("productpage", "details"), (OUTSIDE, "reviews"),
    ]


def test_only_the_outsiders_unanswered_requests_are_added_as_refused() -> None:
    rows = pd.DataFrame({"at": [1.0, 2.0, 3.0], "code": [200, 0, 0]})
    got = calls_from_client(rows, OUTSIDE, "productpage.default")
    assert got["at"].tolist() == [2.0, 3.0]
    assert set(got.security) == {REFUSED} and set(got.callee) == {"productpage"} and not got.denied.any()


def test_no_data_gives_empty_calls_with_the_columns() -> None:
    assert calls_from_telemetry(pd.DataFrame()).empty
    assert list(combine(calls_from_telemetry(pd.DataFrame())).columns) == charts.CALL_COLUMNS


def test_hops_are_ordered_as_a_request_travels() -> None:
    hops = [("reviews", "ratings"), ("productpage", "reviews"), (OUTSIDE, "productpage"),
            ("productpage", "details"), ("curl", "productpage")]
    assert hop_order(hops) == [("curl", "productpage"), (OUTSIDE, "productpage"), ("productpage", "details"),
                               ("productpage", "reviews"), ("reviews", "ratings")]


# -- rates ------------------------------------------------------------------------------------


def test_rates_are_requests_per_second_with_zeros_where_a_value_had_none() -> None:
    table = calls(steady("curl", "productpage", PLAINTEXT, 100.0, 104.0) + steady("curl", "productpage", MTLS, 104.0, 108.0))
    rates = hop_rates(table, "security", window_s=2.0, step_s=1.0)
    plain = rates[rates.value == PLAINTEXT].set_index("t").rps
    mtls = rates[rates.value == MTLS].set_index("t").rps
    assert list(plain.index) == list(mtls.index)  # both on every step
    assert plain[103.0] == pytest.approx(10.0) and mtls[103.0] == 0.0
    assert plain[107.0] == 0.0 and mtls[107.0] == pytest.approx(10.0)


def test_rates_keep_only_the_horizon() -> None:
    table = calls(steady("curl", "productpage", MTLS, 0.0, 2.0) + steady("curl", "productpage", MTLS, 500.0, 505.0))
    rates = hop_rates(table, "security", horizon_s=10.0)
    assert rates.t.min() > 490.0


# -- lanes --------------------------------------------------------------------------------------


def migration() -> pd.DataFrame:
    """Notebook 09 in small: plaintext, then mTLS between sidecars, then the outsider refused."""
    rows = (steady("curl", "productpage", PLAINTEXT, 0.0, 4.0) + steady("curl", "productpage", MTLS, 4.0, 12.0)
            + steady("productpage", "reviews", PLAINTEXT, 0.0, 4.0) + steady("productpage", "reviews", MTLS, 4.0, 12.0)
            + steady(OUTSIDE, "productpage", PLAINTEXT, 0.0, 8.0) + steady(OUTSIDE, "productpage", REFUSED, 8.0, 12.0))
    return combine(calls(rows))


def test_each_hop_gets_a_lane_of_stacked_areas_colored_by_how_it_arrived() -> None:
    traces, layout = mtls_hops(migration(), horizon_s=None)
    lanes = lane_traces(traces)
    assert len(lanes) == 3
    assert lane_names(traces) == {"y": "<b>curl \N{RIGHTWARDS ARROW} productpage</b>",
                                  "y2": "<b>outside the mesh \N{RIGHTWARDS ARROW} productpage</b>",
                                  "y3": "<b>productpage \N{RIGHTWARDS ARROW} reviews</b>"}
    assert "annotations" not in layout, "a live figure would merge a list of annotations into the old one"
    assert [t.name for t in lanes["y2"]] == [PLAINTEXT, REFUSED]
    for axis, drawn in lanes.items():
        assert {t.stackgroup for t in drawn} == {drawn[0].stackgroup}, "one stack per lane"
    assert len({t.stackgroup for t in traces if t.mode != "text"}) == 3
    colors = {t.name: t.fillcolor for t in traces if t.mode != "text"}
    assert colors[MTLS] == "#2ca02c" and colors[PLAINTEXT] == "#d62728" and colors[REFUSED] != colors[PLAINTEXT]
    assert sorted(t.name for t in traces if t.showlegend) == sorted([MTLS, PLAINTEXT, REFUSED]), "each value once in the legend"


def test_lanes_share_one_range_and_fit_any_width() -> None:
    _, layout = mtls_hops(migration(), horizon_s=None)
    shown = [layout["yaxis" if i == 0 else f"yaxis{i + 1}"] for i in range(3)]
    assert all(a["visible"] for a in shown) and len({tuple(a["range"]) for a in shown}) == 1
    assert shown[0]["domain"][1] == 1.0 and shown[-1]["domain"][0] == pytest.approx(0.0, abs=1e-9)
    assert all(a["domain"][0] < a["domain"][1] for a in shown)
    assert shown[0]["domain"][0] > shown[1]["domain"][1], "lanes do not overlap"
    assert "width" not in layout and layout["legend"]["orientation"] == "h"


def test_every_layout_names_all_lane_axes_so_a_live_figure_keeps_none_from_before() -> None:
    _, layout = mtls_hops(migration(), horizon_s=None)
    axes = [k for k in layout if k.startswith("yaxis")]
    assert len(axes) == MAX_LANES
    assert [layout[f"yaxis{i}"]["visible"] for i in range(4, MAX_LANES + 1)] == [False] * (MAX_LANES - 3)
    assert layout["xaxis"]["anchor"] == "y3", "the time axis under the last lane"


def test_the_refused_share_is_what_the_outsider_sent_after_strict() -> None:
    traces, _ = mtls_hops(migration(), horizon_s=None)
    refused = next(t for t in traces if t.name == REFUSED)
    plain = next(t for t in traces if t.name == PLAINTEXT and t.yaxis == "y2")
    assert max(refused.y) == pytest.approx(10.0) and refused.y[-1] == pytest.approx(10.0)
    assert plain.y[-1] == 0.0 and max(plain.y) == pytest.approx(10.0)


def test_authorization_lanes_split_allowed_from_denied() -> None:
    rows = steady("curl", "productpage", MTLS, 0.0, 10.0) + steady("productpage", "details", MTLS, 0.0, 3.0)
    denied = {i for i, r in enumerate(rows) if r[1] == "curl" and 4.0 <= r[0] < 8.0}
    traces, layout = authz_hops(combine(calls(rows, denied)), horizon_s=None)
    lanes = lane_traces(traces)
    assert [t.name for t in lanes["y"]] == [ALLOWED, DENIED]
    assert [t.name for t in lanes["y2"]] == [ALLOWED]
    assert max(next(t for t in traces if t.name == DENIED).y) == pytest.approx(10.0)
    assert {t.fillcolor for t in traces if t.name == DENIED} == {"#d62728"}


def test_an_empty_chart_says_why() -> None:
    for draw in (mtls_hops, authz_hops):
        traces, layout = draw(charts.empty_calls())
        assert traces == []
        assert "start the load" in layout["title"]["text"]


# -- the bench's data and its outside caller ---------------------------------------------------------


@dataclass
class FakeLab:
    records: pd.DataFrame
    asked: list[tuple[float, str | None]] = field(default_factory=list)

    def requests(self, window: float, reporter: str | None = None) -> pd.DataFrame:
        self.asked.append((window, reporter))
        return self.records


def test_the_source_adds_the_outsiders_refused_requests_to_the_telemetry(monkeypatch: pytest.MonkeyPatch) -> None:
    lab = FakeLab(pd.DataFrame([record(1000.5, "curl", "v1", "productpage"),
                                record(1000.6, "unknown", "", "productpage", mtls=False),
                                record(990.0, "curl", "v1", "productpage")]))  # before the bench began
    recorder = Recorder()
    recorder.add([Row(1000.7, 1.0, 0, "", "", "reset", "productpage.default", 1),
                  Row(1000.8, 1.0, 200, "", "v1", "", "productpage.default", 1),
                  Row(1000.9, 1.0, 0, "", "", "", "productpage", 2)])  # the bench's own service: not the outsider
    monkeypatch.setattr(charts.time, "time", lambda: 1000.0)
    source = HopSource(lab, [Outsider(recorder, "productpage.default")])  # type: ignore[arg-type]
    monkeypatch.setattr(charts.time, "time", lambda: 1010.0)
    got = source()
    assert lab.asked == [(10.0, None)]  # both reporters: a plaintext caller is named by its own sidecar
    assert list(zip(got.caller, got.security, strict=True)) == [("curl", MTLS), (OUTSIDE, PLAINTEXT), (OUTSIDE, REFUSED)]


@dataclass
class FakeSpec:
    url: str = "http://productpage:9080/productpage"
    rate: float = 10.0
    duration_s: float = 12.0
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class FakeRun:
    state: str = "running"
    spec: FakeSpec = field(default_factory=FakeSpec)
    stopped: bool = False

    def stop(self) -> None:
        self.stopped = True


def test_each_run_starts_one_mirror_with_its_rate_duration_and_path() -> None:
    started: list[dict[str, Any]] = []
    mirrors: list[FakeRun] = []

    def start(**values: Any) -> FakeRun:
        started.append(values)
        mirrors.append(FakeRun())
        return mirrors[-1]

    mirror = Mirror(start)  # type: ignore[arg-type]
    run = FakeRun()
    mirror(run)  # type: ignore[arg-type]
    mirror(run)  # type: ignore[arg-type]  # told again while running: no second mirror
    assert started == [{"rate": 10.0, "duration_s": 12.0, "path": "/productpage", "headers": {}}]
    run.state = "done"
    mirror(run)  # type: ignore[arg-type]
    assert not mirrors[0].stopped, "a run that ended by itself leaves its mirror to end by itself"


def test_stopping_a_run_by_hand_stops_its_mirror() -> None:
    mirrors: list[FakeRun] = []
    mirror = Mirror(lambda **_: mirrors.append(FakeRun()) or mirrors[-1])  # type: ignore[arg-type]
    run = FakeRun()
    mirror(run)  # type: ignore[arg-type]
    run.state = "stopped"
    mirror(run)  # type: ignore[arg-type]
    assert mirrors[0].stopped


def test_a_run_already_over_when_reported_gets_no_mirror() -> None:
    started: list[Any] = []
    mirror = Mirror(lambda **values: started.append(values))  # type: ignore[arg-type]
    mirror(FakeRun(state="failed"))  # type: ignore[arg-type]
    assert started == []


def test_a_live_figure_redrawn_with_fewer_lanes_keeps_nothing_of_the_old_ones() -> None:
    from meshkit.notebook.figures import fill

    fig = go.Figure()
    fill(fig, *mtls_hops(charts.empty_calls()))
    fill(fig, *mtls_hops(migration(), horizon_s=None))
    assert fig.layout.title.text == charts.MTLS_TITLE, "the empty chart's note is gone once there is data"
    one_lane = combine(calls(steady("curl", "productpage", MTLS, 0.0, 5.0)))
    fill(fig, *mtls_hops(one_lane, horizon_s=None))
    assert [t.text[0] for t in fig.data if t.mode == "text"] == ["<b>curl \N{RIGHTWARDS ARROW} productpage</b>"]
    assert fig.layout.yaxis.visible and fig.layout.yaxis.domain == (0.0, 1.0)
    assert fig.layout.yaxis2.visible is False and fig.layout.yaxis3.visible is False
