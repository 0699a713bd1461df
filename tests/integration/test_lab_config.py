"""Istio-shaped config through the Lab and the CLI: all or nothing, idempotent, exportable."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from meshkit.errors import ConfigError, UnknownWorkload
from meshkit.lab import Lab

ISTIO = Path(__file__).resolve().parents[1] / "unit" / "fixtures" / "istio"


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    lab = Lab(home=tmp_path_factory.mktemp("lab")).up()
    try:
        lab.deploy("bookinfo", inject=True)
        yield lab
    finally:
        lab.down()


def test_bookinfo_yaml_applies_as_istio_publishes_it_and_every_sidecar_acks(lab: Lab) -> None:
    rules = lab.apply(ISTIO / "destination-rule-all.yaml")
    assert set(rules.name) == {"productpage", "reviews", "ratings", "details"} and rules.changed.all()
    routes = lab.apply(ISTIO / "virtual-service-all-v1.yaml")
    assert routes.changed.all()
    version = routes.attrs["version"]
    assert (lab.proxy_status().acked >= version).all()
    assert set(lab.get("vs").name) == {"productpage", "reviews", "ratings", "details"}


def test_applying_the_same_config_again_changes_nothing(lab: Lab) -> None:
    lab.apply(ISTIO / "destination-rule-all.yaml")
    version = lab.health()["version"]
    again = lab.apply(ISTIO / "destination-rule-all.yaml")
    assert not again.changed.any()
    assert again.attrs["version"] == version == lab.health()["version"]


def test_a_bad_resource_is_refused_with_its_field_path_and_nothing_changes(lab: Lab) -> None:
    lab.apply(ISTIO / "destination-rule-all.yaml")
    before = (lab.health()["version"], lab.get().to_dict("records"))
    good = yaml.safe_load((ISTIO / "virtual-service-reviews-80-20.yaml").read_text())
    bad = yaml.safe_load((ISTIO / "virtual-service-reviews-80-20.yaml").read_text())
    bad["metadata"]["name"] = "reviews-typo"
    bad["spec"]["http"][0]["route"][1]["weight"] = 30
    with pytest.raises(ConfigError) as caught:
        lab.apply([{**good, "metadata": {"name": "ratings-too", "namespace": "default"}}, bad])
    error = caught.value
    assert (error.kind, error.name) == ("VirtualService", "reviews-typo")
    assert error.path.startswith("spec.http[0].route")
    assert "100" in error.reason
    assert (lab.health()["version"], lab.get().to_dict("records")) == before


def test_unknown_fields_and_subsets_are_named(lab: Lab) -> None:
    with pytest.raises(ConfigError) as caught:
        lab.apply({"apiVersion": "networking.istio.io/v1", "kind": "VirtualService", "metadata": {"name": "x"},
                   "spec": {"hosts": ["reviews"], "http": [{"rouet": []}]}})
    assert caught.value.path == "spec.http[0].rouet"
    with pytest.raises(ConfigError) as caught:
        lab.apply({"apiVersion": "networking.istio.io/v1", "kind": "VirtualService", "metadata": {"name": "x"},
                   "spec": {"hosts": ["reviews"], "http": [{"route": [{"destination": {"host": "reviews", "subset": "v9"}}]}]}})
    assert caught.value.path == "spec.http[0].route[0].destination.subset"


def test_get_delete_and_export_round_trip(lab: Lab, tmp_path: Path) -> None:
    lab.apply(ISTIO / "destination-rule-all.yaml")
    lab.apply(ISTIO / "virtual-service-reviews-test-v2.yaml")
    one = lab.get("VirtualService", "reviews")
    assert one["spec"]["http"][0]["match"][0]["headers"]["end-user"]["exact"] == "jason"
    exported = lab.export_istio(tmp_path / "istio.yaml")
    assert (tmp_path / "istio.yaml").read_text() == exported
    docs = [d for d in yaml.safe_load_all(exported) if d]
    assert {d["apiVersion"] for d in docs} == {"networking.istio.io/v1"}
    assert not lab.apply(tmp_path / "istio.yaml").changed.any()
    lab.delete("vs", "reviews")
    with pytest.raises(UnknownWorkload, match="reviews"):
        lab.get("vs", "reviews")
    with pytest.raises(UnknownWorkload, match="reviews"):
        lab.delete("vs", "reviews")
    with pytest.raises(UnknownWorkload, match="known kinds"):
        lab.get("ServiceEntry")


def test_the_cli_applies_gets_deletes_and_exports(lab: Lab, tmp_path: Path) -> None:
    def meshkit(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "meshkit.cli", "--home", str(lab.state_dir), *args],
                              capture_output=True, text=True, timeout=60)

    applied = meshkit("apply", "-f", str(ISTIO / "destination-rule-all.yaml"))
    assert applied.returncode == 0, applied.stderr
    assert "destinationrule/reviews" in applied.stdout and "ACKed by every sidecar" in applied.stdout
    listed = meshkit("get", "dr")
    assert "reviews" in listed.stdout and "DestinationRule" in listed.stdout
    shown = meshkit("get", "dr", "reviews")
    assert yaml.safe_load(shown.stdout)["spec"]["host"] == "reviews"
    exported = meshkit("export", "--istio", "-o", str(tmp_path / "out.yaml"))
    assert exported.returncode == 0 and (tmp_path / "out.yaml").read_text().startswith("---")
    bad = tmp_path / "bad.yaml"
    bad.write_text("apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: x}\nspec:\n  hosts: [nosuch]\n"
                   "  http:\n  - route:\n    - destination: {host: nosuch}\n")
    refused = meshkit("apply", "-f", str(bad))
    assert refused.returncode == 1
    last = refused.stderr.strip().splitlines()[-1]
    assert last.startswith("meshkit: error: VirtualService 'x'") and "spec.hosts[0]" in last and "Traceback" not in refused.stderr
    assert meshkit("delete", "dr", "reviews").returncode == 0
    assert meshkit("apply", "-f", str(tmp_path / "missing.yaml")).returncode == 1
