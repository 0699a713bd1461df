"""Header edits and uri rewrites (meshkit.core.edits)."""

from __future__ import annotations

import pytest

from meshkit.core.edits import compile_ops, rewrite_path
from meshkit.core.rules import HeaderOps


def test_no_edits_compile_to_none() -> None:
    assert compile_ops(HeaderOps(), HeaderOps()) is None


def test_remove_set_add_within_a_level() -> None:
    ops = compile_ops(HeaderOps(set=(("x-a", "1"),), add=(("x-b", "2"),), remove=("x-c",)))
    assert ops is not None
    headers = [(b"X-A", b"old"), (b"x-a", b"older"), (b"X-C", b"gone"), (b"x-b", b"kept")]
    assert ops.apply(headers) == [(b"x-b", b"kept"), (b"x-a", b"1"), (b"x-b", b"2")]


def test_a_later_level_wins_over_an_earlier_one() -> None:
    ops = compile_ops(HeaderOps(set=(("x-a", "destination"),), add=(("x-b", "1"),)), HeaderOps(set=(("x-a", "route"),), remove=("x-b",)))
    assert ops is not None
    assert ops.apply([]) == [(b"x-a", b"route")]


def test_host_edits_change_the_authority_only() -> None:
    ops = compile_ops(HeaderOps(set=(("host", "other:80"),), add=(("host", "x"),), remove=("host",)))
    assert ops is not None and ops.authority == b"other:80"
    assert ops.apply([(b"accept", b"*/*")]) == [(b"accept", b"*/*")]


@pytest.mark.parametrize(
    ("target", "replacement", "prefix", "expected"),
    [
        (b"/ratings/2", b"/v1/bookRatings", 8, b"/v1/bookRatings/2"),
        (b"/ratings/2?x=1", b"/v1/bookRatings", 8, b"/v1/bookRatings/2?x=1"),
        (b"/old/x", b"/", 4, b"//x"),  # as Envoy's prefix_rewrite: nothing else changes
        (b"/exact?q", b"/new", None, b"/new?q"),
    ],
)
def test_rewrite(target: bytes, replacement: bytes, prefix: int | None, expected: bytes) -> None:
    assert rewrite_path(target, replacement, prefix) == expected
