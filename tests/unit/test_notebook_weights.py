"""Split weights: moving one slider rebalances the others and the total stays 100."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from meshkit.notebook.weights import distribute, normalized, rebalance


def test_the_others_make_room_in_proportion_to_what_they_had() -> None:
    assert rebalance({"v1": 50, "v2": 30, "v3": 20}, "v1", 80) == {"v1": 80, "v2": 12, "v3": 8}


def test_when_the_others_had_nothing_they_share_the_rest_equally() -> None:
    assert rebalance({"v1": 100, "v2": 0, "v3": 0}, "v1", 40) == {"v1": 40, "v2": 30, "v3": 30}


def test_a_single_subset_always_gets_everything() -> None:
    assert rebalance({"v1": 100}, "v1", 30) == {"v1": 100}


def test_order_of_subsets_is_kept_and_values_are_clamped() -> None:
    moved = rebalance({"v1": 10, "v2": 90}, "v2", 150)
    assert list(moved) == ["v1", "v2"] and moved == {"v1": 0, "v2": 100}


def test_an_unknown_subset_is_named() -> None:
    with pytest.raises(KeyError, match="v9"):
        rebalance({"v1": 100}, "v9", 10)


@given(
    st.dictionaries(st.sampled_from(["v1", "v2", "v3", "v4", "v5"]), st.integers(0, 100), min_size=1),
    st.integers(0, 100),
    st.data(),
)
def test_any_move_keeps_the_total_at_100_and_the_moved_value(weights: dict[str, int], value: int, data: st.DataObject) -> None:
    moved = data.draw(st.sampled_from(sorted(weights)))
    result = rebalance(weights, moved, value)
    assert sum(result.values()) == 100
    assert all(0 <= w <= 100 for w in result.values())
    if len(weights) > 1:
        assert result[moved] == value


@given(st.integers(0, 1000), st.lists(st.floats(0, 1000), min_size=1, max_size=8))
def test_distribute_adds_up_exactly(total: int, shares: list[float]) -> None:
    parts = distribute(total, shares)
    assert sum(parts) == total and len(parts) == len(shares)


def test_weights_read_back_from_config_fit_the_subsets() -> None:
    assert normalized({"v1": 80, "v2": 20}, ["v1", "v2", "v3"]) == {"v1": 80, "v2": 20, "v3": 0}
    assert normalized({"gone": 100}, ["v1", "v2"]) == {"v1": 100, "v2": 0}
    assert normalized({"v1": 50, "gone": 50}, ["v1", "v2"]) == {"v1": 100, "v2": 0}
    assert normalized({}, []) == {}
