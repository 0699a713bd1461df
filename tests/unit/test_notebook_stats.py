"""What the charts plot, from request rows: percentiles per version, rate, success, split."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from meshkit.notebook import stats
from meshkit.notebook.recorder import COLUMNS, DTYPES, Row

T0 = 1_700_000_000.0


def frame(rows: list[tuple[float, float, int, str]]) -> pd.DataFrame:
    """(seconds after T0, latency ms, code, version) -> recorder rows."""
    return pd.DataFrame([Row(T0 + t, lat, code, "", v, "", "reviews", 1) for t, lat, code, v in rows],
                        columns=COLUMNS).astype(DTYPES)


def test_percentiles_are_per_version_over_trailing_windows() -> None:
    rows = [(0.005 + i / 100, float(i % 100 + 1), 200, "v1") for i in range(300)]   # 1..100 ms each second
    rows += [(0.05 + i / 10, 500.0, 200, "v2") for i in range(30)]
    table = stats.rolling_percentiles(frame(rows), window_s=1.0, step_s=1.0)
    v1 = table[table.version == "v1"]
    assert len(v1) == 3 and list(v1["count"]) == [100, 100, 100]
    assert v1["p50_ms"].iloc[-1] == pytest.approx(50.5) and v1["p99_ms"].iloc[-1] == pytest.approx(99.01)
    assert (table[table.version == "v2"]["p99_ms"] == 500.0).all()
    assert str(table["t"].dt.tz) == "UTC"


def test_percentiles_skip_unanswered_requests_and_keep_a_window_moving() -> None:
    rows = [(0.1, 0.01, 0, ""), (0.2, 10.0, 200, "v1"), (5.5, 30.0, 503, "v1")]
    table = stats.rolling_percentiles(frame(rows), window_s=2.0, step_s=1.0)
    assert table["t"].tolist() == [pd.Timestamp(T0 + t, unit="s", tz="UTC") for t in (1, 2, 6)]
    assert table["p50_ms"].tolist() == [10.0, 10.0, 30.0]
    assert stats.rolling_percentiles(frame([(0.0, 1.0, 0, "")])).empty
    assert stats.rolling_percentiles(frame([])).empty


def test_the_horizon_keeps_only_recent_rows() -> None:
    rows = [(t + 0.5, 1.0, 200, "v1") for t in range(100)]
    table = stats.rolling_percentiles(frame(rows), window_s=1.0, step_s=1.0, horizon_s=10.0)
    assert len(table) == 10


def test_rate_and_success_drop_to_zero_in_a_pause() -> None:
    rows = [(0.05 + i / 10, 1.0, 200 if i % 4 else 500, "v1") for i in range(20)]   # 10/s for 2 s, 75% ok
    rows += [(5.05 + i / 10, 1.0, 200, "v1") for i in range(10)] + [(6.5, 1.0, 200, "v1")]
    table = stats.rate_series(frame(rows), window_s=1.0, step_s=1.0)
    assert table["rps"].tolist() == [10.0, 10.0, 0.0, 0.0, 0.0, 10.0], "whole seconds only: 6.5 is not shown yet"
    assert table["success_rate"].iloc[0] == pytest.approx(0.7) and table["success_rate"].iloc[1] == pytest.approx(0.8)
    assert math.isnan(table["success_rate"].iloc[3])
    assert table["success_rate"].iloc[-1] == 1.0


def test_observed_split_against_the_configured_one() -> None:
    rows = [(0.05 + i / 10, 1.0, 200, "v1" if i % 4 else "v3") for i in range(100)] + [(9.99, 0.1, 0, "")]
    observed = stats.observed_split(frame(rows), window_s=None)
    assert observed.to_dict() == {"v1": 75.0, "v3": 25.0}
    table = stats.split_table(stats.configured_split({"v1": 80, "v2": 0, "v3": 20}, {"v1": "v1", "v2": "v2", "v3": "v3"}),
                              frame(rows), window_s=None)
    assert table.to_dict("records") == [
        {"version": "v1", "configured": 80.0, "observed": 75.0, "count": 75},
        {"version": "v2", "configured": 0.0, "observed": 0.0, "count": 0},
        {"version": "v3", "configured": 20.0, "observed": 25.0, "count": 25},
    ]
    recent = stats.observed_split(frame(rows), window_s=1.0)
    assert recent.sum() == pytest.approx(100.0) and set(recent.index) == {"v1", "v3"}
    assert stats.split_table({"v1": 100.0}, frame([])).to_dict("records") == [
        {"version": "v1", "configured": 100.0, "observed": 0.0, "count": 0}]


def test_two_subsets_of_one_version_add_up() -> None:
    assert stats.configured_split({"a": 30, "b": 70}, {"a": "v1", "b": "v1"}) == {"v1": 100.0}


def test_certificate_table_counts_down_and_reads_both_kinds_of_rotations() -> None:
    now = pd.Timestamp("2026-01-01 12:00", tz="UTC")
    certs = pd.DataFrame({
        "identity": ["spiffe://cluster.local/ns/default/sa/b", "spiffe://cluster.local/ns/default/sa/a"],
        "not_before": [pd.Timestamp("2026-01-01 11:00"), now.timestamp() - 600],
        "not_after": [pd.Timestamp("2026-01-01 13:00"), now.timestamp() - 60],
        "rotations": [[pd.Timestamp("2026-01-01 11:00"), now.timestamp() - 1800], 4],
    })
    table = stats.certificate_table(certs, now)
    assert table["identity"].str.endswith(("sa/a", "sa/b")).all() and table["identity"].iloc[0].endswith("sa/a")
    assert table["left_s"].tolist() == [0.0, 3600.0]
    assert table["life_left"].tolist() == [0.0, 0.5]
    assert table["rotation_count"].tolist() == [4, 2]
    assert [len(t) for t in table["rotation_times"]] == [0, 2]


def test_human_seconds() -> None:
    assert [stats.human_seconds(s) for s in (5, 65, 3700, 90000, -3)] == ["5 s", "1m 05s", "1h 01m", "1d 1h", "0 s"]
