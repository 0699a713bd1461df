"""State files: every notebook's start state, checkpoints on disk, and what a bad one says."""

from __future__ import annotations

import tomllib
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
import yaml

from meshkit import checkpoints, config, state
from meshkit.errors import LabError
from tests.unit.test_state_diff import SLOW_800, SUBSETS, split

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = sorted(p.name[:2] for p in (ROOT / "notebooks").glob("*.ipynb"))


def test_every_notebook_declares_a_start_state() -> None:
    assert checkpoints.notebooks() == NOTEBOOKS


@pytest.mark.parametrize("notebook", NOTEBOOKS)
def test_a_start_state_loads_and_its_resources_pass_config_validation(notebook: str) -> None:
    raw = yaml.safe_load((checkpoints.START_STATES / f"{notebook}.yaml").read_text())
    assert raw["meshkit_state"] == state.FORMAT and raw["notebook"] == notebook
    found = checkpoints.start_state(notebook)
    config.load(found["resources"]) if found["resources"] else None
    assert {(e["app"], e["namespace"]) for e in found["apps"]} >= {("lab", "default")}
    assert found["cert_lifetime_s"] == state.DEFAULT_CERT_LIFETIME_S  # every notebook starts from Lab().reset()
    assert state.plan(found, found) == []


def test_start_states_are_installed_as_package_data() -> None:
    package_data = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["meshkit"]
    assert "start_states/*.yaml" in package_data


@pytest.mark.parametrize(("given", "expected"), [(7, "07"), ("7", "07"), ("07", "07"), ("13-capstone", "13"), (0, "00")])
def test_a_notebook_is_named_by_its_number(given: int | str, expected: str) -> None:
    assert checkpoints.notebook_id(given) == expected


@pytest.mark.parametrize("given", [14, "x", "", "1.5", True, -1])
def test_an_unknown_notebook_is_one_line_listing_the_valid_ones(given: Any) -> None:
    with pytest.raises(LabError) as caught:
        checkpoints.notebook_id(given)
    message = str(caught.value)
    assert "\n" not in message and message.endswith("notebooks are " + ", ".join(NOTEBOOKS))


@pytest.mark.parametrize("name", ["before-strict", "a", "v3_at_20.percent", "A1"])
def test_good_checkpoint_names(name: str) -> None:
    assert state.check_name(name) == name


@pytest.mark.parametrize("name", ["", "../etc", "a/b", ".hidden", "-x", "with space", "x" * 64, 7, None])
def test_a_bad_checkpoint_name_is_one_clear_line(name: Any) -> None:
    with pytest.raises(LabError, match=r"^checkpoint name .* is not valid: use letters, digits"):
        state.check_name(name)


BAD = [
    ("not a mapping", [1, 2], "t: not a lab state"),
    ("other format", {"meshkit_state": 2}, "t: meshkit_state 2 is not a format this meshkit reads (1)"),
    ("unknown field", {"apps": [], "sidecar": []}, "t: unknown field 'sidecar'"),
    ("short lifetime", {"cert_lifetime_s": 5}, "t: cert_lifetime_s must be seconds from 60 to 7776000"),
    ("unknown app", {"apps": [{"app": "petstore"}]}, "t: apps[0]: unknown app 'petstore'; apps are lab, bookinfo, shop, custom"),
    ("twice", {"apps": [{"app": "bookinfo"}, {"app": "bookinfo", "namespace": "default"}]}, "t: apps[1]: bookinfo in default is listed twice"),
    ("bad namespace", {"apps": [{"app": "shop", "namespace": "Shop!"}]}, "t: apps[0]: namespace 'Shop!'"),
    ("custom without specs", {"apps": [{"app": "custom"}]}, "t: apps[0]: specs must list the WorkloadSpecs"),
    ("specs on a demo app", {"apps": [{"app": "shop", "specs": []}]}, "t: apps[0]: only 'custom' takes specs"),
    ("a bad spec", {"apps": [{"app": "custom", "specs": [{**SLOW_800, "replicas": 0}]}]}, "t: apps[0].specs[0]: WorkloadSpec 'slow-v1' at replicas"),
    ("an unknown spec field", {"apps": [{"app": "custom", "specs": [{**SLOW_800, "speed": 1}]}]}, "t: apps[0].specs[0]: not a WorkloadSpec"),
    ("a sidecar of nothing", {"apps": [{"app": "lab"}], "sidecars": ["default/productpage-v1"]},
     "t: sidecars[0]: 'default/productpage-v1' is not 'namespace/workload' of a workload of the apps listed"),
    ("a bad resource", {"apps": [], "resources": [{**SUBSETS, "spec": {"host": "reviews", "trafficPolicy": {"loadBalancer": {"simple": "FASTEST"}}}}]},
     "t: resources: DestinationRule 'reviews' at spec.trafficPolicy.loadBalancer.simple: must be one of"),
]


@pytest.mark.parametrize(("doc", "message"), [c[1:] for c in BAD], ids=[c[0] for c in BAD])
def test_a_bad_state_is_refused_in_one_line_naming_the_field(doc: Any, message: str) -> None:
    with pytest.raises(LabError) as caught:
        state.check(doc, "t")
    assert str(caught.value).startswith(message) and "\n" not in str(caught.value)


def test_a_checkpoint_file_round_trips_and_is_listed(tmp_path: Path) -> None:
    saved = state.check({"apps": [{"app": "lab"}, {"app": "bookinfo"}, {"app": "custom", "specs": [SLOW_800]}],
                         "sidecars": ["default/curl", "default/slow-v1"], "resources": [SUBSETS, split(80, 20)],
                         "cert_lifetime_s": 600}, "t")
    path = checkpoints.save(tmp_path, "before-strict", saved, now=datetime(2026, 3, 1, 9, 30, tzinfo=timezone.utc))
    assert path == tmp_path / "checkpoints" / "before-strict.yaml"
    loaded = checkpoints.load(tmp_path, "before-strict")
    assert state.desired(loaded) == saved and loaded["saved_at"] == "2026-03-01T09:30:00+00:00"
    frame = checkpoints.table(tmp_path)
    assert frame.to_dict("records") == [{
        "name": "before-strict", "saved_at": frame["saved_at"][0], "apps": "lab, bookinfo, custom",
        "sidecars": 2, "resources": 2, "cert_lifetime": "10 min",
    }]
    assert str(frame["saved_at"][0]) == "2026-03-01 09:30:00+00:00"


def test_an_unknown_checkpoint_names_it_and_lists_the_ones_there_are(tmp_path: Path) -> None:
    with pytest.raises(LabError, match=r"^no checkpoint 'x' in this lab \(checkpoints: none yet"):
        checkpoints.load(tmp_path, "x")
    for name in ("b", "a"):
        checkpoints.save(tmp_path, name, state.fresh("default", 86400))
    with pytest.raises(LabError) as caught:
        checkpoints.load(tmp_path, "x")
    assert str(caught.value) == "no checkpoint 'x' in this lab (checkpoints: a, b)"


def test_a_damaged_checkpoint_is_named_and_the_others_still_listed(tmp_path: Path) -> None:
    checkpoints.save(tmp_path, "good", state.fresh("default", 86400))
    (tmp_path / "checkpoints" / "broken.yaml").write_text("apps: [unclosed\n")
    frame = checkpoints.table(tmp_path)
    assert list(frame["name"]) == ["good"]
    assert frame.attrs["problems"] == ["checkpoint 'broken': broken.yaml is not YAML: while parsing a flow sequence"]
