"""The experiment journal: what was done to a lab, in order, as JSON lines.

Every Lab action that changes the lab or measures it appends one line to
`<lab home>/journal.jsonl`: up, reset, deploy, undeploy, inject, uninject,
apply (the resources as applied), delete, rotate_root, load (its arguments
and a summary of what came back), and the marks of higher-level actions
(checkpoint, restore, catch_up). A learner can then say what they did
(`lab.journal()`, `meshkit journal`) and hand it on as a script
(meshkit.export_script).

The journal is kept outside the lab's running state, so `down` and `reset`
keep it: it is the history of the home, and a replay starts from its last
fresh start. A refused action is written with `ok: false` and its error, so
the learner sees it, but it is not part of the replayable history.

Who made a change matters to a reader: a widget's apply carries the widget's
name (set with `acting_widget`), and inside a Jupyter kernel every entry
carries the notebook cell that ran last (IPython's pre/post_run_cell events),
so a notebook's export can put a slider move where it happened.
"""

from __future__ import annotations

import contextlib
import contextvars
import hashlib
import json
import math
import os
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from meshkit.errors import LabError

FILE_NAME = "journal.jsonl"
FRESH_STARTS = ("reset", "up")
"""Actions after which the lab is empty (an `up` only when it started a new lab)."""

_widget: contextvars.ContextVar[str | None] = contextvars.ContextVar("meshkit_journal_widget", default=None)


@contextlib.contextmanager
def acting_widget(name: str) -> Iterator[None]:
    """Journal the Lab actions inside this block as made by the widget `name`."""
    token = _widget.set(name)
    try:
        yield
    finally:
        _widget.reset(token)


# -- notebook cells --------------------------------------------------------------


@dataclass
class _Cells:
    """The cell that runs now or ran last in this kernel, from IPython's events."""

    id: str | None = None
    source_hash: str | None = None
    running: bool = False
    watching: bool = False


_CELLS = _Cells()


def source_hash(source: str) -> str:
    """A short fingerprint of a cell's code: the cell's identity when the
    front end sends no cell id (nbclient does not)."""
    return hashlib.sha256(source.strip().encode()).hexdigest()[:12]


def watch_cells() -> None:
    """Follow cell runs when running inside IPython; a no-op elsewhere."""
    if _CELLS.watching:
        return
    try:
        from IPython import get_ipython
    except ImportError:
        return
    shell = get_ipython()
    if shell is None:
        return

    def pre_run(info: Any) -> None:
        _CELLS.id = getattr(info, "cell_id", None)
        _CELLS.source_hash = source_hash(getattr(info, "raw_cell", "") or "")
        _CELLS.running = True

    def post_run(_result: Any) -> None:
        _CELLS.running = False

    shell.events.register("pre_run_cell", pre_run)
    shell.events.register("post_run_cell", post_run)
    _CELLS.watching = True


def origin() -> dict[str, Any]:
    """Where an action comes from: the acting widget, the notebook cell, whether a cell was running."""
    found: dict[str, Any] = {}
    widget = _widget.get()
    if widget:
        found["widget"] = widget
    if _CELLS.watching and _CELLS.source_hash is not None:
        found["cell"] = _CELLS.id
        found["cell_hash"] = _CELLS.source_hash
        found["in_cell"] = _CELLS.running
    return found


# -- the file -----------------------------------------------------------------------


@dataclass(frozen=True)
class Reading:
    """A journal as read: its entries, and the lines that could not be read (skipped)."""

    entries: list[dict[str, Any]]
    problems: list[str] = field(default_factory=list)


class Journal:
    """One lab home's journal file. Appends are single writes in append mode,
    so two processes journaling at once (a notebook and the CLI) never tear a line."""

    def __init__(self, home: Path) -> None:
        self.path = home / FILE_NAME

    def record(self, action: str, **fields: Any) -> dict[str, Any]:
        entry = {"at": round(time.time(), 3), "action": action, **fields}
        line = json.dumps(entry, default=_jsonable, separators=(",", ":")) + "\n"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, line.encode())
        finally:
            os.close(fd)
        return entry

    def read(self) -> Reading:
        try:
            text = self.path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return Reading([])
        return parse(text, self.path.name)


def parse(text: str, name: str = FILE_NAME) -> Reading:
    """Entries from journal text; a line that is not an entry is skipped and named."""
    entries: list[dict[str, Any]] = []
    problems: list[str] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
        except ValueError as exc:
            problems.append(f"{name} line {number}: not JSON ({exc.msg}); skipped")
            continue
        if not isinstance(entry, dict) or not isinstance(entry.get("action"), str) or not isinstance(entry.get("at"), int | float):
            problems.append(f"{name} line {number}: not a journal entry (needs 'at' and 'action'); skipped")
            continue
        entries.append(entry)
    return Reading(entries, problems)


def _jsonable(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, tuple | set | frozenset):
        return list(value)
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    raise TypeError(f"cannot journal a {type(value).__name__}")


# -- slices -----------------------------------------------------------------------


def session(entries: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """The entries since the last fresh start (a reset, or an up that started a new lab):
    what the lab running now was built from."""
    start = 0
    for index, entry in enumerate(entries):
        if is_fresh_start(entry):
            start = index
    return list(entries[start:])


def is_fresh_start(entry: Mapping[str, Any]) -> bool:
    return entry.get("ok", True) and (entry["action"] == "reset" or (entry["action"] == "up" and bool(entry.get("fresh"))))


def choose(
    entries: Sequence[Mapping[str, Any]],
    *,
    since: float | None = None,
    checkpoint: str | None = None,
    last: int | None = None,
) -> tuple[list[Mapping[str, Any]], list[Mapping[str, Any]]]:
    """Split the current session into (before, chosen): the slice a script replays,
    and what came before it (from which the script rebuilds the lab it starts on).

    At most one of `since` (epoch seconds), `checkpoint` (after the last mark of
    that checkpoint) and `last` (the last N replayable actions) is given; none
    means the whole session."""
    if sum(x is not None for x in (since, checkpoint, last)) > 1:
        raise LabError("choose one of since, checkpoint and last, not several")
    current = session(entries)
    if since is not None:
        cut = next((i for i, e in enumerate(current) if e["at"] >= since), len(current))
    elif checkpoint is not None:
        marks = [i for i, e in enumerate(current) if e["action"] == "checkpoint" and e.get("name") == checkpoint]
        if not marks:
            names = sorted({str(e.get("name")) for e in current if e["action"] == "checkpoint"})
            raise LabError(
                f"no checkpoint {checkpoint!r} in this lab's journal since its last fresh start "
                f"(checkpoints there: {', '.join(names) or 'none'})"
            )
        cut = marks[-1] + 1
    elif last is not None:
        if last < 1:
            raise LabError(f"last must be at least 1, got {last}")
        replayable = [i for i, e in enumerate(current) if is_replayable(e)]
        cut = replayable[-last] if len(replayable) >= last else 0
    else:
        cut = 0
    return current[:cut], current[cut:]


REPLAYED = frozenset({"deploy", "undeploy", "inject", "uninject", "apply", "delete", "rotate_root", "load"})


def is_replayable(entry: Mapping[str, Any]) -> bool:
    """An action a script repeats: it succeeded and it changes or measures the lab
    (not up or reset: a script starts on a fresh lab of its own)."""
    return bool(entry.get("ok", True)) and entry["action"] in REPLAYED


# -- summaries -----------------------------------------------------------------------


def load_summary(frame: pd.DataFrame) -> dict[str, Any]:
    """What a load run measured, small enough for a journal line: requests,
    status codes, p50/p90/p99 latency (ms) and each version's share of the answered."""
    count = len(frame)
    codes = {str(code): int(n) for code, n in frame["code"].value_counts().sort_index().items()} if count else {}
    answered = frame[frame["code"] > 0] if count else frame
    latency = answered["latency_ms"] if len(answered) else pd.Series(dtype=float)
    versions = answered["version"].fillna("").replace("", "?") if len(answered) else pd.Series(dtype=str)
    shares = {str(v): round(int(n) / len(answered), 4) for v, n in versions.value_counts().sort_index().items()} if len(answered) else {}
    ok = int(((frame["code"] >= 200) & (frame["code"] < 400)).sum()) if count else 0
    return {
        "count": count,
        "answered": int(len(answered)),
        "success": round(ok / count, 4) if count else None,
        "codes": codes,
        "p50_ms": _quantile(latency, 0.5),
        "p90_ms": _quantile(latency, 0.9),
        "p99_ms": _quantile(latency, 0.99),
        "shares": shares,
    }


def _quantile(values: pd.Series, q: float) -> float | None:
    if values.empty:
        return None
    found = float(values.quantile(q))
    return None if math.isnan(found) else round(found, 2)


# -- reading it -------------------------------------------------------------------------

COLUMNS = ["time", "action", "what", "version", "ok", "widget", "cell"]


def describe(entry: Mapping[str, Any]) -> str:
    """One line a reader understands: what the action did (or why it was refused)."""
    action = entry["action"]
    if action == "apply":
        what = ", ".join(f"{r.get('kind')} {r.get('metadata', {}).get('name')}" for r in entry.get("resources", [])) or "nothing"
    elif action == "delete":
        what = f"{entry.get('kind')} {entry.get('namespace')}/{entry.get('name')}"
    elif action == "deploy":
        what = f"{entry.get('app')} in {entry.get('namespace')}" + (" with sidecars" if entry.get("inject") else "")
    elif action in ("inject", "uninject", "undeploy"):
        what = str(entry.get("target") or entry.get("app") or "")
    elif action == "load":
        what = _describe_load(entry)
    elif action == "up":
        what = "a new lab" if entry.get("fresh") else "reattached to the running lab"
    elif action in ("checkpoint", "restore"):
        what = str(entry.get("name", ""))
    elif action == "catch_up":
        what = f"notebook {entry.get('notebook', '')}"
    elif action == "note":
        what = str(entry.get("text", ""))
    else:
        what = ""
    if not entry.get("ok", True):
        what = f"REFUSED: {entry.get('error', '')}" if what in ("", "nothing") else f"{what}: REFUSED: {entry.get('error', '')}"
    return what


def _describe_load(entry: Mapping[str, Any]) -> str:
    args = entry.get("args", {})
    summary = entry.get("summary", {})
    target = f"{args.get('service')}{args.get('path', '/')}"
    shares = ", ".join(f"{v} {s:.0%}" for v, s in summary.get("shares", {}).items())
    p50 = summary.get("p50_ms")
    latency = f", p50 {p50:.1f} ms" if isinstance(p50, int | float) else ""
    success = summary.get("success")
    rate = f", {success:.0%} ok" if isinstance(success, int | float) else ""
    return f"{summary.get('count', 0)} requests to {target}{rate}{latency}" + (f" ({shares})" if shares else "")


def frame(entries: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """The journal as a table, one row per action, oldest first."""
    rows = [
        {
            "time": pd.Timestamp(e["at"], unit="s"),
            "action": e["action"],
            "what": describe(e),
            "version": e.get("version"),
            "ok": bool(e.get("ok", True)),
            "widget": e.get("widget") or "",
            "cell": e.get("cell") or e.get("cell_hash") or "",
        }
        for e in entries
    ]
    return pd.DataFrame(rows, columns=COLUMNS)
