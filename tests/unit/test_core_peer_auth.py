"""Effective mTLS modes from PeerAuthentication, and the client's choice (meshkit.core.peer_auth)."""

from __future__ import annotations

from typing import Any

import pytest

from meshkit.core.peer_auth import MtlsMode, accepts, client_uses_mtls, effective_mode, selects

REVIEWS_LABELS = {"app": "reviews", "version": "v1"}


def pa(namespace: str, name: str, mode: str, selector: dict[str, str] | None = None) -> dict[str, Any]:
    """A canonical PeerAuthentication (meshkit.config.canonical)."""
    return {"kind": "PeerAuthentication", "namespace": namespace, "name": name,
            "spec": {"selector": selector, "mtls": {"mode": mode}}}


MESH_STRICT = pa("istio-system", "default", "STRICT")
MESH_UNSET = pa("istio-system", "default", "UNSET")
NS_PERMISSIVE = pa("default", "default", "PERMISSIVE")
NS_DISABLE = pa("default", "default", "DISABLE")
NS_UNSET = pa("default", "default", "UNSET")
REVIEWS_STRICT = pa("default", "reviews", "STRICT", {"app": "reviews"})
REVIEWS_DISABLE = pa("default", "reviews", "DISABLE", {"app": "reviews"})
REVIEWS_UNSET = pa("default", "reviews", "UNSET", {"app": "reviews"})
RATINGS_DISABLE = pa("default", "ratings", "DISABLE", {"app": "ratings"})
OTHER_NS_STRICT = pa("prod", "default", "STRICT")
ROOT_SELECTOR_DISABLE = pa("istio-system", "reviews", "DISABLE", {"app": "reviews"})

MODES = {
    "no_policy_at_all_is_permissive_as_in_istio": ([], MtlsMode("PERMISSIVE", None)),
    "a_mesh_wide_policy_applies_everywhere": ([MESH_STRICT], MtlsMode("STRICT", "istio-system/default")),
    "a_namespace_policy_beats_the_mesh_policy": ([MESH_STRICT, NS_PERMISSIVE], MtlsMode("PERMISSIVE", "default/default")),
    "a_workload_policy_beats_the_namespace_policy": ([NS_PERMISSIVE, REVIEWS_STRICT], MtlsMode("STRICT", "default/reviews")),
    "a_workload_policy_beats_the_mesh_policy": ([MESH_STRICT, REVIEWS_DISABLE], MtlsMode("DISABLE", "default/reviews")),
    "unset_at_the_workload_inherits_the_namespace": ([NS_DISABLE, REVIEWS_UNSET], MtlsMode("DISABLE", "default/default")),
    "unset_at_workload_and_namespace_inherits_the_mesh": (
        [MESH_STRICT, NS_UNSET, REVIEWS_UNSET], MtlsMode("STRICT", "istio-system/default")
    ),
    "unset_everywhere_is_permissive": ([MESH_UNSET, NS_UNSET, REVIEWS_UNSET], MtlsMode("PERMISSIVE", None)),
    "a_policy_selecting_another_workload_does_not_apply": ([MESH_STRICT, RATINGS_DISABLE], MtlsMode("STRICT", "istio-system/default")),
    "another_namespaces_policy_does_not_apply": ([OTHER_NS_STRICT], MtlsMode("PERMISSIVE", None)),
    "a_selector_policy_in_the_root_namespace_does_not_reach_other_namespaces": (
        [MESH_STRICT, ROOT_SELECTOR_DISABLE], MtlsMode("STRICT", "istio-system/default")
    ),
    "two_workload_policies_resolve_to_the_first_by_name": (
        [pa("default", "z-last", "DISABLE", {"app": "reviews"}), pa("default", "a-first", "STRICT", {"version": "v1"})],
        MtlsMode("STRICT", "default/a-first"),
    ),
}


@pytest.mark.parametrize("case", list(MODES))
def test_the_effective_mode_for_reviews_in_default(case: str) -> None:
    policies, expected = MODES[case]
    assert effective_mode(policies, "default", REVIEWS_LABELS) == expected


def test_a_selector_policy_in_the_root_namespace_applies_to_workloads_in_the_root_namespace() -> None:
    assert effective_mode([ROOT_SELECTOR_DISABLE], "istio-system", REVIEWS_LABELS) == MtlsMode("DISABLE", "istio-system/reviews")


def test_the_root_namespace_can_be_named_by_the_lab() -> None:
    mesh = pa("mesh-root", "default", "STRICT")
    assert effective_mode([mesh], "default", REVIEWS_LABELS, root_namespace="mesh-root") == MtlsMode("STRICT", "mesh-root/default")
    assert effective_mode([mesh], "default", REVIEWS_LABELS) == MtlsMode("PERMISSIVE", None)


@pytest.mark.parametrize(
    ("selector", "selected"),
    [(None, True), ({"app": "reviews"}, True), ({"app": "reviews", "version": "v1"}, True),
     ({"app": "reviews", "version": "v2"}, False), ({"tier": "web"}, False)],
    ids=["no_selector_selects_all", "one_matching_label", "all_labels_matching", "one_label_differs", "a_label_the_workload_lacks"],
)
def test_a_selector_needs_every_label_it_names(selector: dict[str, str] | None, selected: bool) -> None:
    assert selects(selector, REVIEWS_LABELS) is selected


@pytest.mark.parametrize(
    ("mode", "mtls", "served"),
    [("STRICT", True, True), ("STRICT", False, False), ("PERMISSIVE", True, True), ("PERMISSIVE", False, True),
     ("DISABLE", True, False), ("DISABLE", False, True)],
    ids=["strict_serves_mtls", "strict_refuses_plaintext", "permissive_serves_mtls", "permissive_serves_plaintext",
         "disable_does_not_terminate_mtls", "disable_serves_plaintext"],
)
def test_the_inbound_side_serves_what_its_mode_accepts(mode: str, mtls: bool, served: bool) -> None:
    assert accepts(mode, mtls) is served


@pytest.mark.parametrize(
    ("tls_mode", "sidecar", "destination_mode", "mtls"),
    [
        ("ISTIO_MUTUAL", True, None, True),
        ("ISTIO_MUTUAL", False, None, True),
        ("ISTIO_MUTUAL", True, "DISABLE", True),
        ("DISABLE", True, None, False),
        ("DISABLE", True, "STRICT", False),
        (None, True, None, True),
        (None, False, None, False),
        (None, True, "STRICT", True),
        (None, True, "PERMISSIVE", True),
        (None, True, "DISABLE", False),
        (None, False, "STRICT", False),
    ],
    ids=[
        "istio_mutual_to_a_sidecar_uses_mtls",
        "istio_mutual_uses_mtls_even_without_a_sidecar",
        "istio_mutual_overrides_a_disabled_destination",
        "disable_sends_plaintext_to_a_sidecar",
        "disable_sends_plaintext_even_to_strict",
        "auto_mtls_uses_mtls_to_a_sidecar",
        "auto_mtls_sends_plaintext_without_a_sidecar",
        "auto_mtls_uses_mtls_to_a_strict_sidecar",
        "auto_mtls_uses_mtls_to_a_permissive_sidecar",
        "auto_mtls_sends_plaintext_to_a_disabled_sidecar",
        "auto_mtls_sends_plaintext_without_a_sidecar_whatever_the_mode",
    ],
)
def test_the_client_side_choice_follows_the_destination_rule_or_auto_mtls(
    tls_mode: str | None, sidecar: bool, destination_mode: str | None, mtls: bool
) -> None:
    assert client_uses_mtls(tls_mode, sidecar, destination_mode) is mtls
