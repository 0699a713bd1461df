"""validate(): references to services and subsets are checked against the lab; doubts become warnings."""

from __future__ import annotations

from typing import Any

import pytest

from meshkit.config import ConfigContext, DestinationRule, VirtualService, load, validate, validate_all
from meshkit.errors import ConfigError
from tests.unit.test_config_samples import (
    BOOKINFO_SERVICES,
    DELETE,
    FIXTURE_FILES,
    FIXTURES,
    REVIEWS,
    bookinfo_context,
    edited,
)

ROUTE0 = "spec.http[0].route[0].destination"


@pytest.mark.parametrize("name", FIXTURE_FILES)
def test_every_istio_sample_is_valid_for_bookinfo(name: str) -> None:
    for resource in load(FIXTURES / name):
        assert validate(resource, bookinfo_context()).resource == resource


@pytest.mark.parametrize(
    "field, value, path, words",
    [
        (f"{ROUTE0}.subset", "v9", f"{ROUTE0}.subset", "no subset 'v9' for reviews.default.svc.cluster.local; "
         "its DestinationRules define v1, v2, v3"),
        (f"{ROUTE0}.host", "reveiws", f"{ROUTE0}.host", "no service 'reveiws' in the lab "
         "(read as reveiws.default.svc.cluster.local)"),
        (f"{ROUTE0}.host", "reviews.shop", f"{ROUTE0}.host", "read as reviews.shop.svc.cluster.local"),
        ("spec.hosts[0]", "ratings.other.svc.cluster.local", "spec.hosts[0]", "no service"),
        ("spec.http[0].mirror", {"host": "reviews", "subset": "v7"}, "spec.http[0].mirror.subset", "no subset 'v7'"),
        ("spec.http[0].mirror", {"host": "nobody"}, "spec.http[0].mirror.host", "no service 'nobody'"),
    ],
)
def test_references_the_lab_does_not_have_are_refused(field: str, value: Any, path: str, words: str) -> None:
    with pytest.raises(ConfigError) as caught:
        validate(edited(REVIEWS, field, value), bookinfo_context())
    error = caught.value
    assert (error.kind, error.name, error.path) == ("VirtualService", "reviews", path)
    assert words in error.reason


def test_a_subset_with_no_destination_rule_says_to_apply_one() -> None:
    with pytest.raises(ConfigError) as caught:
        validate(REVIEWS, ConfigContext(services=BOOKINFO_SERVICES))
    assert caught.value.path == f"{ROUTE0}.subset"
    assert "no DestinationRule for this host defines subsets" in caught.value.reason


def test_short_names_resolve_in_the_resource_namespace() -> None:
    shop = {"reviews.shop.svc.cluster.local": [{"app": "reviews", "version": "v1"}]}
    vs = edited(edited(REVIEWS, "metadata.namespace", "shop"), "spec.http[0].route", [
        {"destination": {"host": "reviews"}}])
    assert validate(vs, ConfigContext(services=shop)).resource.namespace == "shop"
    with pytest.raises(ConfigError):
        validate(edited(vs, "metadata.namespace", "default"), ConfigContext(services=shop))


def test_every_spelling_of_a_host_is_the_same_service() -> None:
    for host in ("reviews", "reviews.default", "reviews.default.svc", "reviews.default.svc.cluster.local"):
        vs = edited(REVIEWS, f"{ROUTE0}.host", host)
        assert validate(vs, bookinfo_context()).warnings == ()


def test_a_destination_rule_for_an_unknown_host_is_refused() -> None:
    rule = {"apiVersion": "networking.istio.io/v1", "kind": "DestinationRule", "metadata": {"name": "x"},
            "spec": {"host": "reveiws"}}
    with pytest.raises(ConfigError) as caught:
        validate(rule, bookinfo_context())
    assert (caught.value.kind, caught.value.name, caught.value.path) == ("DestinationRule", "x", "spec.host")


def test_a_subset_matching_no_workload_is_a_warning_not_an_error() -> None:
    (rule,) = [r for r in load(FIXTURES / "destination-rule-all.yaml") if r.name == "ratings"]
    result = validate(rule, bookinfo_context())
    paths = [warning.path for warning in result.warnings]
    assert paths == ["spec.subsets[1].labels", "spec.subsets[2].labels", "spec.subsets[3].labels"]
    assert "no workload of ratings.default.svc.cluster.local has labels version=v2" in result.warnings[0].reason
    assert str(result.warnings[0]).startswith("DestinationRule 'ratings' at spec.subsets[1].labels: ")


def test_a_selector_matching_no_workload_is_a_warning() -> None:
    (policy,) = load(FIXTURES / "authorization-policy-productpage-viewer.yaml")
    assert validate(policy, bookinfo_context()).warnings == ()
    other = policy.model_copy(update={"metadata": policy.metadata.model_copy(update={"namespace": "shop"})})
    (warning,) = validate(other, bookinfo_context()).warnings
    assert warning.path == "spec.selector.matchLabels"
    assert "no workload in namespace shop has labels app=productpage" in warning.reason


def test_a_fault_without_percentage_warns_that_istio_injects_nothing() -> None:
    vs = edited(REVIEWS, "spec.http[0].fault.abort.percentage", DELETE)
    (warning,) = validate(vs, bookinfo_context()).warnings
    assert warning.path == "spec.http[0].fault.abort"
    assert "Istio injects this abort into no requests" in warning.reason


def test_ignored_fields_are_warned_about() -> None:
    vs = edited(REVIEWS, "spec.exportTo", ["."])
    vs = edited(vs, "spec.http[0].retries", {"attempts": 2, "retryRemoteLocalities": True})
    vs = edited(vs, "spec.http[0].route", [{"destination": {"host": "reviews"}, "weight": 30}])
    paths = [warning.path for warning in validate(vs, bookinfo_context()).warnings]
    assert paths == ["spec.exportTo", "spec.http[0].route[0].weight", "spec.http[0].retries.retryRemoteLocalities"]


def test_a_python_built_resource_passes_the_same_rules() -> None:
    (vs,) = load(REVIEWS)
    assert isinstance(vs, VirtualService)
    route = vs.spec.http[0]
    broken = route.route[1].model_copy(update={"weight": 50})
    bad = vs.model_copy(update={"spec": vs.spec.model_copy(update={"http": [
        route.model_copy(update={"route": [route.route[0], broken]})]})})
    with pytest.raises(ConfigError) as caught:
        validate(bad, bookinfo_context())
    assert caught.value.path == "spec.http[0].route"


def test_resources_applied_together_see_each_others_destination_rules() -> None:
    batch = load(FIXTURES / "destination-rule-all.yaml") + load(FIXTURES / "virtual-service-all-v1.yaml")
    results = validate_all(batch, ConfigContext(services=BOOKINFO_SERVICES))
    assert [result.resource for result in results] == batch
    with pytest.raises(ConfigError):
        validate_all(load(FIXTURES / "virtual-service-all-v1.yaml"), ConfigContext(services=BOOKINFO_SERVICES))


def test_a_new_destination_rule_replaces_the_stored_one_of_the_same_name() -> None:
    (stored,) = [r for r in load(FIXTURES / "destination-rule-all.yaml") if r.name == "reviews"]
    assert isinstance(stored, DestinationRule)
    smaller = stored.model_copy(update={"spec": stored.spec.model_copy(update={"subsets": stored.spec.subsets[:1]})})
    context = bookinfo_context().with_destination_rules([smaller])
    assert list(context.subsets("reviews.default.svc.cluster.local")) == ["v1"]
