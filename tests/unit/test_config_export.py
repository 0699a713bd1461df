"""to_istio_yaml(): current Istio apiVersions, camelCase, no empty fields, and it loads back equal."""

from __future__ import annotations

import pytest
import yaml

from meshkit.config import load, to_istio_yaml, to_manifest
from tests.unit.test_config_samples import EVERYTHING_DR, EVERYTHING_VS, FIXTURE_FILES, FIXTURES, RATE_LIMIT, REVIEWS


@pytest.mark.parametrize("name", FIXTURE_FILES)
def test_every_fixture_round_trips(name: str) -> None:
    resources = load(FIXTURES / name)
    assert load(to_istio_yaml(resources)) == resources


def test_every_field_round_trips() -> None:
    resources = load([EVERYTHING_VS, EVERYTHING_DR])
    exported = to_istio_yaml(resources)
    assert load(exported) == resources
    assert "timeout: 1500ms" not in exported and "timeout: 1.5s" in exported
    assert "perTryTimeout: 300ms" in exported and "fixedDelay: 120s" in exported


def test_export_writes_current_api_versions() -> None:
    documents = list(yaml.safe_load_all(to_istio_yaml(load(FIXTURES / "virtual-service-reviews-test-v2.yaml")
                                                      + load(FIXTURES / "authorization-policy-productpage-viewer.yaml"))))
    assert [(d["apiVersion"], d["kind"]) for d in documents] == [
        ("networking.istio.io/v1", "VirtualService"),
        ("security.istio.io/v1", "AuthorizationPolicy"),
    ]


def test_export_reads_like_the_istio_sample() -> None:
    (vs,) = load(FIXTURES / "virtual-service-ratings-test-delay.yaml")
    assert to_manifest(vs) == {
        "apiVersion": "networking.istio.io/v1",
        "kind": "VirtualService",
        "metadata": {"name": "ratings", "namespace": "default"},
        "spec": {
            "hosts": ["ratings"],
            "http": [
                {
                    "match": [{"headers": {"end-user": {"exact": "jason"}}}],
                    "route": [{"destination": {"host": "ratings", "subset": "v1"}}],
                    "fault": {"delay": {"fixedDelay": "7s", "percentage": {"value": 100.0}}},
                },
                {"route": [{"destination": {"host": "ratings", "subset": "v1"}}]},
            ],
        },
    }


@pytest.mark.parametrize("name", FIXTURE_FILES)
def test_no_empty_or_null_fields_are_written(name: str) -> None:
    exported = to_istio_yaml(load(FIXTURES / name))
    assert "null" not in exported and "[]" not in exported and "{}" not in exported


def test_a_header_presence_match_keeps_its_empty_mapping() -> None:
    exported = to_istio_yaml(load(EVERYTHING_VS))
    assert "x-canary: {}" in exported


def test_local_rate_limit_is_left_out_with_a_comment() -> None:
    exported = to_istio_yaml(load([RATE_LIMIT, REVIEWS]))
    assert exported.startswith("# LocalRateLimit default/slow-down is not exported")
    assert "EnvoyFilter" in exported
    assert [r.name for r in load(exported)] == ["reviews"]


def test_the_native_manifest_of_a_rate_limit_keeps_its_own_api_version() -> None:
    (limit,) = load(RATE_LIMIT)
    manifest = to_manifest(limit)
    assert manifest["apiVersion"] == "meshkit.dev/v1alpha1"
    assert manifest["spec"]["tokenBucket"] == {"maxTokens": 10, "tokensPerFill": 2, "fillInterval": "1s"}
    assert load(manifest) == [limit]
