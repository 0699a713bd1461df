"""The load generator form's pure parts: header lines and slicing a run."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from meshkit.notebook.load import parse_headers, slice_sizes


def test_header_lines_become_a_dict() -> None:
    assert parse_headers("end-user: jason\n\n  x-canary:yes  \n") == {"end-user": "jason", "x-canary": "yes"}
    assert parse_headers("") == {}
    assert parse_headers("x-empty:") == {"x-empty": ""}


def test_a_bad_header_line_is_named_by_its_number() -> None:
    with pytest.raises(ValueError, match=r"line 2: expected 'Name: value', got 'oops'"):
        parse_headers("a: b\noops")
    with pytest.raises(ValueError, match="line 1"):
        parse_headers(": value")


def test_a_run_is_cut_into_half_second_slices() -> None:
    assert slice_sizes(100, 20.0) == [10] * 10
    assert slice_sizes(25, 20.0) == [10, 10, 5]
    assert slice_sizes(3, 0.5) == [1, 1, 1]


@given(st.integers(1, 100_000), st.floats(0.1, 5000))
def test_slices_add_up_to_the_run(total: int, rate: float) -> None:
    sizes = slice_sizes(total, rate)
    assert sum(sizes) == total and all(s >= 1 for s in sizes)
