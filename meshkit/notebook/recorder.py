"""A bounded, thread-safe store of request rows that every chart reads.

Load runs add rows from the Lab's loop thread while the charts read them from
a refresh thread and the learner reads them from the kernel: one lock guards
a deque, and readers get a copy as a DataFrame. The deque is bounded so a
load left running all afternoon cannot fill the kernel's memory; the oldest
rows go first, and `dropped` says how many went.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Iterable, Sequence
from typing import NamedTuple

import pandas as pd

from meshkit.loadgen import Result

DEFAULT_MAX_ROWS = 200_000
"""About 30 minutes at 100 requests per second, a few tens of MB as a frame."""


class Row(NamedTuple):
    """One request: when it was meant to be sent (epoch seconds) and what came back."""

    at: float
    latency_ms: float
    code: int
    flags: str
    version: str
    error: str
    target: str
    run: int


COLUMNS = list(Row._fields)
DTYPES = {"at": "float64", "latency_ms": "float64", "code": "int64", "flags": "str", "version": "str",
          "error": "str", "target": "str", "run": "int64"}


def wall_offset() -> float:
    """Seconds to add to a perf_counter() reading to get epoch seconds (sampled now)."""
    return time.time() - time.perf_counter()


def rows_from_results(results: Sequence[Result], *, target: str, run: int, offset: float) -> list[Row]:
    """Rows for load generator results, with epoch times; latency counts from
    the intended send (meshkit.loadgen's open-loop rule)."""
    return [
        Row(
            at=r.intended_at + offset,
            latency_ms=(r.done_at - r.intended_at) * 1000.0,
            code=r.code,
            flags=r.flags,
            version=r.version,
            error=r.error,
            target=target,
            run=run,
        )
        for r in results
    ]


def rows_from_frame(frame: pd.DataFrame, *, target: str, run: int, started_at: float) -> list[Row]:
    """Rows for a lab.load() table, whose times count from its first intended send at `started_at` (epoch s)."""
    return [
        Row(started_at + float(t), float(lat), int(code), str(flags), str(version), str(error), target, run)
        for t, lat, code, flags, version, error in zip(
            frame["intended_at"], frame["latency_ms"], frame["code"], frame["flags"], frame["version"], frame["error"],
            strict=True,
        )
    ]


class Recorder:
    """The shared store: `add` from any thread, `frame` for a snapshot."""

    def __init__(self, max_rows: int = DEFAULT_MAX_ROWS) -> None:
        if max_rows < 1:
            raise ValueError(f"max_rows must be at least 1, not {max_rows}")
        self.max_rows = max_rows
        self._rows: deque[Row] = deque(maxlen=max_rows)
        self._lock = threading.Lock()
        self._changes = 0
        self._dropped = 0
        self._next_run = 0

    def add(self, rows: Iterable[Row]) -> int:
        """Store rows (the oldest fall out past max_rows); returns how many were added."""
        batch = list(rows)
        with self._lock:
            overflow = max(0, len(self._rows) + len(batch) - self.max_rows)
            self._rows.extend(batch)
            self._dropped += overflow
            if batch:
                self._changes += 1
        return len(batch)

    def new_run(self) -> int:
        """A fresh run number, so rows of concurrent runs can be told apart."""
        with self._lock:
            self._next_run += 1
            return self._next_run

    def frame(self, target: str | None = None, since: float | None = None) -> pd.DataFrame:
        """A copy of the rows (optionally of one target, or intended after `since`), oldest first."""
        with self._lock:
            rows = list(self._rows)
        if target is not None:
            rows = [r for r in rows if r.target == target]
        if since is not None:
            rows = [r for r in rows if r.at > since]
        rows.sort(key=lambda r: r.at)
        return pd.DataFrame(rows, columns=COLUMNS).astype(DTYPES)

    def clear(self) -> None:
        with self._lock:
            self._rows.clear()
            self._changes += 1

    @property
    def changes(self) -> int:
        """Bumped by every add or clear: a chart redraws only when it moved."""
        return self._changes

    @property
    def dropped(self) -> int:
        """Rows pushed out by the bound since this recorder was made."""
        return self._dropped

    def __len__(self) -> int:
        with self._lock:
            return len(self._rows)
