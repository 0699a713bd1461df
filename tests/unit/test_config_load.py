"""load(): Istio's published samples load unchanged, from every kind of source, and errors say where."""

from __future__ import annotations

from pathlib import Path

import pytest

from meshkit.config import (
    AuthorizationPolicy,
    DestinationRule,
    PeerAuthentication,
    VirtualService,
    load,
)
from meshkit.errors import ConfigError
from tests.unit.test_config_samples import FIXTURE_FILES, FIXTURES, REVIEWS, edited

EXPECTED = {
    "virtual-service-all-v1.yaml": [(VirtualService, n) for n in ("productpage", "reviews", "ratings", "details")],
    "destination-rule-all.yaml": [(DestinationRule, n) for n in ("productpage", "reviews", "ratings", "details")],
    "virtual-service-reviews-test-v2.yaml": [(VirtualService, "reviews")],
    "virtual-service-reviews-50-v3.yaml": [(VirtualService, "reviews")],
    "virtual-service-reviews-80-20.yaml": [(VirtualService, "reviews")],
    "virtual-service-ratings-test-delay.yaml": [(VirtualService, "ratings")],
    "virtual-service-ratings-test-abort.yaml": [(VirtualService, "ratings")],
    "peer-authentication-mesh-strict.yaml": [(PeerAuthentication, "default")],
    "authorization-policy-allow-nothing.yaml": [(AuthorizationPolicy, "allow-nothing")],
    "authorization-policy-productpage-viewer.yaml": [(AuthorizationPolicy, "productpage-viewer")],
    "authorization-policy-reviews-viewer.yaml": [(AuthorizationPolicy, "reviews-viewer")],
}


def test_every_fixture_has_an_expectation() -> None:
    assert sorted(EXPECTED) == FIXTURE_FILES


@pytest.mark.parametrize("name", FIXTURE_FILES)
def test_istio_sample_loads_unchanged(name: str) -> None:
    resources = load(FIXTURES / name)
    assert [(type(r), r.name) for r in resources] == EXPECTED[name]


def test_the_jason_route_reads_as_istio_means_it() -> None:
    (vs,) = load(FIXTURES / "virtual-service-reviews-test-v2.yaml")
    assert isinstance(vs, VirtualService)
    first, second = vs.spec.http
    assert first.match[0].headers["end-user"].exact == "jason"
    assert first.route[0].destination.subset == "v2"
    assert second.match == [] and second.route[0].destination.subset == "v1"


def test_the_delay_sample_holds_seven_seconds_for_everyone_matched() -> None:
    (vs,) = load(FIXTURES / "virtual-service-ratings-test-delay.yaml")
    assert isinstance(vs, VirtualService)
    fault = vs.spec.http[0].fault
    assert fault is not None and fault.delay is not None
    assert fault.delay.fixed_delay == 7.0
    assert fault.delay.percentage is not None and fault.delay.percentage.value == 100.0


def test_mesh_wide_peer_authentication_lives_in_istio_system() -> None:
    (policy,) = load(FIXTURES / "peer-authentication-mesh-strict.yaml")
    assert isinstance(policy, PeerAuthentication)
    assert policy.namespace == "istio-system"
    assert policy.spec.mtls is not None and policy.spec.mtls.mode == "STRICT"
    assert policy.spec.selector is None


@pytest.mark.parametrize(
    "api_version",
    ["networking.istio.io/v1", "networking.istio.io/v1beta1", "networking.istio.io/v1alpha3", "meshkit.dev/v1alpha1"],
)
def test_every_accepted_api_version_gives_the_same_model(api_version: str) -> None:
    assert load(edited(REVIEWS, "apiVersion", api_version)) == load(REVIEWS)


def test_security_kinds_accept_their_api_versions() -> None:
    (policy,) = load(FIXTURES / "peer-authentication-mesh-strict.yaml")
    text = (FIXTURES / "peer-authentication-mesh-strict.yaml").read_text()
    for version in ("security.istio.io/v1beta1", "meshkit.dev/v1alpha1"):
        assert load(text.replace("security.istio.io/v1", version)) == [policy]


def test_a_dict_a_list_text_and_a_path_load_alike(tmp_path: Path) -> None:
    text = (FIXTURES / "virtual-service-all-v1.yaml").read_text()
    from_path = load(FIXTURES / "virtual-service-all-v1.yaml")
    assert load(text) == from_path
    assert load(str(FIXTURES / "virtual-service-all-v1.yaml")) == from_path
    assert load([REVIEWS, edited(REVIEWS, "metadata.name", "other")])[1].name == "other"
    assert load(REVIEWS)[0].name == "reviews"
    copy = tmp_path / "copy.yml"
    copy.write_text(text)
    assert load(copy) == from_path


def test_namespace_defaults_to_default_and_empty_documents_are_skipped() -> None:
    resources = load("---\n---\n" + (FIXTURES / "virtual-service-reviews-80-20.yaml").read_text() + "---\n")
    assert len(resources) == 1 and resources[0].namespace == "default"


def test_errors_name_the_document_and_line() -> None:
    text = (FIXTURES / "virtual-service-reviews-80-20.yaml").read_text()
    bad = text.replace("weight: 20", "weight: 30")
    both = text.replace("name: reviews", "name: first") + "---\n" + bad
    route_lines = [number for number, line in enumerate(both.splitlines(), start=1) if line == "  - route:"]
    with pytest.raises(ConfigError) as caught:
        load(both)
    error = caught.value
    assert (error.kind, error.name, error.path) == ("VirtualService", "reviews", "spec.http[0].route")
    assert f"(YAML document 2, line {route_lines[1]})" in error.reason


def test_errors_in_a_file_name_the_file(tmp_path: Path) -> None:
    path = tmp_path / "resources.yaml"
    path.write_text("kind: VirtualService\napiVersion: networking.istio.io/v1\nmetadata: {name: r}\n"
                    "spec:\n  hosts: [reviews]\n  http:\n  - rouet: []\n")
    with pytest.raises(ConfigError) as caught:
        load(path)
    assert caught.value.path == "spec.http[0].rouet"
    assert f"{path} document 1, line 7" in caught.value.reason
    assert "did you mean 'route'?" in caught.value.reason


def test_errors_in_a_list_name_the_item() -> None:
    with pytest.raises(ConfigError) as caught:
        load([REVIEWS, edited(REVIEWS, "spec.http[0].timeout", "1x")])
    assert caught.value.path == "spec.http[0].timeout"
    assert "(item 2)" in caught.value.reason


def test_a_duplicate_key_is_refused_rather_than_silently_dropped() -> None:
    text = "kind: VirtualService\nkind: DestinationRule\n"
    with pytest.raises(ConfigError) as caught:
        load(text)
    assert "duplicate key 'kind'" in caught.value.reason and "line 2" in caught.value.reason


def test_the_same_resource_twice_is_refused() -> None:
    with pytest.raises(ConfigError) as caught:
        load([REVIEWS, REVIEWS])
    assert (caught.value.kind, caught.value.name, caught.value.path) == ("VirtualService", "reviews", "metadata.name")
    assert "item 1 and item 2" in caught.value.reason


def test_broken_yaml_says_where() -> None:
    with pytest.raises(ConfigError) as caught:
        load("a: 1\n b: 2\n")
    assert "not valid YAML" in caught.value.reason and "line 2" in caught.value.reason


def test_a_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load(tmp_path / "absent.yaml")
    assert caught.value.kind == "file" and "cannot read it" in caught.value.reason
