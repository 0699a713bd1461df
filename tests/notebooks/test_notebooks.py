"""Every notebook runs top to bottom on a fresh kernel, as a learner would.

Each notebook gets its own lab directory (MESHKIT_HOME, which the kernel
inherits from this process's environment) so notebooks never
share a lab with each other or with a developer's own ~/.meshkit; whatever a
notebook leaves running is stopped afterwards.
"""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from meshkit.lab import Lab

NOTEBOOKS = sorted((Path(__file__).resolve().parents[2] / "notebooks").glob("*.ipynb"))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs_top_to_bottom(path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "lab"
    monkeypatch.setenv("MESHKIT_HOME", str(home))
    monkeypatch.setenv("MESHKIT_PROGRESS", str(tmp_path / "progress.jsonl"))  # a learner's progress is not the test's to write
    # Headless on purpose: a kernel started from inside a live Jupyter
    # session would otherwise inherit its JPY_SESSION_NAME and think it is live.
    monkeypatch.setenv("MESHKIT_HEADLESS", "1")
    notebook = nbformat.read(path, as_version=4)
    client = NotebookClient(
        notebook,
        timeout=180,
        kernel_name="python3",
        resources={"metadata": {"path": str(path.parent)}},
    )
    try:
        client.execute()
    finally:
        Lab(home=home).down()
    errors = [o for c in notebook.cells if c.cell_type == "code" for o in c.get("outputs", []) if o.output_type == "error"]
    assert not errors


def test_notebooks_are_committed_without_outputs() -> None:
    """Outputs belong to the learner's run, not to the repository."""
    for path in NOTEBOOKS:
        notebook = nbformat.read(path, as_version=4)
        for cell in notebook.cells:
            if cell.cell_type == "code":
                assert not cell.outputs, f"{path.name} has committed outputs"
