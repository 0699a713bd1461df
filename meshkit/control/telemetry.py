"""The telemetry sink: every sidecar's request records, in one bounded store.

Sidecars push batches (POST /v1/telemetry, meshkit.sidecar.telemetry_push):

    {"node": "default/reviews-v1-0", "boot": "<id of this sidecar process>",
     "started_at": unix_s, "recorded": N, "dropped": D,
     "records": [{...access-log object..., "seq": 41}, ...]}

`seq` numbers a sidecar's records from 0 in the order it recorded them. Per
(node, boot) the sink keeps the next `seq` it expects: a record below it was
stored already (a batch sent again after its answer was lost) and is skipped;
a record above it means records in between never arrived, and the difference
is counted as a gap. `dropped` is the sidecar's own count of records it had
to discard (its buffer overflowed while the control plane was away). So a
loss is always a number a learner can see (lab.telemetry_drops()), never a
silent hole in a chart.

Store: at most `capacity` records in memory, oldest batches evicted first
(and counted). It is **persisted**: each accepted batch is appended, as
received, to a segment file under `<home>/telemetry/` before the sidecar is
told 200, and a restarted control plane replays the segments. Persisting
beats asking sidecars to re-send: a sidecar only keeps what it has not yet
delivered, so after a control-plane restart nothing could re-fill what was
acknowledged, and the lab's history (edges, stat, traces) would restart from
zero. Segments are rotated every `segment_records` records and the oldest
deleted once the rest hold `capacity`, so the disk use is bounded too.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

log = logging.getLogger("meshkit.control")

DEFAULT_CAPACITY = 200_000
SEGMENT_RECORDS = 20_000
MAX_QUERY_ROWS = 500_000

COLUMNS = (
    "start",
    "reporter",
    "node",
    "source_workload",
    "source_namespace",
    "source_version",
    "source_principal",
    "destination_service",
    "destination_workload",
    "destination_namespace",
    "destination_version",
    "destination_principal",
    "connection_security_policy",
    "method",
    "path",
    "authority",
    "protocol",
    "response_code",
    "response_flags",
    "duration",
    "bytes_received",
    "bytes_sent",
    "upstream_host",
    "request_id",
    "trace_id",
    "span_id",
    "parent_span_id",
    "retries",
    "dry_run",  # what dry-run AuthorizationPolicies would have decided (meshkit.core.dry_run.describe)
    "seq",
)
_START = COLUMNS.index("start")
_NODE = COLUMNS.index("node")
_TRACE = COLUMNS.index("trace_id")


class BadBatch(ValueError):
    """A push body that is not a telemetry batch."""


@dataclass
class Stream:
    """What the sink knows about one sidecar process (node, boot)."""

    node: str
    boot: str
    started_at: float = 0.0
    next_seq: int = 0
    received: int = 0
    duplicates: int = 0
    gaps: int = 0
    dropped: int = 0
    recorded: int = 0
    last_push: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "node": self.node,
            "boot": self.boot,
            "started_at": self.started_at,
            "received": self.received,
            "next_seq": self.next_seq,
            "duplicates": self.duplicates,
            "gaps": self.gaps,
            "dropped": self.dropped,
            "recorded": self.recorded,
            "last_push": self.last_push,
        }


@dataclass
class Batch:
    received_at: float
    rows: list[tuple[Any, ...]]
    min_start: float
    max_start: float


@dataclass
class Segment:
    path: Path
    records: int = 0


@dataclass
class TelemetrySink:
    """Bounded, persisted store of request records; see the module docstring."""

    directory: Path | None = None
    capacity: int = DEFAULT_CAPACITY
    segment_records: int = SEGMENT_RECORDS
    batches: deque[Batch] = field(default_factory=deque)
    size: int = 0
    evicted: int = 0
    streams: dict[tuple[str, str], Stream] = field(default_factory=dict)
    segments: list[Segment] = field(default_factory=list)
    forward: Callable[[list[tuple[Any, ...]]], None] | None = None
    """Called with the rows of each newly accepted batch (not replayed ones): the OTLP exporter."""
    _file: BinaryIO | None = None
    _disk_evicted: int = 0

    def __post_init__(self) -> None:
        if self.directory is not None:
            self.directory.mkdir(parents=True, exist_ok=True)
            self._replay()

    # -- ingest ----------------------------------------------------------------

    def ingest(self, body: bytes, doc: Any = None, now: float | None = None) -> dict[str, Any]:
        """Store one pushed batch (raw `body`, `doc` its parsed JSON if already parsed)."""
        if doc is None:
            try:
                doc = json.loads(body.decode("utf-8"))
            except (UnicodeDecodeError, json.JSONDecodeError) as exc:
                raise BadBatch(f"not JSON: {exc}") from None
        accepted = self._apply(doc, time.time() if now is None else now, replay=False)
        if accepted:
            self._persist(body, accepted)
            if self.forward is not None:
                self.forward(self.batches[-1].rows)
        stream = self.streams[(doc["node"], doc["boot"])]
        return {"ok": True, "accepted": accepted, "next_seq": stream.next_seq}

    def _apply(self, doc: Any, now: float, replay: bool, first_seen_ok: bool = False) -> int:
        node, boot, records = _check(doc)
        key = (node, boot)
        stream = self.streams.get(key)
        fresh = stream is None
        if stream is None:
            stream = self.streams[key] = Stream(node, boot)
        stream.started_at = _number(doc.get("started_at"), stream.started_at)
        stream.dropped = max(stream.dropped, int(_number(doc.get("dropped"), 0)))
        stream.recorded = max(stream.recorded, int(_number(doc.get("recorded"), 0)))
        stream.last_push = now
        rows = []
        expected = stream.next_seq
        for record in records:
            seq = record.get("seq") if isinstance(record, dict) else None
            if not isinstance(seq, int) or isinstance(seq, bool) or seq < 0:
                continue
            if seq < expected:
                stream.duplicates += 1
                continue
            if seq > expected and not (fresh and first_seen_ok and not rows):
                stream.gaps += seq - expected
            expected = seq + 1
            rows.append(tuple(record.get(column) for column in COLUMNS))
        stream.next_seq = expected
        stream.received += len(rows)
        if rows:
            starts = [r[_START] for r in rows if isinstance(r[_START], (int, float))]
            self.batches.append(Batch(now, rows, min(starts, default=now), max(starts, default=now)))
            self.size += len(rows)
            while self.size > self.capacity and len(self.batches) > 1:
                old = self.batches.popleft()
                self.size -= len(old.rows)
                self.evicted += len(old.rows)
        return len(rows)

    # -- persistence -----------------------------------------------------------

    def _persist(self, body: bytes, records: int) -> None:
        if self.directory is None:
            return
        try:
            if self._file is None or (self.segments and self.segments[-1].records >= self.segment_records):
                self._next_segment()
            assert self._file is not None
            self._file.write(body.replace(b"\n", b" ") + b"\n")
            self._file.flush()
            self.segments[-1].records += records
            self._trim_disk()
        except OSError as exc:
            log.warning("telemetry: cannot persist a batch to %s: %s", self.directory, exc)

    def _next_segment(self) -> None:
        assert self.directory is not None
        if self._file is not None:
            self._file.close()
        number = int(self.segments[-1].path.stem.split("-")[1]) + 1 if self.segments else 1
        path = self.directory / f"segment-{number:06d}.jsonl"
        self._file = open(path, "ab")  # noqa: SIM115 - held open while the sink lives
        self.segments.append(Segment(path))

    def _trim_disk(self) -> None:
        """Delete the oldest segments while the newer ones alone hold the capacity."""
        while len(self.segments) > 1 and sum(s.records for s in self.segments[1:]) >= self.capacity:
            old = self.segments.pop(0)
            self._disk_evicted += old.records
            old.path.unlink(missing_ok=True)
            self._write_meta()

    def _write_meta(self) -> None:
        assert self.directory is not None
        meta = self.directory / "meta.json"
        tmp = meta.with_suffix(".tmp")
        tmp.write_text(json.dumps({"disk_evicted": self._disk_evicted}))
        os.replace(tmp, meta)

    def _replay(self) -> None:
        assert self.directory is not None
        try:
            meta = json.loads((self.directory / "meta.json").read_text())
            self._disk_evicted = int(meta.get("disk_evicted", 0))
        except (OSError, ValueError, AttributeError):
            self._disk_evicted = 0
        replayed = 0
        for path in sorted(self.directory.glob("segment-*.jsonl")):
            segment = Segment(path)
            try:
                with open(path, "rb") as handle:
                    for raw in handle:
                        if not raw.strip():
                            continue
                        try:
                            doc = json.loads(raw.decode("utf-8"))
                            count = self._apply(doc, _number(doc.get("pushed_at"), time.time()), replay=True, first_seen_ok=self._disk_evicted > 0)
                        except (UnicodeDecodeError, json.JSONDecodeError, BadBatch):
                            continue  # a torn last line after a crash
                        segment.records += count
                        replayed += count
            except OSError as exc:
                log.warning("telemetry: cannot read %s: %s", path, exc)
                continue
            self.segments.append(segment)
        self.evicted += self._disk_evicted
        if replayed:
            log.info("telemetry: replayed %d records from %d segments", replayed, len(self.segments))
        if self.segments:
            self._file = open(self.segments[-1].path, "ab")  # noqa: SIM115

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    # -- queries ----------------------------------------------------------------

    def query(
        self,
        since: float | None = None,
        until: float | None = None,
        trace_id: str | None = None,
        node: str | None = None,
        limit: int | None = None,
        columns: list[str] | None = None,
    ) -> dict[str, Any]:
        """Records whose start is in [since, until), newest `limit` of them, oldest first, as columns + rows
        (only `columns`, when given: a table that needs eight columns need not fetch thirty)."""
        if columns:
            unknown = [c for c in columns if c not in COLUMNS]
            if unknown:
                raise BadBatch(f"unknown columns {', '.join(unknown)}; known: {', '.join(COLUMNS)}")
        picked: list[tuple[Any, ...]] = []
        cap = min(limit or MAX_QUERY_ROWS, MAX_QUERY_ROWS)
        for batch in reversed(self.batches):
            if since is not None and batch.max_start < since:
                continue
            if until is not None and batch.min_start >= until:
                continue
            for row in reversed(batch.rows):
                start = row[_START]
                if since is not None and (not isinstance(start, (int, float)) or start < since):
                    continue
                if until is not None and (not isinstance(start, (int, float)) or start >= until):
                    continue
                if trace_id is not None and row[_TRACE] != trace_id:
                    continue
                if node is not None and row[_NODE] != node:
                    continue
                picked.append(row)
            if len(picked) >= cap:
                break
        picked = picked[:cap]
        picked.reverse()
        if columns:
            index = [COLUMNS.index(c) for c in columns]
            return {"columns": list(columns), "rows": [[row[i] for i in index] for row in picked]}
        return {"columns": list(COLUMNS), "rows": picked}

    def status(self) -> dict[str, Any]:
        streams = sorted(self.streams.values(), key=lambda s: (s.node, s.started_at))
        return {
            "records": self.size,
            "capacity": self.capacity,
            "evicted": self.evicted,
            "persisted": self.directory is not None,
            "streams": [s.as_dict() for s in streams],
        }


def _number(value: Any, default: float) -> float:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else default


def _check(doc: Any) -> tuple[str, str, list[Any]]:
    if not isinstance(doc, dict):
        raise BadBatch("expected a JSON object with node, boot and records")
    node, boot, records = doc.get("node"), doc.get("boot"), doc.get("records")
    if not isinstance(node, str) or not node:
        raise BadBatch("field 'node' must be the node id (namespace/instance)")
    if not isinstance(boot, str) or not boot or len(boot) > 64:
        raise BadBatch("field 'boot' must be the sidecar's boot id")
    if not isinstance(records, list):
        raise BadBatch("field 'records' must be a list of records")
    return node, boot, records
