"""Tables for people: a DataFrame's values as a person reads them.

Lab methods return DataFrames with honest dtypes (Timedelta, float, int) that
code and tests compute with; printed raw they show "0 days 11:59:58.123456",
"270.0" and "12.345678901". `for_display` turns a copy into text for the eye
(the CLI prints it, a notebook can show it) and leaves the original alone:

    >>> from meshkit.tables import for_display
    >>> for_display(lab.certificates())          # time_to_renewal: "11 h 59 min"
    >>> print(to_text(lab.resources()))          # what `meshkit status` prints

Rules, per column:

- durations (timedelta): the two largest units, "12 h 5 min", "3 min 20 s",
  "45 s", "3.5 s", "250 ms";
- times (datetime): to the second, "2025-01-02 10:00:00" (with "UTC" when
  the column knows its zone);
- whole-number floats, all of them (counts that pandas made float): "270";
- other floats: one count of decimals per column, for three significant
  digits of its largest value (at most 4): 63.7 and 36.0 in one column,
  0.99 and 1.00 in another; a single number (`human_number`) gets three
  significant digits, whole from 100 up: "1234", "12.3", "0.123";
- missing values (NaN, NaT, None): "-", Linkerd's sign for "no data".
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

MISSING = "-"

_UNITS = (("d", 86400), ("h", 3600), ("min", 60), ("s", 1))


def human_duration(value: pd.Timedelta | float | None) -> str:
    """A duration (a Timedelta, or seconds) as a person says it: its two largest units.

    Seconds are truncated past the minute, as a countdown shows them:
    "12 h 5 min" is at least 12 h 5 min; a negative duration (overdue) gets a "-"."""
    if value is None or pd.isna(value):
        return MISSING
    seconds = value.total_seconds() if isinstance(value, pd.Timedelta) else float(value)
    sign = "-" if seconds < 0 else ""
    seconds = abs(seconds)
    if seconds < 1:
        return f"{sign}{seconds * 1000:.0f} ms"
    if seconds < 10:
        return f"{sign}{human_number(seconds)} s"
    whole = int(seconds) if seconds >= 60 else round(seconds)
    parts: list[str] = []
    for name, size in _UNITS:
        count, whole = divmod(whole, size)
        if count or parts:
            parts.append(f"{count} {name}" if count else "")
        if len(parts) == 2:
            break
    return sign + " ".join(p for p in parts if p)


def human_number(value: float | None) -> str:
    """A number to three significant digits, and whole from 100 up: 1234, 123, 12.3, 1.23, 0.123."""
    if value is None or pd.isna(value):
        return MISSING
    number = float(value)
    if math.isinf(number):
        return "inf" if number > 0 else "-inf"
    if number.is_integer() or abs(number) >= 100:
        return f"{number:.0f}"
    return f"{number:.3g}"


MAX_DECIMALS = 4


def column_decimals(largest: float) -> int:
    """Decimals for a column of floats: three significant digits of its largest value, 0 to 4.

    One count of decimals per column keeps the points aligned, so values
    compare at a glance (36.0 above 63.7, not 36 above 63.7)."""
    if not largest or math.isinf(largest) or math.isnan(largest):
        return 0
    return max(0, min(MAX_DECIMALS, 2 - math.floor(math.log10(largest))))


def human_time(value: pd.Timestamp | None) -> str:
    """A point in time to the second, with its zone's name when it has one."""
    if value is None or pd.isna(value):
        return MISSING
    text = value.strftime("%Y-%m-%d %H:%M:%S")
    return f"{text} {value.tzname()}" if value.tzinfo is not None else text


def _value(value: Any) -> str:
    """One cell of a column of mixed types (object dtype)."""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, pd.Timedelta):
        return human_duration(value)
    if isinstance(value, pd.Timestamp):
        return human_time(value)
    if isinstance(value, float):
        return human_number(value)
    if value is None or (not isinstance(value, (str, list, tuple, dict, set)) and pd.isna(value)):
        return MISSING
    return str(value)


def display_column(column: pd.Series) -> pd.Series:
    """One column as text by the rules in this module's docstring."""
    if pd.api.types.is_bool_dtype(column):
        return column.map(_value)
    if pd.api.types.is_timedelta64_dtype(column):
        return column.map(human_duration)
    if pd.api.types.is_datetime64_any_dtype(column):
        return column.map(human_time)
    if pd.api.types.is_integer_dtype(column):
        return column.map(lambda v: MISSING if pd.isna(v) else str(int(v)))
    if pd.api.types.is_float_dtype(column):
        present = column.dropna()
        present = present[~present.map(math.isinf)]
        if len(present) and all(float(v).is_integer() for v in present):
            return column.map(lambda v: MISSING if pd.isna(v) else human_number(v) if math.isinf(v) else str(int(v)))
        places = column_decimals(present.abs().max() if len(present) else 0.0)
        return column.map(lambda v: human_number(v) if pd.isna(v) or math.isinf(v) else f"{v:.{places}f}")
    return column.map(_value)


def for_display(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy of `frame` with every value as text for people; same columns, same index.

    Format only for display: keep computing with the original."""
    shown = pd.DataFrame({i: display_column(frame.iloc[:, i]) for i in range(frame.shape[1])}, index=frame.index)
    shown.columns = frame.columns
    return shown


def to_text(frame: pd.DataFrame, empty: str = "(none)") -> str:
    """The table as the CLI prints it: formatted for people, no index; `empty` when it has no rows."""
    if frame.empty:
        return empty
    return str(for_display(frame).to_string(index=False))
