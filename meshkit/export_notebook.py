"""A notebook as a script that reproduces what the learner did, not just the code they ran.

`meshkit export-script notebooks/04-*.ipynb -o 04.py` writes the notebook in
jupytext's percent format (markdown kept as comments, runs with `python
04.py`) and puts the learner's widget moves back in: every apply a widget made
and every load run its Start button sent while no cell was running is
written, from the journal, as the `lab.apply(...)` / `lab.load(...)` it was,
right after the cell that ran before it. A cell that only displays a widget
(nothing but expressions) is replaced by those calls. The lesson's own checks
(cells tagged `lesson-check`) are left out when moves were put in: they check
the lesson's steps, which the learner's moves changed on purpose.

Which journal entries belong to the notebook: those made in its cells (by
cell id when the front end sends one, as JupyterLab does; by the cell's code
otherwise), from the last time its set-up cell started a fresh lab.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Mapping, Sequence
from datetime import date
from pathlib import Path
from typing import Any

import jupytext
import nbformat

from meshkit import journal
from meshkit.errors import LabError
from meshkit.export_script import action_code, action_comment, write

CHECK_TAG = "lesson-check"


def read_notebook(path: Path) -> nbformat.NotebookNode:
    if not path.is_file():
        raise LabError(f"no notebook at {path}")
    try:
        return jupytext.read(path)
    except Exception as exc:  # jupytext raises several kinds for a file that is not a notebook
        raise LabError(f"{path} is not a notebook jupytext can read: {exc}") from None


def cell_index(notebook: nbformat.NotebookNode) -> tuple[dict[str, int], dict[str, int]]:
    """Code cells by id and by the fingerprint of their code."""
    by_id: dict[str, int] = {}
    by_hash: dict[str, int] = {}
    for index, cell in enumerate(notebook.cells):
        if cell.cell_type == "code":
            if cell.get("id"):
                by_id[str(cell["id"])] = index
            by_hash.setdefault(journal.source_hash(cell.source), index)
    return by_id, by_hash


def where(entry: Mapping[str, Any], by_id: Mapping[str, int], by_hash: Mapping[str, int]) -> int | None:
    """The notebook cell an entry was made in (or after), or None when it is not this notebook's."""
    if entry.get("cell") and entry["cell"] in by_id:
        return by_id[entry["cell"]]
    if entry.get("cell_hash") in by_hash:
        return by_hash[entry["cell_hash"]]
    return None


def learner_moves(notebook: nbformat.NotebookNode, entries: Sequence[Mapping[str, Any]]) -> dict[int, list[Mapping[str, Any]]]:
    """cell index -> the widget moves and load runs made after that cell ran, in order."""
    by_id, by_hash = cell_index(notebook)
    mine = [(e, where(e, by_id, by_hash)) for e in entries]
    starts = [i for i, (e, cell) in enumerate(mine) if cell is not None and journal.is_fresh_start(e)]
    session = mine[starts[-1]:] if starts else mine
    moves: dict[int, list[Mapping[str, Any]]] = {}
    for entry, cell in session:
        if cell is None or entry.get("in_cell", True) or not journal.is_replayable(entry):
            continue
        if action_code(entry, loads_via="lab"):
            moves.setdefault(cell, []).append(entry)
    return moves


def only_displays(source: str) -> bool:
    """Whether a cell's code is nothing but expressions (showing a widget), so its moves can stand in for it."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return False
    return bool(tree.body) and all(isinstance(statement, ast.Expr) for statement in tree.body)


def moves_source(moves: Sequence[Mapping[str, Any]]) -> str:
    lines: list[str] = []
    for entry in moves:
        lines.append(action_comment(entry))
        lines += action_code(entry, loads_via="lab")
    return "\n".join(lines)


def with_moves(notebook: nbformat.NotebookNode, moves: Mapping[int, Sequence[Mapping[str, Any]]]) -> nbformat.NotebookNode:
    """A copy of the notebook with the learner's moves put in where they happened."""
    out = nbformat.v4.new_notebook(metadata=notebook.metadata)
    count = sum(len(m) for m in moves.values())
    if count:
        out.cells.append(nbformat.v4.new_markdown_cell(
            f"Exported on {date.today().isoformat()} with the learner's {count} widget change(s) and load run(s) "
            "from the lab's journal, each put right after the cell that ran before it. "
            "The lesson's own checks (for instructors) are left out: the moves changed what they check."))
    for index, cell in enumerate(notebook.cells):
        if count and CHECK_TAG in cell.get("metadata", {}).get("tags", []):
            continue
        made = moves.get(index)
        if not made:
            out.cells.append(cell)
            continue
        if only_displays(cell.source):
            shown = "\n".join(f"# {line}" for line in cell.source.splitlines())
            out.cells.append(nbformat.v4.new_code_cell(
                f"# The notebook showed a widget here:\n{shown}\n# What the learner did with it:\n{moves_source(made)}"))
        else:
            out.cells.append(cell)
            out.cells.append(nbformat.v4.new_code_cell(f"# The learner's moves after the cell above:\n{moves_source(made)}"))
    return out


def notebook_script(notebook: nbformat.NotebookNode, entries: Sequence[Mapping[str, Any]]) -> str:
    return str(jupytext.writes(with_moves(notebook, learner_moves(notebook, entries)), fmt="py:percent"))


def write_notebook_script(notebook_path: Path, source: journal.Journal, out: Path) -> Path:
    notebook = read_notebook(notebook_path)
    reading = source.read()
    text = notebook_script(notebook, reading.entries)
    for problem in reading.problems:
        print(f"meshkit: {problem}", file=sys.stderr)
    return write(out, text)
