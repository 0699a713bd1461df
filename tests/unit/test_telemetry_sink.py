"""The control plane's telemetry store: dedupe, gaps, bounds, persistence."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from meshkit.control.telemetry import BadBatch, TelemetrySink


def batch(seqs: list[int], node: str = "default/a-0", boot: str = "b1", dropped: int = 0, start: float = 100.0, trace: str = "t") -> tuple[bytes, dict[str, Any]]:
    doc = {"node": node, "boot": boot, "started_at": 1.0, "recorded": max(seqs, default=-1) + 1, "dropped": dropped,
           "records": [{"seq": s, "start": start + s, "reporter": "source", "node": node, "response_code": 200,
                        "duration": 1.0, "trace_id": f"{trace}{s}"} for s in seqs]}  # fmt: skip
    return json.dumps(doc).encode(), doc


def ingest(sink: TelemetrySink, *args: Any, **kw: Any) -> dict[str, Any]:
    body, doc = batch(*args, **kw)
    return sink.ingest(body, doc)


def test_a_batch_sent_twice_is_stored_once() -> None:
    sink = TelemetrySink()
    ingest(sink, [0, 1, 2])
    again = ingest(sink, [0, 1, 2, 3])
    assert again == {"ok": True, "accepted": 1, "next_seq": 4}
    stream = sink.status()["streams"][0]
    assert (stream["received"], stream["duplicates"], stream["gaps"]) == (4, 3, 0)
    assert [r[-1] for r in sink.query()["rows"]] == [0, 1, 2, 3]


def test_a_hole_in_the_sequence_is_a_counted_gap_and_a_new_boot_starts_afresh() -> None:
    sink = TelemetrySink()
    ingest(sink, [0, 1])
    ingest(sink, [5, 6], dropped=3)
    ingest(sink, [0], boot="b2")
    streams = {s["boot"]: s for s in sink.status()["streams"]}
    assert (streams["b1"]["gaps"], streams["b1"]["dropped"], streams["b1"]["received"]) == (3, 3, 4)
    assert (streams["b2"]["gaps"], streams["b2"]["received"]) == (0, 1)


def test_the_store_is_bounded_and_counts_what_it_evicts() -> None:
    sink = TelemetrySink(capacity=10)
    for i in range(5):
        ingest(sink, list(range(i * 4, i * 4 + 4)))
    status = sink.status()
    assert status["records"] <= 10 and status["records"] + status["evicted"] == 20


def test_a_restarted_sink_replays_its_segments(tmp_path: Path) -> None:
    sink = TelemetrySink(tmp_path / "telemetry", segment_records=5)
    for i in range(4):
        ingest(sink, list(range(i * 3, i * 3 + 3)))
    ingest(sink, [9, 10, 11])  # a re-sent batch: duplicates
    sink.close()
    again = TelemetrySink(tmp_path / "telemetry", segment_records=5)
    assert [r[-1] for r in again.query()["rows"]] == list(range(12))
    assert again.status()["streams"][0]["next_seq"] == 12 and again.status()["streams"][0]["gaps"] == 0
    assert ingest(again, [11, 12])["accepted"] == 1


def test_disk_use_is_bounded_too(tmp_path: Path) -> None:
    sink = TelemetrySink(tmp_path / "t", capacity=10, segment_records=4)
    for i in range(10):
        ingest(sink, list(range(i * 4, i * 4 + 4)))
    sink.close()
    assert len(list((tmp_path / "t").glob("segment-*.jsonl"))) <= 4
    again = TelemetrySink(tmp_path / "t", capacity=10, segment_records=4)
    status = again.status()
    assert status["records"] <= 10 and status["records"] + status["evicted"] == 40
    assert status["streams"][0]["gaps"] == 0


def test_queries_filter_by_time_trace_and_node() -> None:
    sink = TelemetrySink()
    ingest(sink, [0, 1, 2, 3], start=100.0)
    ingest(sink, [0, 1], node="default/b-0", start=200.0, trace="u")
    assert len(sink.query(since=102.0)["rows"]) == 4
    assert len(sink.query(since=102.0, until=200.0)["rows"]) == 2
    assert [r[-1] for r in sink.query(trace_id="u1")["rows"]] == [1]
    assert len(sink.query(node="default/b-0")["rows"]) == 2
    assert [r[-1] for r in sink.query(limit=2)["rows"]] == [0, 1]


@pytest.mark.parametrize("doc", [[], {"node": "", "boot": "b", "records": []}, {"node": "n", "boot": "b", "records": {}}])
def test_malformed_batches_are_refused(doc: Any) -> None:
    with pytest.raises(BadBatch):
        TelemetrySink().ingest(json.dumps(doc).encode(), doc)


def test_a_query_can_ask_for_some_columns_only() -> None:
    sink = TelemetrySink()
    ingest(sink, [0, 1])
    answer = sink.query(columns=["seq", "start"])
    assert answer == {"columns": ["seq", "start"], "rows": [[0, 100.0], [1, 101.0]]}
    with pytest.raises(BadBatch):
        sink.query(columns=["nope"])
