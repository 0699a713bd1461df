"""Root rotation decisions: which root signed a leaf, when a sidecar must renew at once,
and when the control plane may retire the old root (meshkit.security.renewal,
meshkit.control.ca_rotation)."""

from __future__ import annotations

from datetime import timedelta

from meshkit.control.ca_rotation import ca_status, pending_nodes, retire_refusal
from meshkit.control.store import State, bump
from meshkit.security.ca import create_authority, drop_previous_roots, rotate
from meshkit.security.renewal import issuer_key_id, key_id, needs_reissue
from tests.unit.test_security_samples import NOW, REVIEWS, issue_for

CA = create_authority(NOW)
ROTATED = rotate(CA, NOW + timedelta(hours=1))


def test_a_leaf_names_the_root_that_signed_it() -> None:
    _, leaf = issue_for(CA, REVIEWS)
    _, renewed = issue_for(ROTATED, REVIEWS, NOW + timedelta(hours=1))
    assert issuer_key_id(leaf) == key_id(CA.root) != key_id(ROTATED.root) == issuer_key_id(renewed)
    assert len(key_id(CA.root) or "") == 40  # SHA-1 of the key, RFC 5280's method (1)


def test_a_sidecar_renews_at_once_only_when_the_bundles_signing_root_did_not_sign_its_leaf() -> None:
    _, old_leaf = issue_for(CA, REVIEWS)
    _, new_leaf = issue_for(ROTATED, REVIEWS, NOW + timedelta(hours=1))
    assert not needs_reissue(old_leaf, CA.trusted_roots)
    assert needs_reissue(old_leaf, ROTATED.trusted_roots)  # new root first, old kept: renew now
    assert not needs_reissue(new_leaf, ROTATED.trusted_roots)
    assert not needs_reissue(new_leaf, drop_previous_roots(ROTATED).trusted_roots)
    assert not needs_reissue(old_leaf, ())


def state(**sidecars: bool) -> State:
    instances = {f"default/{name}": {"instance": name, "namespace": "default", "sidecar": has} for name, has in sidecars.items()}
    return State(version=7, instances=instances)


def test_retiring_waits_for_every_sidecar_node_and_ignores_nodes_without_one() -> None:
    s = state(**{"reviews-v1-0": True, "ratings-v1-0": True, "curl-0": False})
    new = key_id(ROTATED.root)
    issued = {"default/reviews-v1-0": new, "default/ratings-v1-0": key_id(CA.root)}
    assert pending_nodes(s, issued, ROTATED) == ["default/ratings-v1-0"]
    refusal = retire_refusal(s, issued, ROTATED)
    assert refusal is not None and "default/ratings-v1-0" in refusal and "1 sidecar(s)" in refusal
    issued["default/ratings-v1-0"] = new
    assert retire_refusal(s, issued, ROTATED) is None
    # A node the control plane has issued nothing to (it restarted since) counts as pending.
    assert pending_nodes(s, {"default/reviews-v1-0": new}, ROTATED) == ["default/ratings-v1-0"]


def test_a_long_pending_list_is_shortened_in_the_refusal() -> None:
    s = state(**{f"w{i}-0": True for i in range(8)})
    refusal = retire_refusal(s, {}, ROTATED)
    assert refusal is not None and "and 3 more" in refusal and "8 sidecar(s)" in refusal


def test_the_ca_status_lists_roots_signing_first_and_nodes_with_their_roots() -> None:
    s = state(**{"reviews-v1-0": True})
    status = ca_status(s, {"default/reviews-v1-0": key_id(CA.root)}, ROTATED)
    assert status["signing_root"]["key_id"] == key_id(ROTATED.root)
    assert [r["key_id"] for r in status["previous_roots"]] == [key_id(CA.root)]
    assert status["nodes"] == {"default/reviews-v1-0": key_id(CA.root)} and status["pending"] == ["default/reviews-v1-0"]


def test_bump_is_a_new_version_of_the_same_state() -> None:
    s = state(**{"reviews-v1-0": True})
    bumped = bump(s)
    assert bumped.version == 8 and bumped.instances == s.instances and bumped is not s
