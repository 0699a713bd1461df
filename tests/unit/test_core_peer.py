"""The x-meshkit-peer encoding (meshkit.core.peer)."""

from __future__ import annotations

import pytest

from meshkit.core.peer import Peer, decode_peer, encode_peer, verified_caller


def test_round_trip() -> None:
    peer = Peer("reviews-v2", "default", "v2", "bookinfo-reviews")
    assert encode_peer(peer) == b"w=reviews-v2;n=default;v=v2;sa=bookinfo-reviews"
    assert decode_peer(encode_peer(peer)) == peer


def test_odd_characters_are_percent_encoded() -> None:
    peer = Peer("a;b=c", "ns", "v 1", "sa/x")
    encoded = encode_peer(peer)
    assert b" " not in encoded and encoded.count(b";") == 3
    assert decode_peer(encoded) == peer


def test_missing_and_unknown_keys() -> None:
    assert decode_peer(b"w=app;future=1") == Peer(workload="app")


@pytest.mark.parametrize(
    "value",
    [b"w=a%0d%0aX-Evil: 1", b"w=a%00b", b"w=%ff", b"novalue", b"w=a b", b"w=" + b"a" * 2000, b"w="],
)
def test_invalid_values_make_the_header_invalid(value: bytes) -> None:
    assert decode_peer(value) is None


def test_absent_header_is_none() -> None:
    assert decode_peer(None) is None


CLAIM = Peer("productpage-v1", "default", "v1", "bookinfo-productpage")


def test_a_claim_without_a_certificate_is_unknown() -> None:
    assert verified_caller(CLAIM, None, None) == Peer()
    assert verified_caller(None, None, None) == Peer()


def test_a_claim_naming_the_certified_identity_keeps_its_workload_and_version() -> None:
    assert verified_caller(CLAIM, "default", "bookinfo-productpage") == CLAIM


@pytest.mark.parametrize("namespace, account", [("default", "sleep"), ("kube-system", "bookinfo-productpage")])
def test_a_claim_naming_another_identity_gives_way_to_the_certificate(namespace: str, account: str) -> None:
    assert verified_caller(CLAIM, namespace, account) == Peer(namespace=namespace, service_account=account)
    assert verified_caller(None, namespace, account) == Peer(namespace=namespace, service_account=account)
