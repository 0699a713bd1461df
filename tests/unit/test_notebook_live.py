"""The chart refresher: ticks on a worker thread, driven from the Lab's loop, while something is active."""

from __future__ import annotations

import threading
import time

import pandas as pd
import pytest

from meshkit.notebook.live import ChartFitter, LiveCharts, Refresher
from meshkit.notebook.recorder import Recorder, Row


def wait_for(check: object, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():  # type: ignore[operator]
            return True
        time.sleep(0.01)
    return False


def test_it_ticks_off_the_loop_thread_while_active_then_once_more_and_stops() -> None:
    active = threading.Event()
    active.set()
    threads: list[str] = []
    refresher = Refresher(lambda n: threads.append(threading.current_thread().name), active.is_set, interval_s=0.01)
    refresher.kick()
    refresher.kick()
    assert wait_for(lambda: len(threads) >= 3)
    active.clear()
    assert wait_for(lambda: not refresher.running)
    count = len(threads)
    time.sleep(0.05)
    assert len(threads) == count, "stopped"
    assert "meshkit-loop" not in threads, "the loop only schedules; pandas work runs elsewhere"


def test_a_failing_tick_is_kept_and_the_loop_goes_on() -> None:
    calls: list[int] = []

    def tick(n: int) -> None:
        calls.append(n)
        if n == 0:
            raise ValueError("bad frame")

    refresher = Refresher(tick, lambda: len(calls) < 3, interval_s=0.01)
    refresher.kick()
    assert wait_for(lambda: not refresher.running and len(calls) >= 3)
    assert "ValueError: bad frame" in refresher.last_error


def test_charts_redraw_only_when_the_recorder_changed() -> None:
    recorder = Recorder()
    charts = LiveCharts(recorder, target="reviews", live=False)
    assert charts.refresh() is True and charts.refresh() is False
    now = time.time()
    recorder.add(Row(now - 3 + i / 10, 5.0, 200, "", "v1" if i % 2 else "v2", "", "reviews", 1) for i in range(30))
    recorder.add([Row(now, 5.0, 200, "", "v9", "", "ratings", 2)])
    charts.set_configured({"v1": 50.0, "v2": 50.0})
    assert charts.refresh() is True
    assert {t.name for t in charts.latency.data} == {f"{v} p{p}" for v in ("v1", "v2") for p in (50, 90, 99)}
    assert list(charts.split.data[0].x) == ["v1", "v2"] and list(charts.split.data[1].y) == [50.0, 50.0]
    assert set(charts.figures()) == {"latency", "split", "rate"}
    charts.refresh_topology(pd.DataFrame())  # no topology chart without an edges source: nothing to do


def test_live_charts_are_responsive_and_wrap_in_a_full_width_box() -> None:
    pytest.importorskip("anywidget", reason="plotly's FigureWidget needs anywidget")
    charts = LiveCharts(Recorder(), target="reviews", live=True, edges=lambda: pd.DataFrame())
    assert charts.latency._config["responsive"] is True, "redrawn at its element's width on a resize"
    box = charts.widget()
    assert box.layout.width == "100%"
    row, *rest = box.children
    assert row.layout.flex_flow == "row wrap", "latency and split wrap one under the other when narrow"
    *cells, fitter = row.children
    assert [cell.children[0] for cell in cells] == [charts.latency, charts.split]
    assert all(cell.layout.min_width == "0" and cell.layout.flex.startswith("1 1 ") for cell in cells)
    assert isinstance(fitter, ChartFitter), "keeps each chart of the tree drawn at its box's width"
    assert [cell.children[0] for cell in rest] == [charts.rate, charts.topology]
    assert all(cell.layout.flex is None and cell.layout.width == "100%" for cell in rest), (
        "in a column, flex would set the height: a box taller than its chart")
