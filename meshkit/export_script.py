"""An experiment as a plain Python script: the journal, written as the calls it records.

`lab.export_script("canary.py")` and `meshkit export-script -o canary.py`
turn the journal's current session (or a slice of it) into a script a
colleague can read, edit and run with `python canary.py`: the same config in
the same order, as YAML literals; the same load runs, each compared with the
original's measurements (meshkit.replay). A widget's change is the apply it
made, with a comment naming the widget. Everything here is text from journal
entries; the only I/O is reading the journal and writing the file.
"""

from __future__ import annotations

import inspect
import sys
import time
from collections.abc import Mapping, Sequence
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from meshkit import journal
from meshkit.backends.local import spec_from_dict
from meshkit.errors import LabError
from meshkit.lab import Lab

INDENT = "    "
STRUCTURAL = ("deploy", "undeploy", "inject", "uninject")
"""What builds the lab a slice starts from (with the resources it had then)."""


# -- one action as code ----------------------------------------------------------------


def yaml_text(resources: Sequence[Mapping[str, Any]]) -> str:
    """Resources as the YAML a reader would write: one document each, keys in their order."""
    return "---\n".join(yaml.safe_dump(dict(r), sort_keys=False, default_flow_style=False) for r in resources)


def yaml_literal(resources: Sequence[Mapping[str, Any]]) -> str:
    """A Python literal holding the YAML: a triple-quoted block when that is safe, else repr."""
    text = yaml_text(resources)
    if '"""' in text or "\\" in text:
        return repr(text)
    return '"""\n' + text + '"""'


def _args(call: str, positional: Sequence[Any], keywords: Mapping[str, Any]) -> str:
    parts = [repr(p) for p in positional] + [f"{k}={v!r}" for k, v in keywords.items()]
    return f"{call}({', '.join(parts)})"


LOAD_DEFAULTS = {
    name: p.default for name, p in inspect.signature(Lab.load).parameters.items() if p.default is not inspect.Parameter.empty
}
"""lab.load's defaults: a script spells out only what a run changed."""


def load_keywords(args: Mapping[str, Any]) -> dict[str, Any]:
    """The keyword arguments of a journalled load that differ from lab.load's defaults."""
    keywords: dict[str, Any] = {}
    for name, value in args.items():
        if name in ("service", "path") or name not in LOAD_DEFAULTS:
            continue
        default = LOAD_DEFAULTS[name]
        if name == "headers" and not value:
            continue
        if name == "duration" and args.get("requests"):
            continue
        if value != default:
            keywords[name] = value
    return keywords


def original_summary(summary: Mapping[str, Any]) -> dict[str, Any]:
    """The measurements a replay compares with (the journal's summary, minus what it does not compare)."""
    keep = ("count", "answered", "success", "p50_ms", "p90_ms", "p99_ms", "shares")
    return {k: summary[k] for k in keep if k in summary}


def action_code(entry: Mapping[str, Any], loads_via: str = "replay") -> list[str]:
    """The statements that repeat one journalled action ([] for one nothing repeats).

    `loads_via` is "replay" (compare with the original, in an exported
    experiment) or "lab" (a plain lab.load, in an exported notebook)."""
    action = entry["action"]
    if action == "deploy":
        keywords = {k: entry[k] for k in ("namespace",) if entry.get(k) not in (None, "default")}
        if entry.get("inject"):
            keywords["inject"] = True
        if entry.get("specs"):
            specs = ",\n".join(f"{INDENT}{spec_from_dict(s)!r}" for s in entry["specs"])
            extra = "".join(f", {k}={v!r}" for k, v in keywords.items())
            return [f"lab.deploy([\n{specs},\n]{extra})"]
        return [_args("lab.deploy", [entry["app"]], keywords)]
    if action == "undeploy":
        return [_args("lab.undeploy", [entry["app"]], {})]
    if action in ("inject", "uninject"):
        target = entry.get("target")
        return [_args(f"lab.{action}", [target] if target else [], {})]
    if action == "apply":
        return [f"lab.apply({yaml_literal(entry.get('resources', []))})"]
    if action == "delete":
        keywords = {"namespace": entry["namespace"]} if entry.get("namespace") not in (None, "default") else {}
        return [_args("lab.delete", [entry["kind"], entry["name"]], keywords)]
    if action == "rotate_root":
        return ["lab.rotate_root()"]
    if action == "load":
        args = entry.get("args", {})
        keywords = load_keywords(args)
        if loads_via == "lab":
            return [_args("lab.load", [args["service"], args.get("path", "/")], keywords)]
        call = _args("replay.load", [args["service"], args.get("path", "/")], keywords)
        return [f"{call[:-1]},\n{INDENT * 2}original={original_summary(entry.get('summary', {}))!r})"]
    return []


def clock(at: float) -> str:
    return datetime.fromtimestamp(at).strftime("%H:%M:%S")


def action_comment(entry: Mapping[str, Any]) -> str:
    """The comment over an action: when, who (a widget), what it was."""
    what = f"{entry['action']} {journal.describe(entry)}".rstrip()
    if entry.get("widget"):
        return f"# {clock(entry['at'])} made with the widget {entry['widget']}: {what}"
    return f"# {clock(entry['at'])} {what}"


# -- the whole script ---------------------------------------------------------------------


def starting_point(before: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """The actions that rebuild the lab as it was where a slice begins: its deploys and
    injections in order, then one apply of the resources it held then."""
    steps: list[Mapping[str, Any]] = []
    resources: dict[tuple[str, str, str], Mapping[str, Any]] = {}
    for entry in before:
        if not journal.is_replayable(entry):
            continue
        action = entry["action"]
        if action in STRUCTURAL:
            steps.append(entry)
        elif action == "apply":
            for resource in entry.get("resources", []):
                meta = resource.get("metadata", {})
                resources[(resource["kind"], meta.get("namespace", "default"), meta["name"])] = resource
        elif action == "delete":
            resources.pop((entry["kind"], entry.get("namespace", "default"), entry["name"]), None)
    if resources:
        steps.append({"action": "apply", "at": before[-1]["at"], "resources": list(resources.values())})
    return steps


def script_text(
    before: Sequence[Mapping[str, Any]],
    chosen: Sequence[Mapping[str, Any]],
    *,
    name: str,
    problems: Sequence[str] = (),
) -> str:
    """The script, as text."""
    replayed = [e for e in chosen if journal.is_replayable(e) and action_code(e)]
    lifetime = next((e.get("cert_lifetime_s") for e in reversed([*before, *chosen]) if e.get("cert_lifetime_s")), None)
    first = chosen[0]["at"] if chosen else time.time()
    last = chosen[-1]["at"] if chosen else first
    day = date.fromtimestamp(first).isoformat()
    loads = sum(e["action"] == "load" for e in replayed)
    lines = [
        f'"""{name}: an experiment replayed from a meshkit lab\'s journal.',
        "",
        f"Recorded on {day} from {clock(first)} to {clock(last)}: {len(replayed)} actions, {loads} of them load runs.",
        "Run it with `python " + name + ".py` (meshkit installed). It starts a lab of its own in a",
        "temporary directory (your own lab is not touched), repeats every action in order, prints each",
        "measurement next to the original one, writes the results to " + f"{name}-results/" + " and stops the lab.",
        "Edit the YAML below to try a variant.",
    ]
    if problems:
        lines += ["", "Lines of the journal that could not be read were left out:"] + [f"  {p}" for p in problems]
    lines += ['"""', "", "from meshkit.replay import Replay"]
    if any(e.get("specs") for e in [*before, *chosen]):
        lines.append("from meshkit.demo.apps import Call, Latency, WorkloadSpec")
    lifetime_arg = f", cert_lifetime={lifetime!r}" if lifetime else ""
    lines += ["", f"with Replay({name + '-results'!r}{lifetime_arg}) as replay:", f"{INDENT}lab = replay.lab"]
    start = starting_point(before)
    if start:
        lines += ["", f"{INDENT}# The lab as it was at {clock(before[-1]['at'])}, where this slice begins."]
        for entry in start:
            lines += _indented(action_code(entry))
    for entry in chosen:
        code = action_code(entry) if journal.is_replayable(entry) else []
        if code:
            lines += ["", INDENT + action_comment(entry)]
            lines += _indented(code)
        elif not entry.get("ok", True):
            lines += ["", INDENT + f"# {clock(entry['at'])} {entry['action']} not repeated, it was {journal.describe(entry)}"]
        elif entry["action"] == "note":
            lines += ["", INDENT + f"# {clock(entry['at'])} note: {entry.get('text', '')}"]
        elif entry["action"] in ("checkpoint", "restore", "catch_up"):
            lines += ["", INDENT + f"# {clock(entry['at'])} {entry['action']} {journal.describe(entry)} (done by the steps above)"]
    return "\n".join(lines) + "\n"


def _indented(code: Sequence[str]) -> list[str]:
    """Statements inside the `with` block; a YAML literal's own lines stay as they are."""
    return [INDENT + statement for statement in code]


def epoch(since: Any) -> float | None:
    """`since` as epoch seconds: a number, a datetime, or text pandas reads as a time ("20:05", "2026-12-04 20:05")."""
    if since is None or isinstance(since, int | float):
        return since
    if isinstance(since, datetime):
        return since.timestamp()
    try:
        stamp = pd.Timestamp(since)
    except ValueError as exc:
        raise LabError(f"since {since!r} is not a time (say '20:05', '2026-12-04 20:05' or epoch seconds)") from exc
    if stamp.tzinfo is None:
        return datetime.fromisoformat(stamp.isoformat()).timestamp()
    return stamp.timestamp()


def write(path: Path, text: str) -> Path:
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise LabError(f"cannot write the script to {path}: {exc.strerror or exc}") from None
    return path


def write_from_journal(
    source: journal.Journal,
    path: Path,
    *,
    since: Any = None,
    checkpoint: str | None = None,
    last: int | None = None,
) -> Path:
    """Read the journal, choose the slice, write the script; unreadable lines are
    reported (on stderr and in the script's docstring) and the rest exported."""
    reading = source.read()
    for problem in reading.problems:
        print(f"meshkit: {problem}", file=sys.stderr)
    before, chosen = journal.choose(reading.entries, since=epoch(since), checkpoint=checkpoint, last=last)
    if not any(journal.is_replayable(e) and action_code(e) for e in chosen):
        raise LabError(f"nothing to export: the journal in {source.path.parent} has no action to repeat in that slice")
    return write(path, script_text(before, chosen, name=path.stem, problems=reading.problems))
