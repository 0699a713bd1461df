"""The x-meshkit-peer encoding (meshkit.core.peer)."""

from __future__ import annotations

import pytest

from meshkit.core.peer import Peer, decode_peer, encode_peer


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
