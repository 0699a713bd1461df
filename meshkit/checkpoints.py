"""Where lab states are kept: a home's checkpoints and the notebooks' start states.

A checkpoint is `<lab home>/checkpoints/<name>.yaml`, outside everything
`down` and `reset` remove, so a learner's checkpoints outlive the lab they
were taken from. A notebook's start state is package data,
meshkit/start_states/NN.yaml, in the same format (meshkit.state's docstring
shows it): the lab right after the notebook's set-up cells, which
tests/notebooks/test_notebooks.py checks against the notebook itself.

Files are YAML so a reader (or an instructor preparing a room) can open one
and see the lab it describes; they are read through `state.check`, so a file
edited by hand is refused with the field that is wrong.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from meshkit import state
from meshkit.errors import LabError
from meshkit.files import write_atomic

DIR_NAME = "checkpoints"
SUFFIX = ".yaml"
START_STATES = Path(__file__).resolve().parent / "start_states"
COLUMNS = ["name", "saved_at", "apps", "sidecars", "resources", "cert_lifetime"]


def folder(home: Path) -> Path:
    return home / DIR_NAME


def names(home: Path) -> list[str]:
    """The checkpoints saved in this home, by name."""
    return sorted(p.name[: -len(SUFFIX)] for p in folder(home).glob(f"*{SUFFIX}")) if folder(home).is_dir() else []


def save(home: Path, name: str, desired: Mapping[str, Any], now: datetime | None = None) -> Path:
    """Write a checkpoint (replacing one of the same name) and return its path."""
    state.check_name(name)
    when = (now or datetime.now(timezone.utc)).isoformat(timespec="seconds")
    document = {"meshkit_state": state.FORMAT, "name": name, "saved_at": when, **state.desired(desired)}
    path = folder(home) / f"{name}{SUFFIX}"
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, dump(document).encode())
    return path


def dump(document: Mapping[str, Any]) -> str:
    return yaml.safe_dump(dict(document), sort_keys=False, default_flow_style=False, allow_unicode=True)


def load(home: Path, name: str) -> dict[str, Any]:
    """A checkpoint's state (checked), or one line naming it and the ones there are."""
    state.check_name(name)
    path = folder(home) / f"{name}{SUFFIX}"
    if not path.is_file():
        raise LabError(f"no checkpoint {name!r} in this lab (checkpoints: {', '.join(names(home)) or 'none yet; save one with lab.checkpoint(name)'})")
    return read(path, f"checkpoint {name!r}")


def read(path: Path, source: str) -> dict[str, Any]:
    """A state file, checked: `source` names it in the error."""
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise LabError(f"{source}: cannot read {path.name}: {exc}") from None
    except yaml.YAMLError as exc:
        raise LabError(f"{source}: {path.name} is not YAML: {str(exc).splitlines()[0]}") from None
    checked = state.check(document, source)
    if isinstance(document, Mapping):
        checked["saved_at"] = document.get("saved_at")
    return checked


def table(home: Path) -> pd.DataFrame:
    """One row per checkpoint: name, saved_at, apps, sidecars, resources, cert_lifetime.
    A file that cannot be read is left out and named in `attrs["problems"]`."""
    rows, problems = [], []
    for name in names(home):
        try:
            found = load(home, name)
        except LabError as exc:
            problems.append(str(exc))
            continue
        saved = pd.Timestamp(found["saved_at"]) if found.get("saved_at") else pd.NaT
        rows.append({"name": name, "saved_at": saved, **state.overview(found)})
    frame = pd.DataFrame(rows, columns=COLUMNS)
    frame.attrs["problems"] = problems
    return frame


# -- the notebooks' start states -------------------------------------------------------------


def notebooks() -> list[str]:
    """The notebooks with a declared start state: "00", "01", ..."""
    return sorted(p.stem for p in START_STATES.glob(f"*{SUFFIX}"))


def notebook_id(notebook: int | str) -> str:
    """"07" from 7, "7", "07" or "07-circuit-breaking"; one line listing the valid ones otherwise."""
    text = str(notebook).strip()
    match = re.fullmatch(r"(\d{1,2})(-.*)?", text) if not isinstance(notebook, bool) else None
    found = f"{int(match.group(1)):02d}" if match else None
    if found not in notebooks():
        raise LabError(f"no notebook {text!r} to catch up to: notebooks are {', '.join(notebooks())}")
    assert found is not None
    return found


def start_state(notebook: int | str) -> dict[str, Any]:
    """Notebook NN's declared start state, checked."""
    found = notebook_id(notebook)
    return read(START_STATES / f"{found}{SUFFIX}", f"start state of notebook {found}")
