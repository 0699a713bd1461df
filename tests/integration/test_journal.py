"""The journal against a real lab, and an exported experiment run as `python script.py`.

One lab walks through every action the journal records; a second session
(widget changes made from Python, load runs) is exported and run in a fresh
process on a fresh lab home, and must end with the same config and
measurements consistent within a binomial bound.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from meshkit import config
from meshkit.errors import ConfigError, LabError
from meshkit.lab import Lab
from meshkit.notebook import FaultWidget, LoadGenerator, MtlsWidget, SplitWidget
from meshkit.replay import shares_consistent

SUBSETS = """
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews}
spec:
  host: reviews
  subsets:
  - {name: v1, labels: {version: v1}}
  - {name: v2, labels: {version: v2}}
  - {name: v3, labels: {version: v3}}
"""
RATINGS_SUBSETS = """
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: ratings}
spec:
  host: ratings
  subsets:
  - {name: v1, labels: {version: v1}}
"""
UNKNOWN_SUBSET = """
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews}
spec:
  hosts: [reviews]
  http:
  - route:
    - destination: {host: reviews, subset: v9}
"""


def entries(lab: Lab) -> list[dict]:
    return [json.loads(line) for line in (lab.state_dir / "journal.jsonl").read_text().splitlines()]


def test_every_action_is_journalled_and_a_refused_one_is_not_replayable(tmp_path: Path) -> None:
    lab = Lab(home=tmp_path / "lab").up()
    try:
        lab.deploy("bookinfo")
        lab.inject("default")
        lab.uninject("details-v1")
        lab.apply(SUBSETS)
        with pytest.raises(ConfigError):
            lab.apply(UNKNOWN_SUBSET)
        lab.delete("dr", "reviews")
        lab.rotate_root()
        lab.load("productpage", "/productpage", rate=50, requests=20)
        lab.deploy("shop")
        lab.undeploy("shop")
        lab.note("tried the shop, then took it away")
        lab.reset()
        recorded = entries(lab)
    finally:
        lab.down()

    actions = [e["action"] for e in recorded]
    assert actions == ["up", "deploy", "inject", "uninject", "apply", "apply", "delete", "rotate_root", "load",
                       "deploy", "undeploy", "note", "reset"]
    assert recorded[0]["fresh"] is True
    refused = recorded[5]
    assert refused["ok"] is False and "VirtualService 'reviews'" in refused["error"] and "v9" in refused["error"]
    applied = recorded[4]
    assert applied["resources"][0]["spec"]["subsets"][2] == {"name": "v3", "labels": {"version": "v3"}}
    assert applied["version"] < recorded[6]["version"], "each change is journalled with the config version it produced"
    assert recorded[6]["kind"] == "DestinationRule" and recorded[6]["name"] == "reviews"
    summary = recorded[8]["summary"]
    assert summary["count"] == 20 and summary["codes"] == {"200": 20} and summary["p50_ms"] > 0
    assert set(summary["shares"]) <= {"v1"} and recorded[8]["args"]["requests"] == 20

    table = Lab(home=tmp_path / "lab").journal(all_sessions=True)
    assert list(table["action"]) == [*actions, "down"] and not table.loc[5, "ok"]
    assert "REFUSED" in table.loc[5, "what"]
    assert list(Lab(home=tmp_path / "lab").journal()["action"]) == ["reset", "down"], "the current session starts at the reset"


@pytest.fixture(scope="module")
def session(tmp_path_factory: pytest.TempPathFactory) -> tuple[Lab, Path]:
    """A learner's session: Bookinfo, widget changes made from Python, load runs."""
    lab = Lab(home=tmp_path_factory.mktemp("session")).reset()
    lab.deploy("bookinfo", inject=True)
    lab.inject("curl")
    lab.apply(SUBSETS)
    lab.apply(RATINGS_SUBSETS)
    split = SplitWidget(lab, "reviews")
    split.set_weights({"v1": 70, "v2": 0, "v3": 30})
    lab.load("reviews", "/reviews/0", rate=100, requests=400)
    faults = FaultWidget(lab, "ratings")
    faults.abort_percent.value = 50.0
    faults.abort_status.value = 503
    faults.apply_button.click()
    assert not faults.error, faults.error
    mtls = MtlsWidget(lab, namespace="istio-system")
    mtls.set_mode("STRICT")
    assert not mtls.error, mtls.error
    generator = LoadGenerator(lab, service="ratings", path="/ratings/0", rate=100, duration_s=3)
    generator.start()
    generator.wait(30)
    yield lab, lab.state_dir
    lab.down()


def test_widget_changes_are_journalled_as_the_applies_they_made(session: tuple[Lab, Path]) -> None:
    lab, _ = session
    table = lab.journal()
    by_widget = table[table["widget"] != ""]
    assert [w.split(" ")[0] for w in by_widget["widget"]] == ["SplitWidget", "FaultWidget", "MtlsWidget", "LoadGenerator"]
    assert list(by_widget["action"]) == ["apply", "apply", "apply", "load"]
    assert "VirtualService ratings" in by_widget.iloc[1]["what"]
    assert "PeerAuthentication" in by_widget.iloc[2]["what"]


def test_an_exported_session_replays_in_a_fresh_process(session: tuple[Lab, Path], tmp_path: Path) -> None:
    lab, home = session
    script = lab.export_script(tmp_path / "canary.py")
    text = script.read_text()
    assert "# " in text and "widget SplitWidget" in text and "weight: 30" in text
    assert text.index("weight: 30") < text.index("abort:") < text.index("mode: STRICT")
    env = {k: v for k, v in os.environ.items() if k != "MESHKIT_HOME"}
    env["HOME"] = str(tmp_path / "home")  # a fresh home: nothing of the original lab is reachable
    done = subprocess.run([sys.executable, script.name], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "reviews/reviews/0: v3 share" in done.stdout

    results = tmp_path / "canary-results"
    replayed = config.load((results / "config.yaml").read_text())
    original = config.load(lab.export_istio())
    assert sorted(map(config.canonical, replayed), key=str) == sorted(map(config.canonical, original), key=str)
    assert {r["kind"] for r in yaml.safe_load_all((results / "config.yaml").read_text()) if r} == {
        "DestinationRule", "VirtualService", "PeerAuthentication"}

    summary = pd.read_csv(results / "summary.csv")
    shares = summary[summary["name"].str.endswith("share")]
    assert not shares.empty
    for row in shares.itertuples():
        runs = pd.read_csv(results / f"load-{row.run:02d}.csv")
        n = int((runs["code"] > 0).sum())
        assert shares_consistent(row.original, n, row.replayed, n), row
    assert (results / "charts.html").read_text().count("<div") >= 2
    assert len(list(results.glob("load-*.csv"))) == 2
    assert not list(Path(env["HOME"]).glob(".meshkit")), "the replay used a lab home of its own"


def test_a_slice_starts_from_the_lab_as_it_was(session: tuple[Lab, Path], tmp_path: Path) -> None:
    lab, _ = session
    text = lab.export_script(tmp_path / "last.py", last=1).read_text()
    assert "where this slice begins" in text
    rest = text.split("where this slice begins")[1]
    start = rest.split("\n\n    # ")[0]
    assert "mode: STRICT" in start and "weight: 30" in start and "httpStatus: 503" in start
    assert "replay.load(" not in start, "a slice starts from the config, not from old load runs"
    assert rest.count("replay.load(") == 1 and "'ratings', '/ratings/0'" in rest
    compile(text, "last.py", "exec")


def test_a_corrupt_journal_line_is_skipped_and_reported(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    lab = Lab(home=tmp_path / "lab").up()
    try:
        lab.deploy("bookinfo")
        with open(lab.state_dir / "journal.jsonl", "a") as handle:
            handle.write('{"at": 1, "action": "apply", "resources": [\n')
        lab.apply(SUBSETS)
        path = lab.export_script(tmp_path / "out.py")
    finally:
        lab.down()
    said = capsys.readouterr().err
    assert "journal.jsonl line 3: not JSON" in said and "skipped" in said
    text = path.read_text()
    assert "journal.jsonl line 3" in text and "lab.deploy('bookinfo')" in text and "name: reviews" in text
    assert Lab(home=tmp_path / "lab").journal().attrs["problems"] == [said.strip().removeprefix("meshkit: ")]


def test_export_to_a_path_that_cannot_be_written_is_one_clear_error(session: tuple[Lab, Path], tmp_path: Path) -> None:
    lab, _ = session
    with pytest.raises(LabError, match=r"cannot write the script to .*missing/out.py: No such file or directory"):
        lab.export_script(tmp_path / "missing" / "out.py")
    with pytest.raises(LabError, match="no checkpoint 'nope'"):
        lab.export_script(tmp_path / "out.py", checkpoint="nope")
    with pytest.raises(LabError, match="is not a time"):
        lab.export_script(tmp_path / "out.py", since="yesterday-ish")
