"""The progress bar of a restore or a catch-up: its model, set as the steps run (no browser)."""

from __future__ import annotations

import pytest

from meshkit.notebook.steps import StepsBar, steps_bar


def test_the_bar_fills_step_by_step_and_ends_with_the_summary() -> None:
    bar = StepsBar("catch-up 07", 4)
    bar.step(1, 4, "deleting VirtualService reviews")
    assert (bar.bar.value, bar.bar.max, bar.label.value) == (0, 4, "1/4: deleting VirtualService reviews")
    bar.step(4, 4, "deploying pick-v1, pick-v2, slow-v1")
    assert bar.bar.value == 3
    bar.finish("catch-up 07: deployed pick-v1, pick-v2, slow-v1 with sidecars")
    assert (bar.bar.value, bar.bar.bar_style) == (4, "success")
    assert bar.label.value.startswith("catch-up 07: deployed")


def test_a_failure_turns_the_bar_red_with_the_error() -> None:
    bar = StepsBar("restore x", 2)
    bar.finish("restore x did not reach its state", ok=False)
    assert (bar.bar.bar_style, bar.label.value) == ("danger", "restore x did not reach its state")


def test_an_empty_plan_still_draws_a_bar() -> None:
    assert StepsBar("catch-up 04", 0).bar.max == 1


@pytest.mark.parametrize(("headless", "shown"), [("1", False), ("0", True)])
def test_a_bar_only_where_a_frontend_draws_it(monkeypatch: pytest.MonkeyPatch, headless: str, shown: bool) -> None:
    monkeypatch.setenv("MESHKIT_HEADLESS", headless)
    assert (steps_bar("catch-up 04", 3) is not None) == shown
