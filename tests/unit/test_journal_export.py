"""The journal's reading and slicing, the script text, the replay's verdicts, the notebook's moves: pure parts, no lab."""

from __future__ import annotations

import ast
import json
from pathlib import Path
from typing import Any

import nbformat
import pandas as pd
import pytest

from meshkit import journal
from meshkit.errors import LabError
from meshkit.export_notebook import learner_moves, only_displays, with_moves
from meshkit.export_script import action_code, load_keywords, script_text, starting_point, yaml_literal
from meshkit.replay import CONSISTENT, DIFFERS, compare, latency_consistent, shares_consistent

VS = {"apiVersion": "networking.istio.io/v1", "kind": "VirtualService", "metadata": {"name": "reviews", "namespace": "default"},
      "spec": {"hosts": ["reviews"], "http": [{"route": [{"destination": {"host": "reviews", "subset": "v1"}}]}]}}
DR = {"apiVersion": "networking.istio.io/v1", "kind": "DestinationRule", "metadata": {"name": "reviews", "namespace": "default"},
      "spec": {"host": "reviews", "subsets": [{"name": "v1", "labels": {"version": "v1"}}]}}


def entry(action: str, at: float, **fields: Any) -> dict[str, Any]:
    return {"at": at, "action": action, **fields}


SESSION = [
    entry("up", 1, fresh=True),
    entry("deploy", 2, app="shop", namespace="default", inject=False),
    entry("reset", 3),
    entry("deploy", 4, app="bookinfo", namespace="default", inject=True),
    entry("apply", 5, resources=[DR]),
    entry("apply", 6, resources=[VS], widget="SplitWidget (Traffic split for reviews)"),
    entry("apply", 7, ok=False, error="VirtualService 'x' at spec.http: needs a route"),
    entry("checkpoint", 8, name="before-load"),
    entry("load", 9, args={"service": "reviews", "path": "/reviews/0", "rate": 100.0, "duration": 5.0, "requests": 400,
                           "concurrency": 64, "method": "GET", "headers": {}, "source": "curl", "timeout": 10.0},
          summary={"count": 400, "answered": 400, "success": 1.0, "p50_ms": 5.0, "p90_ms": 8.0, "p99_ms": 20.0,
                   "codes": {"200": 400}, "shares": {"v1": 1.0}}),
    entry("delete", 10, kind="VirtualService", name="reviews", namespace="default"),
    entry("up", 11, fresh=False),
]


def test_a_corrupt_line_is_skipped_and_named_and_the_rest_read() -> None:
    text = "\n".join([json.dumps(SESSION[0]), '{"at": 2, "action": "apply", "resou', "[1, 2]", json.dumps(SESSION[1]), ""])
    reading = journal.parse(text)
    assert [e["action"] for e in reading.entries] == ["up", "deploy"]
    assert reading.problems == [
        "journal.jsonl line 2: not JSON (Unterminated string starting at); skipped",
        "journal.jsonl line 3: not a journal entry (needs 'at' and 'action'); skipped",
    ]


def test_the_session_starts_at_the_last_fresh_start() -> None:
    assert [e["at"] for e in journal.session(SESSION)] == [3, 4, 5, 6, 7, 8, 9, 10, 11]
    assert journal.session([entry("up", 1, fresh=False), entry("deploy", 2)])[0]["at"] == 1


@pytest.mark.parametrize(
    ("options", "before", "chosen"),
    [
        ({}, [], [3, 4, 5, 6, 7, 8, 9, 10, 11]),
        ({"since": 6.5}, [3, 4, 5, 6], [7, 8, 9, 10, 11]),
        ({"checkpoint": "before-load"}, [3, 4, 5, 6, 7, 8], [9, 10, 11]),
        ({"last": 2}, [3, 4, 5, 6, 7, 8], [9, 10, 11]),
        ({"last": 99}, [], [3, 4, 5, 6, 7, 8, 9, 10, 11]),
    ],
)
def test_choose_a_slice(options: dict[str, Any], before: list[float], chosen: list[float]) -> None:
    got_before, got_chosen = journal.choose(SESSION, **options)
    assert [e["at"] for e in got_before] == before and [e["at"] for e in got_chosen] == chosen


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"checkpoint": "nope"}, "no checkpoint 'nope' in this lab's journal since its last fresh start (checkpoints there: before-load)"),
        ({"last": 0}, "last must be at least 1, got 0"),
        ({"last": 1, "since": 3.0}, "choose one of since, checkpoint and last"),
    ],
)
def test_bad_slices_are_one_clear_error(options: dict[str, Any], message: str) -> None:
    with pytest.raises(LabError, match=message.replace("(", r"\(").replace(")", r"\)")):
        journal.choose(SESSION, **options)


def test_a_load_summary_has_counts_codes_percentiles_and_shares() -> None:
    frame = pd.DataFrame({"code": [200] * 6 + [503, 0], "latency_ms": [1, 2, 3, 4, 5, 6, 7, 100.0],
                          "version": ["v1", "v1", "v3", "v3", "v3", "v3", "", ""]})
    summary = journal.load_summary(frame)
    assert summary["count"] == 8 and summary["answered"] == 7 and summary["codes"] == {"0": 1, "200": 6, "503": 1}
    assert summary["success"] == 0.75 and summary["p50_ms"] == 4.0
    assert summary["shares"] == {"?": round(1 / 7, 4), "v1": round(2 / 7, 4), "v3": round(4 / 7, 4)}
    assert journal.load_summary(frame.iloc[0:0])["p50_ms"] is None


def test_the_lab_a_slice_starts_from_is_its_deploys_then_the_resources_it_held() -> None:
    before, _ = journal.choose(SESSION, last=1)
    start = starting_point(before)
    assert [e["action"] for e in start] == ["deploy", "apply"]
    assert start[1]["resources"] == [DR, VS], "the refused apply and the later delete are not part of it"
    assert starting_point(journal.session(SESSION))[-1]["resources"] == [DR], "a delete removes its resource"


def test_each_action_becomes_the_call_that_repeats_it() -> None:
    assert action_code(SESSION[3]) == ["lab.deploy('bookinfo', inject=True)"]
    assert action_code(entry("inject", 1, target=None)) == ["lab.inject()"]
    assert action_code(entry("uninject", 1, target="curl")) == ["lab.uninject('curl')"]
    assert action_code(SESSION[9]) == ["lab.delete('VirtualService', 'reviews')"]
    assert action_code(entry("delete", 1, kind="PeerAuthentication", name="default", namespace="istio-system")) == [
        "lab.delete('PeerAuthentication', 'default', namespace='istio-system')"]
    assert action_code(SESSION[8], loads_via="lab") == ["lab.load('reviews', '/reviews/0', rate=100.0, requests=400)"]
    assert action_code(SESSION[8])[0].startswith("replay.load('reviews', '/reviews/0', rate=100.0, requests=400,\n")
    assert action_code(SESSION[7]) == [] and action_code(entry("note", 1, text="hi")) == []
    assert load_keywords({"service": "s", "path": "/", "headers": {"end-user": "jason"}, "duration": 3.0}) == {
        "headers": {"end-user": "jason"}, "duration": 3.0}


def test_yaml_literals_are_editable_blocks_unless_the_text_would_break_them() -> None:
    assert yaml_literal([VS]).startswith('"""\napiVersion: networking.istio.io/v1\nkind: VirtualService\n')
    tricky = {**VS, "metadata": {"name": 'a"""b'}}
    assert ast.literal_eval(yaml_literal([tricky])).count('a"""b') == 1


def test_the_script_is_valid_python_that_says_what_it_replays() -> None:
    before, chosen = journal.choose(SESSION)
    text = script_text(before, chosen, name="canary", problems=["journal.jsonl line 2: not JSON; skipped"])
    ast.parse(text)
    assert "with Replay('canary-results') as replay:" in text
    assert "made with the widget SplitWidget (Traffic split for reviews): apply VirtualService reviews" in text
    assert "apply not repeated, it was REFUSED: VirtualService 'x'" in text
    assert "journal.jsonl line 2: not JSON; skipped" in text
    assert "shop" not in text, "what came before the last reset is not replayed"
    custom = [entry("up", 1, fresh=True, cert_lifetime_s=120.0),
              entry("deploy", 2, app="custom", namespace="default", inject=False, specs=[{
                  "name": "a", "service": "a", "version": "v1", "service_account": "a", "port": 9080,
                  "latency": {"p50_ms": 1.0, "p99_ms": 2.0}, "error_rate": 0.0, "calls": [], "replicas": 1,
                  "role": "generic", "paths": [], "concurrent_calls": False, "star_color": None}])]
    text = script_text([], custom, name="x")
    ast.parse(text)
    assert "from meshkit.demo.apps import Call, Latency, WorkloadSpec" in text and "cert_lifetime=120.0" in text
    assert "WorkloadSpec(name='a'" in text


@pytest.mark.parametrize(
    ("p0", "n0", "p1", "n1", "expected"),
    [(0.19, 400, 0.21, 400, True), (0.5, 400, 0.6, 400, True), (0.5, 400, 0.65, 400, False), (1.0, 20, 1.0, 20, True), (0.0, 200, 0.02, 200, True),
     (0.0, 200, 0.1, 200, False), (0.9, 400, 0.25, 400, False)],
)
def test_shares_are_consistent_within_a_binomial_bound(p0: float, n0: int, p1: float, n1: int, expected: bool) -> None:
    assert shares_consistent(p0, n0, p1, n1) is expected


def test_latency_is_consistent_within_a_factor_of_two_or_5_ms() -> None:
    assert latency_consistent(5.0, 9.0) and latency_consistent(100.0, 190.0)
    assert not latency_consistent(100.0, 250.0) and not latency_consistent(0.0, 6.0)


def test_compare_names_every_measurement_with_its_verdict() -> None:
    original = {"count": 400, "answered": 400, "success": 1.0, "p50_ms": 5.0, "p99_ms": 20.0, "shares": {"v1": 0.81, "v3": 0.19}}
    replayed = {"count": 400, "answered": 400, "success": 1.0, "p50_ms": 6.0, "p99_ms": 90.0, "shares": {"v1": 0.79, "v3": 0.21}}
    found = compare(1, "reviews/reviews/0", original, replayed)
    assert [(m.name, m.verdict) for m in found] == [("v1 share", CONSISTENT), ("v3 share", CONSISTENT),
                                                    ("success rate", CONSISTENT), ("p50 ms", CONSISTENT), ("p99 ms", DIFFERS)]
    assert str(found[1]) == "load 1 reviews/reviews/0: v3 share 0.21, original 0.19: consistent"


def notebook() -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_markdown_cell("# A lesson"),
        nbformat.v4.new_code_cell("lab = Lab().reset()"),
        nbformat.v4.new_code_cell("split = SplitWidget(lab, 'reviews')\nsplit"),
        nbformat.v4.new_code_cell("split"),
        nbformat.v4.new_code_cell("print('All checks passed.')", metadata={"tags": ["lesson-check"]}),
    ]
    return nb


def made_in(nb: nbformat.NotebookNode, index: int, action: str, at: float, in_cell: bool, **fields: Any) -> dict[str, Any]:
    return entry(action, at, cell=None, cell_hash=journal.source_hash(nb.cells[index].source), in_cell=in_cell, **fields)


def test_moves_between_cells_go_after_the_cell_that_ran_before_them() -> None:
    nb = notebook()
    entries = [
        made_in(nb, 1, "reset", 1, True),
        made_in(nb, 2, "apply", 2, True, resources=[VS], widget="SplitWidget"),  # the cell's own code: not a move
        made_in(nb, 2, "apply", 3, False, resources=[DR], widget="SplitWidget"),
        made_in(nb, 3, "apply", 4, False, resources=[VS], widget="SplitWidget"),
        entry("apply", 5, resources=[VS]),  # from elsewhere (the CLI): not this notebook's
    ]
    moves = learner_moves(nb, entries)
    assert {cell: [e["at"] for e in made] for cell, made in moves.items()} == {2: [3], 3: [4]}
    out = with_moves(nb, moves)
    sources = [c.source for c in out.cells]
    assert sources[0].startswith("Exported on") and "2 widget change(s)" in sources[0]
    assert sources[2] == "lab = Lab().reset()" and sources[3].startswith("split = SplitWidget")
    assert sources[4].startswith("# The learner's moves after the cell above:") and "kind: DestinationRule" in sources[4]
    assert sources[5].startswith("# The notebook showed a widget here:\n# split\n"), "a display-only cell is replaced"
    assert not any("All checks passed" in s for s in sources)
    assert learner_moves(nb, [entries[0], entries[1]]) == {} and len(with_moves(nb, {}).cells) == len(nb.cells)


def test_the_last_fresh_start_of_the_notebook_begins_its_session() -> None:
    nb = notebook()
    old = made_in(nb, 3, "apply", 2, False, resources=[VS], widget="SplitWidget")
    entries = [made_in(nb, 1, "reset", 1, True), old, made_in(nb, 1, "reset", 3, True)]
    assert learner_moves(nb, entries) == {}


@pytest.mark.parametrize(("source", "expected"), [("split", True), ("bench.show()\nsplit", True), ("x = 1\nx", False),
                                                   ("%time x", False), ("", False)])
def test_only_displays(source: str, expected: bool) -> None:
    assert only_displays(source) is expected


def test_the_journal_file_is_appended_and_read_back(tmp_path: Path) -> None:
    book = journal.Journal(tmp_path)
    book.record("apply", resources=[VS], at_path=Path("x"))
    book.record("load", summary={"count": 1})
    reading = book.read()
    assert [e["action"] for e in reading.entries] == ["apply", "load"] and reading.entries[0]["at_path"] == "x"
    assert (tmp_path / "journal.jsonl").stat().st_mode & 0o777 == 0o600
