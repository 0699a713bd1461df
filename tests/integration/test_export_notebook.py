"""Notebook 04 run in a real kernel with slider moves, exported, and run as `python 04.py`.

The moves go the way a browser sends them: comm messages to the kernel
(ipywidgets' "update" and a button's "click"), between cell runs, so the
journal sees them as the learner's, not as the notebook's code.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import nbformat
import pytest
from nbclient import NotebookClient

from meshkit.export_notebook import CHECK_TAG
from meshkit.lab import Lab

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK = ROOT / "notebooks" / "04-traffic-shifting-and-canary-releases.ipynb"


def send(client: NotebookClient, model_id: str, data: dict[str, Any]) -> None:
    """What a browser sends when the learner moves a control."""
    message = client.kc.session.msg("comm_msg", {"comm_id": model_id, "data": data})
    client.kc.shell_channel.send(message)


def control(client: NotebookClient, model: str, description: str, among: set[str]) -> str:
    """The model id of the one control of this kind and label among the given widgets."""
    found = [mid for mid in among
             if client.widget_state.get(mid, {}).get("_model_name") == model
             and client.widget_state[mid].get("description") == description]
    assert len(found) == 1, f"expected one {model} {description!r}, found {found}"
    return found[0]


def wait_for_entry(home: Path, count: int, timeout: float = 60.0) -> list[dict[str, Any]]:
    """Block until the journal holds `count` entries made by widgets between cells."""
    deadline = time.monotonic() + timeout
    while True:
        lines = (home / "journal.jsonl").read_text().splitlines()
        moves = [e for e in map(json.loads, lines) if e.get("widget") and e.get("in_cell") is False]
        if len(moves) >= count or time.monotonic() > deadline:
            return moves
        time.sleep(0.2)


def test_notebook_04_with_slider_moves_exports_as_a_script_that_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "lab"
    monkeypatch.setenv("MESHKIT_HOME", str(home))
    monkeypatch.setenv("MESHKIT_PROGRESS", str(tmp_path / "progress.jsonl"))
    monkeypatch.setenv("MESHKIT_HEADLESS", "1")
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    client = NotebookClient(notebook, timeout=180, kernel_name="python3",
                            resources={"metadata": {"path": str(NOTEBOOK.parent)}})
    try:
        with client.setup_kernel():
            for index, cell in enumerate(notebook.cells):
                if cell.cell_type != "code" or CHECK_TAG in cell.metadata.get("tags", []):
                    continue
                before = set(client.widget_state)
                client.execute_cell(cell, index)
                if 'split = SplitWidget(lab, "reviews")' in cell.source:
                    send(client, control(client, "IntSliderModel", "v3", set(client.widget_state) - before),
                         {"method": "update", "state": {"value": 40}, "buffer_paths": []})
                    assert len(wait_for_entry(home, 1)) == 1
                if "board = dashboard(" in cell.source:
                    board_widgets = set(client.widget_state) - before
                if "board.run_load(" in cell.source:
                    send(client, control(client, "IntSliderModel", "v3", board_widgets), {"method": "update", "state": {"value": 25},
                                                                      "buffer_paths": []})
                    assert len(wait_for_entry(home, 2)) == 2
                    send(client, control(client, "ButtonModel", "Start load", board_widgets),
                         {"method": "custom", "content": {"event": "click"}})
                    moves = wait_for_entry(home, 3)
                    assert [m["action"] for m in moves] == ["apply", "apply", "load"], moves
    finally:
        Lab(home=home).down()

    script = tmp_path / "04.py"
    done = subprocess.run([sys.executable, "-m", "meshkit.cli", "export-script", str(NOTEBOOK), "-o", str(script)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    text = script.read_text()
    assert text.startswith("# ---\n# jupyter:") and "# %% [markdown]\n# # 04 · Traffic shifting" in text
    split_cell = text.index('split = SplitWidget(lab, "reviews")')
    first_move = text.index("# The learner's moves after the cell above:")
    assert split_cell < first_move < text.index('quiz.predict("04-predict-canary")')
    assert "weight: 40" in text[first_move:first_move + 1500]
    board_move = text.index("# The learner's moves after the cell above:", first_move + 1)
    assert text.index("board.run_load(") < board_move
    assert "weight: 25" in text[board_move:] and "lab.load('reviews', " in text[board_move:]
    assert "All checks passed" not in text, "the lesson's checks are left out once the learner moved things"

    fresh = tmp_path / "fresh"
    env = {**os.environ, "MESHKIT_HOME": str(fresh)}
    try:
        ran = subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=env, capture_output=True, text=True,
                             timeout=600)
        assert ran.returncode == 0, ran.stderr[-3000:]
        replayed = Lab(home=fresh).get("VirtualService", "reviews")
    finally:
        Lab(home=fresh).down()
    weights = {r["destination"]["subset"]: r.get("weight", 0) for r in replayed["spec"]["http"][-1]["route"]}
    assert weights.get("v3") == 25, f"the script ends where the learner's last move left the lab, not at {weights}"
