"""How long each notebook takes the machine, run unattended, and which cells are slow.

Every notebook in notebooks/ runs headless with nbclient, as
tests/notebooks/test_notebooks.py runs it: its own lab home (MESHKIT_HOME) in
a temporary directory, MESHKIT_HEADLESS=1 (widgets degrade to static
figures and tables), quiz progress to a temporary MESHKIT_PROGRESS file (a
benchmark must not write a learner's progress), and the lab taken down
afterwards whatever happened. The wall time counts from the kernel's start to
the last cell's end; per-cell times are nbclient's own record (the cell's
execute_input to its execute_reply).

This is the machine's share of a lesson, the floor under a learner's time:
docs/instructor.md adds reading, predicting, widget experiments and the quiz.

Usage: python benchmarks/notebook_times.py [--only 04 07] [--out DIR] [--render]
Writes DIR/notebook_times.md and DIR/notebook_times.json (default benchmarks/results).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
NOTEBOOKS = ROOT / "notebooks"
sys.path.insert(0, str(HERE))

import nbformat  # noqa: E402
from machine import machine_facts  # noqa: E402
from nbclient import NotebookClient  # noqa: E402
from nbclient.exceptions import CellExecutionError  # noqa: E402

from meshkit.lab import Lab  # noqa: E402
from meshkit.progress import StatusLine  # noqa: E402

CELL_TIMEOUT_S = 300
"""One cell's limit: the test suite allows 180 s; a benchmark on a machine
shared with other work gets more before it calls a cell stuck."""
SLOW_CELLS_SHOWN = 5


def cell_seconds(cell: Any) -> float | None:
    """A code cell's run time from the timestamps nbclient records in its metadata."""
    timing = cell.get("metadata", {}).get("execution", {})
    start, end = timing.get("iopub.execute_input"), timing.get("shell.execute_reply")
    if not start or not end:
        return None
    parse = datetime.datetime.fromisoformat
    return (parse(end.replace("Z", "+00:00")) - parse(start.replace("Z", "+00:00"))).total_seconds()


def first_line(source: str) -> str:
    """What a reader recognises a cell by: its first line that is not a comment or an import, shortened."""
    lines = [line.strip() for line in source.splitlines() if line.strip()]
    code = [line for line in lines if not line.startswith(("#", "import ", "from "))] or lines or [""]
    text = code[0]
    return text if len(text) <= 70 else text[:67] + "..."


def escape_pipes(text: str) -> str:
    """A table cell's text with its pipes escaped, so markdown keeps the columns."""
    return text.replace("|", "\\|")


def run_notebook(path: Path) -> dict[str, Any]:
    """Run one notebook on a lab of its own; its wall time, cell times and any error."""
    with tempfile.TemporaryDirectory(prefix="meshkit-nbtime-") as scratch:
        home = Path(scratch) / "lab"
        saved = {name: os.environ.get(name) for name in ("MESHKIT_HOME", "MESHKIT_PROGRESS", "MESHKIT_HEADLESS")}
        os.environ["MESHKIT_HOME"] = str(home)
        os.environ["MESHKIT_PROGRESS"] = str(Path(scratch) / "progress.jsonl")
        os.environ["MESHKIT_HEADLESS"] = "1"
        notebook = nbformat.read(path, as_version=4)
        client = NotebookClient(
            notebook,
            timeout=CELL_TIMEOUT_S,
            kernel_name="python3",
            record_timing=True,
            resources={"metadata": {"path": str(path.parent)}},
        )
        load_before = os.getloadavg()[0]
        error = ""
        started = time.perf_counter()
        try:
            client.execute()
        except CellExecutionError as exc:
            error = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
        except Exception as exc:  # a timeout or a dead kernel: recorded, and the next notebook still runs
            error = f"{type(exc).__name__}: {exc}"
        wall = time.perf_counter() - started
        load_after = os.getloadavg()[0]
        try:
            Lab(home=home).down()
        finally:
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value
    cells = []
    for index, cell in enumerate(notebook.cells):
        if cell.cell_type != "code":
            continue
        seconds = cell_seconds(cell)
        if seconds is not None:
            cells.append({"index": index, "seconds": round(seconds, 2), "first_line": first_line(cell.source)})
    return {
        "notebook": path.stem,
        "wall_s": round(wall, 1),
        "cells_s": round(sum(c["seconds"] for c in cells), 1),
        "code_cells": sum(1 for c in notebook.cells if c.cell_type == "code"),
        "markdown_words": sum(len(c.source.split()) for c in notebook.cells if c.cell_type == "markdown"),
        "load_average_1m": {"before": round(load_before, 2), "after": round(load_after, 2)},
        "error": error,
        "cells": cells,
    }


def render(results: dict[str, Any]) -> str:
    """The markdown results file, from the recorded results (also used by --render)."""
    facts = results["machine"]
    machine = f"{facts['cpu']}, {facts['cores']} cores, {facts['memory_gb']} GiB, {facts['kernel']}, Python {facts['python']}"
    runs = results["notebooks"]
    lines = [
        "# Notebook run times (unattended)",
        "",
        "Written by `benchmarks/notebook_times.py`. Each notebook ran headless with nbclient on a lab of its own",
        "(its own MESHKIT_HOME, MESHKIT_HEADLESS=1), one after another, as `tests/notebooks` runs them.",
        "",
        f"Machine: {machine}",
        f"Date: {facts['date']}",
        "",
        "**A shared machine.** Other engineers' test suites ran on the same 2 cores during this run, so these",
        "times are upper bounds for a quiet machine of this size; the load average (1 min) beside each notebook",
        "says how busy the machine was (above 2 means work competed for the CPU). The wall time includes",
        "starting the kernel (about 1-2 s).",
        "",
        "This is the machine's share only. A learner reads, predicts, moves widgets and answers the quiz:",
        "`docs/instructor.md` gives the learner's time per notebook and how it was estimated.",
        "",
        "| notebook | wall (s) | in cells (s) | code cells | words of text | load before / after | result |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for run in runs:
        load = run["load_average_1m"]
        result = "ran" if not run["error"] else f"failed: {run['error'][:80]}"
        lines.append(
            f"| {run['notebook']} | {run['wall_s']:.0f} | {run['cells_s']:.0f} | {run['code_cells']} | {run['markdown_words']} "
            f"| {load['before']:.1f} / {load['after']:.1f} | {result} |"
        )
    total = sum(r["wall_s"] for r in runs)
    lines += ["", f"All {len(runs)} notebooks: {total / 60:.1f} minutes of machine time.", "", "## The slow cells", ""]
    lines.append(f"Per notebook, the {SLOW_CELLS_SHOWN} slowest code cells (cell number counts every cell from 0, markdown too).")
    lines.append("")
    for run in runs:
        slow = sorted(run["cells"], key=lambda c: -c["seconds"])[:SLOW_CELLS_SHOWN]
        lines += [f"### {run['notebook']}", "", "| cell | seconds | first line |", "| --- | --- | --- |"]
        lines += [f"| {c['index']} | {c['seconds']:.1f} | `{escape_pipes(c['first_line'])}` |" for c in slow]
        lines.append("")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", nargs="*", default=None, metavar="NN", help="only these notebooks, by number (04 07)")
    parser.add_argument("--out", type=Path, default=HERE / "results")
    parser.add_argument("--render", action="store_true", help="only rewrite notebook_times.md from the recorded JSON")
    args = parser.parse_args()
    if args.render:
        (args.out / "notebook_times.md").write_text(render(json.loads((args.out / "notebook_times.json").read_text())))
        return
    paths = sorted(NOTEBOOKS.glob("*.ipynb"))
    if args.only:
        paths = [p for p in paths if p.name[:2] in set(args.only)]
        if not paths:
            sys.exit(f"notebook_times: no notebook numbered {' '.join(args.only)} in notebooks/")
    status = StatusLine()
    runs = []
    for number, path in enumerate(paths, 1):
        status(f"notebook {number}/{len(paths)}: {path.stem}")
        runs.append(run_notebook(path))
        status.done()
        print(f"{path.stem}: {runs[-1]['wall_s']:.0f} s" + (f" (failed: {runs[-1]['error']})" if runs[-1]["error"] else ""))
    results = {"machine": machine_facts(None, None), "notebooks": runs}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "notebook_times.json").write_text(json.dumps(results, indent=1) + "\n")
    (args.out / "notebook_times.md").write_text(render(results))
    print(render(results))


if __name__ == "__main__":
    main()
