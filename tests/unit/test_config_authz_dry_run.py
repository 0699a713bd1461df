"""AuthorizationPolicy's istio.io/dry-run annotation and serviceAccounts: validation and canonical form."""

from __future__ import annotations

from typing import Any

import pytest

from meshkit.config import canonical, parse
from meshkit.errors import ConfigError

KEY = "istio.io/dry-run"
WHERE = 'metadata.annotations["istio.io/dry-run"]'


def policy(annotations: dict[str, str] | None = None, action: str = "DENY", **source: Any) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": "deny-curl", "namespace": "shop"}
    if annotations is not None:
        metadata["annotations"] = annotations
    return {
        "apiVersion": "security.istio.io/v1",
        "kind": "AuthorizationPolicy",
        "metadata": metadata,
        "spec": {"action": action, "rules": [{"from": [{"source": source or {"principals": ["*"]}}]}]},
    }


def refusal(obj: dict[str, Any]) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        parse(obj)
    return caught.value


@pytest.mark.parametrize(("annotations", "dry_run"), [(None, False), ({}, False), ({KEY: "false"}, False),
                                                      ({KEY: "true"}, True), ({"other": "x", KEY: "true"}, True)])
def test_only_true_makes_a_dry_run_and_absent_or_false_enforces(annotations: dict[str, str] | None, dry_run: bool) -> None:
    assert canonical(parse(policy(annotations)))["spec"]["dry_run"] is dry_run


@pytest.mark.parametrize("value", ["True", "yes", "1", "", " true", "TRUE"])
def test_any_other_value_is_refused_naming_the_annotation(value: str) -> None:
    error = refusal(policy({KEY: value}))
    assert error.path == WHERE
    assert f"got {value!r}" in error.reason and '"true"' in error.reason and '"false"' in error.reason


def test_istio_dry_runs_allow_and_deny_policies_only() -> None:
    error = refusal(policy({KEY: "true"}, action="AUDIT"))
    assert error.path == WHERE and "ALLOW and DENY" in error.reason
    assert canonical(parse(policy({KEY: "false"}, action="AUDIT")))["spec"]["dry_run"] is False
    assert canonical(parse(policy({KEY: "true"}, action="ALLOW")))["spec"]["dry_run"] is True


def test_service_accounts_become_namespace_slash_name_and_a_bare_name_is_the_policys_namespace() -> None:
    spec = canonical(parse(policy(serviceAccounts=["default/curl", "productpage"], notServiceAccounts=["legacy"])))["spec"]
    (source,) = spec["rules"][0]["from"]
    assert source["service_accounts"] == ["default/curl", "shop/productpage"]
    assert source["not_service_accounts"] == ["shop/legacy"]
    assert source["principals"] == [] and source["namespaces"] == []


def test_a_source_with_only_not_service_accounts_is_not_empty() -> None:
    parse(policy(notServiceAccounts=["default/curl"]))


@pytest.mark.parametrize(
    ("source", "field", "reason"),
    [
        ({"serviceAccounts": ["default/curl"], "principals": ["cluster.local/ns/default/sa/curl"]},
         "serviceAccounts", "Cannot set serviceAccounts with namespaces or principals"),
        ({"notServiceAccounts": ["default/curl"], "notNamespaces": ["evil"]},
         "notServiceAccounts", "Cannot set serviceAccounts with namespaces or principals"),
        ({"serviceAccounts": ["default/*"]}, "serviceAccounts[0]", "without wildcards"),
        ({"serviceAccounts": ["*"]}, "serviceAccounts[0]", "without wildcards"),
        ({"serviceAccounts": ["Default/curl"]}, "serviceAccounts[0]", "the namespace 'Default' is not a valid name"),
        ({"serviceAccounts": ["default/"]}, "serviceAccounts[0]", "the name '' is not a valid name"),
        ({"notServiceAccounts": ["ok", "a/b/c"]}, "notServiceAccounts[1]", "the namespace 'a/b' is not a valid name"),
        ({"serviceAccounts": [f"sa{i}" for i in range(17)]}, "serviceAccounts", "at most 16 service accounts"),
        ({"serviceAccounts": ["x" * 321]}, "serviceAccounts[0]", "at most 320 characters"),
    ],
)
def test_service_accounts_follow_istios_crd(source: dict[str, Any], field: str, reason: str) -> None:
    error = refusal(policy(**source))
    assert error.path == f"spec.rules[0].from[0].source.{field}"
    assert reason in error.reason


def test_an_empty_source_names_service_accounts_among_the_fields_to_set() -> None:
    obj = policy()
    obj["spec"]["rules"][0]["from"][0]["source"] = {}
    assert "serviceAccounts, notServiceAccounts" in refusal(obj).reason
