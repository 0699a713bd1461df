"""Checkpoints on a real lab: saved, explained, restored exactly (resources, workloads, sidecars, certificate lifetime)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from meshkit import restore, state
from meshkit.demo.apps import Latency, WorkloadSpec
from meshkit.errors import LabError
from meshkit.lab import Lab

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


def split(v1: int, v3: int) -> str:
    return f"""
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: reviews}}
spec:
  hosts: [reviews]
  http:
  - route:
    - {{destination: {{host: reviews, subset: v1}}, weight: {v1}}}
    - {{destination: {{host: reviews, subset: v3}}, weight: {v3}}}
"""


STRICT = """
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: default, namespace: istio-system}
spec: {mtls: {mode: STRICT}}
"""


def workloads(lab: Lab) -> list[dict[str, Any]]:
    frame = lab.workloads()
    assert (frame["ready"].str.split("/").str[0] == frame["ready"].str.split("/").str[1]).all(), frame
    return sorted(frame[["namespace", "workload", "app", "sidecar"]].to_dict("records"), key=lambda r: (r["namespace"], r["workload"]))


def assert_is(lab: Lab, saved: dict[str, Any]) -> None:
    """The lab equals the state: its stored resources, its workloads and their sidecars."""
    assert lab._control().resources() == saved["resources"]
    assert sorted(map(tuple, lab.get()[["kind", "namespace", "name"]].values.tolist())) == sorted(map(state.resource_key, saved["resources"]))
    assert workloads(lab) == state.expected_workloads(saved)
    assert state.diff(restore.read_lab(lab), saved) == []


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    lab = Lab(home=tmp_path_factory.mktemp("lab")).up()
    try:
        lab.deploy("bookinfo", inject=True)
        lab.inject("curl")
        yield lab
    finally:
        lab.down()


def test_restore_brings_back_config_and_sidecars_exactly_and_diff_explains_the_way_there(lab: Lab) -> None:
    lab.apply(SUBSETS + "---" + split(80, 20))
    path = lab.checkpoint("canary-20")
    assert path == lab.state_dir / "checkpoints" / "canary-20.yaml"
    saved = restore.read_lab(lab)

    lab.apply(split(60, 40))
    lab.apply(STRICT)
    lab.uninject("productpage-v1")
    assert list(lab.diff("canary-20").lines) == [
        "productpage-v1 has no sidecar here, but has one in the checkpoint",
        "PeerAuthentication default in namespace istio-system is here, not in the checkpoint",
        "VirtualService reviews: spec.http[0].route[0].weight (to v1) 60 here, 80 in the checkpoint; "
        "spec.http[0].route[1].weight (to v3) 40 here, 20 in the checkpoint",
    ]
    changes = lab.restore("canary-20")
    assert changes.lines == ["deleted PeerAuthentication default in namespace istio-system", "injected productpage-v1",
                             "applied VirtualService reviews"]
    assert_is(lab, state.desired(saved))
    assert not lab.diff("canary-20") and str(lab.diff("canary-20")) == "no differences: the lab is as checkpoint 'canary-20' has it"
    assert str(lab.restore("canary-20")) == "restore canary-20: nothing to change, the lab was already in that state"

    journal = lab.journal()
    marks = journal[journal["action"].isin(["checkpoint", "restore"])]
    assert list(marks["what"]) == ["canary-20", "canary-20", "canary-20"]
    steps = journal.iloc[journal.index[journal["action"] == "restore"][0] - 3: journal.index[journal["action"] == "restore"][0]]
    assert list(steps["action"]) == ["delete", "inject", "apply"]  # each step journalled as the Lab call it was


def test_a_missing_resource_and_an_app_added_since_are_put_right(lab: Lab) -> None:
    lab.restore("canary-20")
    saved = state.desired(restore.read_lab(lab))
    lab.delete("vs", "reviews")
    lab.delete("dr", "reviews")
    lab.deploy("shop")
    assert list(lab.diff("canary-20").lines) == [
        "shop is deployed here, not in the checkpoint",
        "DestinationRule reviews is not here, but is in the checkpoint",
        "VirtualService reviews is not here, but is in the checkpoint",
    ]
    assert lab.restore("canary-20").lines == ["undeployed shop", "applied DestinationRule reviews, VirtualService reviews"]
    assert_is(lab, saved)


def test_an_unknown_checkpoint_is_one_line_naming_it_and_the_ones_there_are(lab: Lab) -> None:
    for call in (lab.restore, lab.diff):
        with pytest.raises(LabError) as caught:
            call("nope")
        assert str(caught.value) == "no checkpoint 'nope' in this lab (checkpoints: canary-20)"
    with pytest.raises(LabError, match="^checkpoint name '../up' is not valid"):
        lab.checkpoint("../up")
    assert not (lab.state_dir / "up.yaml").exists()


def test_checkpoints_table_and_the_cli(lab: Lab) -> None:
    table = lab.checkpoints()
    row = table[table["name"] == "canary-20"].iloc[0]
    assert (row["apps"], row["sidecars"], row["resources"], row["cert_lifetime"]) == ("lab, bookinfo", 7, 2, "1 d")

    def meshkit(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "meshkit.cli", "--home", str(lab.state_dir), *args],
                              capture_output=True, text=True, timeout=120)

    lab.apply(split(50, 50))
    found = meshkit("diff", "canary-20")
    assert found.returncode == 0 and "spec.http[0].route[0].weight (to v1) 50 here, 80 in the checkpoint" in found.stdout
    found = meshkit("restore", "canary-20")
    assert found.returncode == 0 and found.stdout.strip() == "restore canary-20: applied VirtualService reviews"
    found = meshkit("checkpoint", "from-cli")
    assert found.returncode == 0 and found.stdout.startswith("saved checkpoint from-cli")
    listed = meshkit("checkpoints")
    assert listed.returncode == 0 and "canary-20" in listed.stdout and "from-cli" in listed.stdout
    missing = meshkit("restore", "gone")
    assert missing.returncode == 1
    assert missing.stderr.strip() == "meshkit: error: no checkpoint 'gone' in this lab (checkpoints: canary-20, from-cli)"


def test_a_checkpoint_outlives_down_and_restores_the_certificate_lifetime_by_a_reset(tmp_path: Path) -> None:
    """The lifetime is fixed when the control plane starts and certificates keep theirs,
    so a restore to another lifetime resets the lab and rebuilds it: every certificate is new."""
    slow = WorkloadSpec(name="slow-v1", service="slow", version="v1", service_account="slow", latency=Latency(5.0, 9.0))
    home = tmp_path / "lab"
    lab = Lab(home=home, cert_lifetime=120).up()
    try:
        lab.deploy([slow], inject=True)
        lab.checkpoint("two-minutes")
        saved = state.desired(restore.read_lab(lab))
        assert saved["cert_lifetime_s"] == 120.0
        lab.down()
        assert list(lab.checkpoints()["name"]) == ["two-minutes"]
        assert list(lab.diff("two-minutes").lines)[0].startswith("no lab is running here; in the checkpoint it has")

        later = Lab(home=home, cert_lifetime=600).up()  # another lab in the same home, another lifetime
        assert list(later.diff("two-minutes").lines) == [
            "certificate lifetime: 10 min here, 2 min in the checkpoint (restoring it resets the lab: the CA keeps "
            "the lifetime it started with, and certificates keep theirs)",
            "your workload slow-v1 is not deployed here, but is in the checkpoint",
        ]
        changes = later.restore("two-minutes")
        assert changes.lines == ["reset the lab (certificate lifetime 10 min -> 2 min)", "deployed slow-v1 with sidecars"]
        assert_is(later, saved)
        certs = later.certificates()
        lifetimes = (certs["not_after"] - certs["not_before"]).dt.total_seconds()
        assert len(certs) == 1 and lifetimes.between(120, 120 + 61).all(), certs  # notBefore is back-dated a minute
    finally:
        Lab(home=home).down()
