"""Durations as Istio writes them: "7s", "300ms", "1.5s", "2m", "1h30m".

Istio's API types durations as protobuf Durations but documents and accepts
the Go spelling, "1h/1m/1s/1ms", and its validation insists on at least 1ms
and on millisecond precision ("duration must be greater than 1ms", "only
durations to ms precision are supported"). meshkit keeps the same rules, so
a value accepted here is accepted by Istio, and holds the result as float
seconds because that is what every timer in meshkit wants.
"""

from __future__ import annotations

import re
from decimal import Decimal

from meshkit.names import type_name

EXAMPLES = "such as '1.5s', '300ms' or '2m'"

_UNIT_MS = {"h": Decimal(3_600_000), "m": Decimal(60_000), "s": Decimal(1000), "ms": Decimal(1)}
# "ms" must be tried before "m" so that "300ms" is not read as 300 minutes and a stray "s".
_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ms|h|m|s)")


class DurationError(ValueError):
    """A duration string a learner must fix; the message says how."""


def parse_duration(text: object) -> float:
    """Seconds in an Istio duration string, or DurationError saying what is wrong."""
    if not isinstance(text, str):
        raise DurationError(f"must be a duration string {EXAMPLES}, got {type_name(text)}")
    if text.startswith("-"):
        raise DurationError(f"{text!r} is negative; a duration must be positive, {EXAMPLES}")
    parts = _PART.findall(text)
    if not parts or "".join(number + unit for number, unit in parts) != text:
        raise DurationError(
            f"{text!r} is not a duration: write a number and a unit (h, m, s or ms), {EXAMPLES}"
        )
    total_ms = sum((Decimal(number) * _UNIT_MS[unit] for number, unit in parts), Decimal(0))
    if total_ms < 1:
        raise DurationError(f"{text!r} is too short: a duration must be at least 1ms")
    if total_ms != total_ms.to_integral_value():
        raise DurationError(f"{text!r} is finer than a millisecond: Istio supports whole milliseconds only")
    return float(total_ms / 1000)


def format_duration(seconds: float) -> str:
    """The shortest Istio spelling of a whole number of milliseconds ("7s", "300ms", "1.5s")."""
    ms = round(seconds * 1000)
    if ms < 1000:
        return f"{ms}ms"
    return f"{(Decimal(ms) / 1000).normalize():f}s"
