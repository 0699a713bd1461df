"""Notebook 06's charts: requests sent vs attempts received, attempts per request and budget refusals,
from hand-made telemetry records (lab.requests' columns)."""

from __future__ import annotations

import math

import pandas as pd

from meshkit.notebook.charts import resilience

T0 = 1_800_000_000.0
BROKEN = "broken.default.svc.cluster.local"


def record(at: float, reporter: str, *, retries: int = 0, flags: str = "", code: int = 500,
           service: str = BROKEN) -> dict[str, object]:
    return {"start": T0 + at, "reporter": reporter, "source_workload": "curl", "destination_service": service,
            "code": code, "flags": flags, "retries": retries}


def storm(seconds: int = 3) -> pd.DataFrame:
    """Second 0: 2 requests with 4 retries each (10 attempts, URX); later: 2 requests a second,
    no retry (the budget refused: UO), 2 attempts a second."""
    rows = []
    for i in range(2):
        rows.append(record(0.1 + i * 0.2, "source", retries=4, flags="URX"))
        rows += [record(0.1 + i * 0.2 + k * 0.05, "destination") for k in range(5)]
    for s in range(1, seconds):
        for i in range(2):
            rows.append(record(s + 0.1 + i * 0.2, "source", flags="UO"))
            rows.append(record(s + 0.1 + i * 0.2, "destination"))
    return pd.DataFrame(rows)


def test_each_second_counts_requests_sent_and_attempts_received() -> None:
    table = resilience.storm_table(storm())
    assert table["requests"].tolist() == [2, 2, 2]
    assert table["attempts"].tolist() == [10, 2, 2]
    assert table["per_request"].tolist() == [5.0, 1.0, 1.0]
    assert table["refused"].tolist() == [0, 2, 2] and table["refused_percent"].tolist() == [0.0, 100.0, 100.0]
    assert table["second"].tolist() == [T0 + 0.1, T0 + 1.1, T0 + 2.1]  # counted from the first request
    assert str(table["requests"].dtype) == "int64" and str(table["attempts"].dtype) == "int64"


def test_a_pause_is_a_drop_to_zero_not_a_bridge() -> None:
    frame = pd.DataFrame([record(0.0, "source"), record(0.0, "destination"),
                          record(3.0, "source"), record(3.0, "destination")])
    table = resilience.storm_table(frame)
    assert table["requests"].tolist() == [1, 0, 0, 1]
    assert math.isnan(table["per_request"].iloc[1])


def test_a_second_not_over_when_the_records_were_read_is_left_out() -> None:
    frame = storm()
    frame.attrs["until"] = T0 + 2.5  # the third second (from 2.1) was still going
    assert len(resilience.storm_table(frame)) == 2


def test_uo_among_several_flags_counts_as_refused() -> None:
    frame = pd.DataFrame([record(0.0, "source", flags="UO,URX"), record(0.1, "source", flags="-"),
                          record(0.2, "source", flags="UF")])
    assert resilience.storm_table(frame)["refused"].tolist() == [1]


def test_totals_add_up_the_run() -> None:
    totals = resilience.storm_totals(storm())
    assert totals["requests"] == 6 and totals["attempts"] == 14
    assert abs(totals["attempts_per_request"] - 14 / 6) < 1e-9
    assert abs(totals["refused_percent"] - 4 / 6 * 100) < 1e-9


def test_of_service_keeps_one_service_by_short_or_full_name() -> None:
    frame = pd.DataFrame([record(0.0, "source"), record(0.0, "source", service="flaky.default.svc.cluster.local")])
    assert len(resilience.of_service(frame, "broken")) == 1
    assert len(resilience.of_service(frame, BROKEN)) == 1


def test_load_chart_draws_requests_and_attempts_with_the_gap_shaded() -> None:
    traces, layout = resilience.load_vs_attempts(storm(), "broken")
    assert [t.name for t in traces] == ["requests/s sent by the client", "attempts/s received by broken"]
    assert list(traces[0].y) == [2, 2, 2] and list(traces[1].y) == [10, 2, 2]
    assert traces[1].fill == "tonexty"
    assert layout["title"]["text"] == "Load on broken: 6 requests sent, 14 attempts received"
    assert "width" not in layout and layout["legend"]["orientation"] == "h"
    assert layout["annotations"][0]["visible"] is False


def test_refusal_chart_puts_the_share_refused_on_a_second_axis_in_percent() -> None:
    traces, layout = resilience.attempts_and_refusals(storm())
    bars, line = traces
    assert bars.yaxis == "y2" and list(bars.y) == [0.0, 100.0, 100.0]
    assert [list(c) for c in bars.customdata] == [[0, 2], [2, 2], [2, 2]]
    assert line.name == "attempts per request" and list(line.y) == [5.0, 1.0, 1.0]
    assert layout["yaxis2"]["range"] == [0, 105] and layout["yaxis2"]["overlaying"] == "y"
    assert layout["title"]["text"] == "Attempts per request (2.3 overall), refused a retry (67%)"


def test_charts_of_no_records_say_to_start_load() -> None:
    empty = pd.DataFrame(columns=["start", "reporter", "source_workload", "destination_service", "code", "flags",
                                  "retries"])
    for traces, layout in (resilience.load_vs_attempts(empty), resilience.attempts_and_refusals(empty)):
        assert all(len(t.x) == 0 for t in traces)
        assert "start load" in layout["annotations"][0]["text"] and layout["annotations"][0]["visible"] is True


def test_the_source_reads_the_lab_once_for_both_charts() -> None:
    class FakeLab:
        calls = 0

        def requests(self, window: float) -> pd.DataFrame:
            FakeLab.calls += 1
            return storm()

    source = resilience.StormSource(FakeLab(), "broken", reuse_s=60.0)  # type: ignore[arg-type]
    charts = [resilience.Chart(resilience.attempts_and_refusals, source=source)] * 2
    frames = [chart.source() for chart in charts]  # type: ignore[misc]
    assert FakeLab.calls == 1 and frames[0] is frames[1]
    assert "until" in frames[0].attrs and len(frames[0]) == len(storm())


def test_phases_split_the_records_at_the_moment_the_control_moved() -> None:
    frame = storm(seconds=4)
    phases = resilience.storm_phases(frame, [("first", None, T0 + 1.0), ("then", T0 + 1.0, None)])
    assert phases["phase"].tolist() == ["first", "then"]
    assert phases["requests"].tolist() == [2, 6] and phases["attempts"].tolist() == [10, 6]
    assert phases["peak_per_request"].tolist() == [5.0, 1.0]
    assert phases["refused_percent"].tolist() == [0.0, 100.0]


def test_between_keeps_the_time_the_records_were_read() -> None:
    frame = storm()
    frame.attrs["until"] = T0 + 100
    assert resilience.between(frame, since=T0 + 1).attrs["until"] == T0 + 100


def test_times_are_text_a_live_figure_sends_as_dates_not_as_nanoseconds() -> None:
    traces, layout = resilience.load_vs_attempts(storm(), "broken")
    assert all(isinstance(x, str) for x in traces[0].x)
    assert pd.Timestamp(traces[0].x[1]) - pd.Timestamp(traces[0].x[0]) == pd.Timedelta(seconds=1)
    assert layout["xaxis"]["type"] == "date"
