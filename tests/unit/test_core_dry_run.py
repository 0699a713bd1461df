"""Dry-run AuthorizationPolicies (meshkit.core.dry_run): Istio's shadow verdicts beside an unchanged decision."""

from __future__ import annotations

from typing import Any

import pytest

from meshkit.core.authz import Decision, authorize, compile_policies
from meshkit.core.dry_run import (
    ShadowVerdict,
    deciding_policy,
    describe,
    is_dry_run,
    metric_labels,
    parse,
    policy_id,
    shadow_verdicts,
    would_deny,
)
from tests.unit.test_core_authz import PRODUCTPAGE, SLEEP, operation, policy, request, rule, source

DENY_ADMIN = policy("deny-admin", "DENY", rule(operations=[operation(paths=["/admin*"])]))
ALLOW_GET = policy("allow-get", "ALLOW", rule(operations=[operation(methods=["GET"])]))
DENY_SLEEP = policy("deny-sleep", "DENY", rule(operations=[operation(methods=["POST"])]),
                    rule(sources=[source(service_accounts=["default/sleep"])]))
ALLOW_PRODUCTPAGE = policy("allow-productpage", "ALLOW", rule(sources=[source(principals=[PRODUCTPAGE])]))
ALLOW_NOTHING = policy("allow-nothing", "ALLOW")


def dry(p: dict[str, Any]) -> dict[str, Any]:
    return {**p, "spec": {**p["spec"], "dry_run": True}}


DENY_SLEEP_RULE_1 = "ns[default]-policy[deny-sleep]-rule[1]"
ALLOW_PP_RULE_0 = "ns[default]-policy[allow-productpage]-rule[0]"

# (enforced, dry run, request, verdicts). The enforced decision is checked against the same
# policies without the dry-run ones in every case.
TABLE = {
    "no_dry_run_policy_no_verdict": ([DENY_ADMIN], [], request(), ()),
    "a_matching_deny_dry_run_would_deny_naming_its_rule": (
        [], [DENY_SLEEP], request(principal=SLEEP), (ShadowVerdict("DENY", False, DENY_SLEEP_RULE_1),)),
    "the_first_matching_rule_is_named": (
        [], [DENY_SLEEP], request(method="POST", principal=SLEEP),
        (ShadowVerdict("DENY", False, "ns[default]-policy[deny-sleep]-rule[0]"),)),
    "a_deny_dry_run_that_does_not_match_would_allow": (
        [], [DENY_SLEEP], request(principal=PRODUCTPAGE), (ShadowVerdict("DENY", True, None),)),
    "an_allow_dry_run_that_matches_would_allow_naming_its_rule": (
        [], [ALLOW_PRODUCTPAGE], request(principal=PRODUCTPAGE), (ShadowVerdict("ALLOW", True, ALLOW_PP_RULE_0),)),
    "an_allow_dry_run_that_does_not_match_would_deny_naming_none": (
        [], [ALLOW_PRODUCTPAGE], request(principal=SLEEP), (ShadowVerdict("ALLOW", False, None),)),
    "a_dry_run_allow_nothing_would_deny_everything": ([], [ALLOW_NOTHING], request(), (ShadowVerdict("ALLOW", False, None),)),
    "plaintext_never_matches_a_service_account": (
        [], [DENY_SLEEP], request(principal=None, namespace=None), (ShadowVerdict("DENY", True, None),)),
    "both_engines_report_deny_first": (
        [], [ALLOW_PRODUCTPAGE, DENY_SLEEP], request(principal=SLEEP),
        (ShadowVerdict("DENY", False, DENY_SLEEP_RULE_1), ShadowVerdict("ALLOW", False, None))),
    "an_enforced_allow_beside_a_deny_dry_run_still_allows": (
        [ALLOW_GET], [DENY_SLEEP], request(principal=SLEEP), (ShadowVerdict("DENY", False, DENY_SLEEP_RULE_1),)),
    "an_enforced_deny_beside_a_deny_dry_run_still_denies_and_both_are_reported": (
        [DENY_ADMIN], [DENY_SLEEP], request("/admin", principal=SLEEP), (ShadowVerdict("DENY", False, DENY_SLEEP_RULE_1),)),
    "an_enforced_deny_stops_the_request_before_the_allow_engine": (
        [DENY_ADMIN], [ALLOW_PRODUCTPAGE, DENY_SLEEP], request("/admin", principal=SLEEP),
        (ShadowVerdict("DENY", False, DENY_SLEEP_RULE_1),)),
    "an_enforced_allow_nothing_does_not_stop_the_allow_engine": (
        [ALLOW_NOTHING], [ALLOW_PRODUCTPAGE], request(principal=PRODUCTPAGE), (ShadowVerdict("ALLOW", True, ALLOW_PP_RULE_0),)),
    "a_dry_run_allow_does_not_count_as_an_allow_policy_for_enforcement": (
        [DENY_ADMIN], [ALLOW_NOTHING], request("/public"), (ShadowVerdict("ALLOW", False, None),)),
}


@pytest.mark.parametrize("case", list(TABLE))
def test_the_verdict_table(case: str) -> None:
    enforced, dry_run, req, verdicts = TABLE[case]
    every = enforced + [dry(p) for p in dry_run]
    kept = compile_policies(p for p in every if not is_dry_run(p))
    shadow = compile_policies(p for p in every if is_dry_run(p))
    decision = authorize(kept, req) if kept else None
    assert shadow_verdicts(shadow, req, decision) == verdicts
    # Enforcement is exactly what the enforced policies decide alone, as if the dry-run ones did not exist.
    alone = authorize(compile_policies(enforced), req)
    assert (decision or Decision(True, None, None)) == alone


@pytest.mark.parametrize("case", list(TABLE))
def test_what_is_logged_reads_back_as_the_same_verdicts(case: str) -> None:
    verdicts = TABLE[case][3]
    text = describe(verdicts)
    assert (text is None) == (not verdicts)
    assert parse(text) == verdicts


def test_the_log_text_is_envoys() -> None:
    verdicts = (ShadowVerdict("DENY", False, "ns[foo]-policy[deny-path-headers]-rule[0]"), ShadowVerdict("ALLOW", True, None))
    assert describe(verdicts) == ("deny: shadow denied, matched policy ns[foo]-policy[deny-path-headers]-rule[0]; "
                                  "allow: shadow allowed, matched policy none")
    assert parse(None) == parse(float("nan")) == parse("garbage") == ()


def test_policy_ids_metric_labels_and_who_would_deny() -> None:
    assert policy_id("foo/deny-path-headers", 0) == "ns[foo]-policy[deny-path-headers]-rule[0]"
    deny = ShadowVerdict("DENY", False, "ns[foo]-policy[deny-path-headers]-rule[3]")
    allow_none = ShadowVerdict("ALLOW", False, None)
    assert metric_labels(deny) == ("deny", "denied") and metric_labels(ShadowVerdict("ALLOW", True, "x")) == ("allow", "allowed")
    assert deciding_policy(deny) == "foo/deny-path-headers"
    assert deciding_policy(allow_none) == "ALLOW dry-run policies, none matching"
    assert would_deny([ShadowVerdict("DENY", True, None), allow_none]) and not would_deny([ShadowVerdict("DENY", True, None)])
    assert not would_deny([])
