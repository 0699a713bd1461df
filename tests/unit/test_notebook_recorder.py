"""The shared store of request rows: bounded, safe to fill from several threads, honest about lateness."""

from __future__ import annotations

import threading

import pytest

from meshkit.loadgen import Result
from meshkit.notebook.recorder import Recorder, Row, rows_from_results


def row(at: float, run: int = 1, target: str = "reviews") -> Row:
    return Row(at, 1.0, 200, "", "v1", "", target, run)


def test_the_oldest_rows_go_first_and_are_counted() -> None:
    recorder = Recorder(max_rows=5)
    recorder.add(row(float(i)) for i in range(8))
    assert len(recorder) == 5 and recorder.dropped == 3
    assert recorder.frame()["at"].tolist() == [3.0, 4.0, 5.0, 6.0, 7.0]


def test_rows_from_threads_at_once_are_all_kept() -> None:
    recorder = Recorder()
    def fill(run: int) -> None:
        for i in range(500):
            recorder.add([row(i + run / 10, run)])
    threads = [threading.Thread(target=fill, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    frame = recorder.frame()
    assert len(frame) == 4000 and frame["at"].is_monotonic_increasing
    assert frame.groupby("run").size().tolist() == [500] * 8


def test_frame_filters_by_target_and_time_and_changes_counts_writes() -> None:
    recorder = Recorder()
    before = recorder.changes
    recorder.add([row(1.0), row(2.0, target="ratings"), row(3.0)])
    recorder.add([])
    assert recorder.changes == before + 1
    assert recorder.frame(target="reviews")["at"].tolist() == [1.0, 3.0]
    assert recorder.frame(since=1.5)["at"].tolist() == [2.0, 3.0]
    assert recorder.new_run() != recorder.new_run()
    recorder.clear()
    assert len(recorder) == 0 and recorder.frame().empty
    with pytest.raises(ValueError):
        Recorder(0)


def test_result_rows_keep_the_intended_time_on_the_wall_clock_and_latency_from_it() -> None:
    results = [Result(intended_at=10.0, sent_at=10.02, done_at=10.025, code=200, flags="", version="v2", bytes=3, error="")]
    row, = rows_from_results(results, target="reviews", run=1, offset=1000.0)
    assert (row.at, row.latency_ms) == (1010.0, pytest.approx(25.0))
    assert row.version == "v2" and row.code == 200 and row.target == "reviews"
