"""What is wrong with a resource, and where: the field path and a plain reason.

A `Problem` is the common currency of every check (schema, rules, context):
a path such as ("spec", "http", 0, "route", 1, "weight"), written
`spec.http[0].route[1].weight`, and a reason a learner understands. It
becomes a ConfigError (meshkit/errors.py) at the edge, where the resource's
kind and name are known.

pydantic's own messages ("Input should be a valid integer") are rewritten
here in the learner's terms: the JSON type names they see in YAML, and the
value they wrote.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError
from pydantic_core import ErrorDetails

from meshkit.names import type_name
from meshkit.errors import ConfigError

PathPart = str | int
Path = tuple[PathPart, ...]

QUOTE_HINT = " (put quotes around values that must stay text, such as '1.0', 'yes' or '007')"


@dataclass(frozen=True)
class Problem:
    """One reason a resource is invalid (or, as a warning, suspicious)."""

    path: Path
    reason: str

    @property
    def where(self) -> str:
        return format_path(self.path)

    def error(self, kind: str, name: str) -> ConfigError:
        return ConfigError(kind, name, self.where, self.reason)


def format_path(parts: Sequence[PathPart]) -> str:
    """`spec.http[0].route[1].weight`: list indexes in brackets, names after dots."""
    text = ""
    for part in parts:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text


def problem_from_validation_error(exc: ValidationError, prefix: Path = ()) -> Problem:
    """The first error pydantic found, as a Problem with a learner's reason."""
    detail = exc.errors()[0]
    path = prefix + tuple(detail["loc"])
    context = detail.get("ctx") or {}
    if "field" in context:
        path += (context["field"],)
    return Problem(path, _reason(detail))


def _reason(detail: ErrorDetails) -> str:
    kind = detail["type"]
    value: Any = detail.get("input")
    context = detail.get("ctx") or {}
    got = f"got {type_name(value)} {value!r}" if not isinstance(value, (dict, list)) else f"got {type_name(value)}"
    if kind == "meshkit":
        return str(context["reason"])
    if kind == "missing":
        return "required field is missing"
    if kind == "string_type":
        return f"must be a string, {got}" + (QUOTE_HINT if isinstance(value, (bool, int, float)) else "")
    if kind in ("int_type", "int_parsing", "int_from_float"):
        return f"must be a whole number, {got}"
    if kind in ("float_type", "float_parsing"):
        return f"must be a number, {got}"
    if kind in ("bool_type", "bool_parsing"):
        return f"must be true or false, {got}"
    if kind in ("list_type", "tuple_type"):
        return f"must be a list, {got}"
    if kind in ("dict_type", "model_type", "model_attributes_type"):
        return f"must be a mapping, {got}"
    if kind == "too_long":
        return f"must have at most {context['max_length']} items, got {context['actual_length']}"
    if kind == "greater_than_equal":
        return f"must be at least {_number(context['ge'])}, got {value!r}"
    if kind == "less_than_equal":
        return f"must be at most {_number(context['le'])}, got {value!r}"
    return str(detail["msg"])


def _number(bound: object) -> str:
    """100.0 reads as 100 in a message about a percentage."""
    if isinstance(bound, float) and bound.is_integer():
        return str(int(bound))
    return str(bound)
