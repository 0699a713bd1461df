"""Tables for people: the rules meshkit.tables states, and the original left as it was."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from meshkit.tables import for_display, human_duration, human_number, human_time, to_text


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0.25, "250 ms"),
        (3.5, "3.5 s"),
        (45, "45 s"),
        (59.6, "1 min"),
        (200, "3 min 20 s"),
        (3600, "1 h"),
        (12 * 3600 + 5 * 60 + 59, "12 h 5 min"),
        (2 * 86400 + 3 * 3600 + 5, "2 d 3 h"),
        (-200, "-3 min 20 s"),
    ],
)
def test_durations_read_as_their_two_largest_units(seconds: float, text: str) -> None:
    assert human_duration(pd.Timedelta(seconds=seconds)) == text
    assert human_duration(seconds) == text


def test_missing_values_are_a_dash() -> None:
    assert human_duration(pd.NaT) == human_number(math.nan) == human_time(pd.NaT) == human_number(None) == "-"


@pytest.mark.parametrize(
    ("value", "text"),
    [(270.0, "270"), (1234.5678, "1235"), (123.4, "123"), (12.345, "12.3"), (1.2345, "1.23"), (0.012345, "0.0123"), (1.5, "1.5"), (0.0, "0")],
)
def test_numbers_keep_three_significant_digits_and_whole_numbers_from_100(value: float, text: str) -> None:
    assert human_number(value) == text


def test_times_read_to_the_second_with_their_zone() -> None:
    assert human_time(pd.Timestamp(1_000_000_000.123, unit="s", tz="UTC")) == "2001-09-09 01:46:40 UTC"
    assert human_time(pd.Timestamp("2025-01-02 10:00:00.5")) == "2025-01-02 10:00:00"


def test_a_frame_is_formatted_per_column_and_the_original_keeps_its_dtypes() -> None:
    frame = pd.DataFrame(
        {
            "renews_in": [pd.Timedelta(hours=12, minutes=5), pd.Timedelta(seconds=200), pd.NaT],
            "requests": [270.0, 3.0, math.nan],
            "p99_ms": [1234.5678, 0.012345, 12.345],
            "sidecar": [True, False, True],
            "rotations": [1, 2, 3],
            "mixed": ["a", None, 1.5],
        },
        index=[5, 6, 7],
    )
    dtypes = frame.dtypes.copy()
    shown = for_display(frame)
    assert shown.to_dict("list") == {
        "renews_in": ["12 h 5 min", "3 min 20 s", "-"],
        "requests": ["270", "3", "-"],
        "p99_ms": ["1235", "0", "12"],
        "sidecar": ["True", "False", "True"],
        "rotations": ["1", "2", "3"],
        "mixed": ["a", "-", "1.5"],
    }
    assert list(shown.index) == [5, 6, 7]
    assert frame.dtypes.equals(dtypes) and frame["requests"].iloc[0] == 270.0


def test_a_float_column_with_one_fraction_keeps_its_fractions() -> None:
    assert list(for_display(pd.DataFrame({"rps": [20.0, 19.5]}))["rps"]) == ["20.0", "19.5"]


@pytest.mark.parametrize(
    ("values", "shown"),
    [
        ([63.7, 36.01], ["63.7", "36.0"]),
        ([1.0, 0.987654], ["1.00", "0.99"]),
        ([0.0123, 0.004], ["0.0123", "0.0040"]),
        ([0.00001, 0.00002], ["0.0000", "0.0000"]),
        ([150.2, 2.3, math.nan], ["150", "2", "-"]),
    ],
)
def test_a_float_column_has_one_count_of_decimals_from_its_largest_value(values: list[float], shown: list[str]) -> None:
    assert list(for_display(pd.DataFrame({"x": values}))["x"]) == shown


def test_repeated_column_names_survive() -> None:
    frame = pd.DataFrame([[1.0, 2.5]], columns=["x", "x"])
    assert list(for_display(frame).columns) == ["x", "x"]
    assert for_display(frame).iloc[0].tolist() == ["1", "2.50"]


def test_text_has_no_index_and_says_when_there_is_nothing() -> None:
    assert to_text(pd.DataFrame({"a": []})) == "(none)"
    assert to_text(pd.DataFrame({"a": []}), empty="(no sidecars)") == "(no sidecars)"
    assert to_text(pd.DataFrame({"count": [270.0]}, index=[9])).split() == ["count", "270"]
