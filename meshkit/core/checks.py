"""Reading plain JSON values with a field path in every complaint.

A snapshot is applied whole or not at all, and a NACK must tell the learner
where the problem is (`virtual_services[0].spec.http[1].timeout: expected a
number ...`). `Checker` reads one value at a time and raises `ConfigError`
with the path it was given; the parsers in `snapshot.py` and `rules.py` are
written as a walk over the document with these calls.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from meshkit.errors import ConfigError

# Text that ends up in headers and metric labels: printable, no controls.
TEXT = re.compile(r"[\x20-\x7e]{1,253}")
# Header names as the mesh compares them: lower-case tokens (RFC 9110 5.6.2, no '_').
HEADER_NAME = re.compile(r"[!#$%&'*+\-.^`|~0-9a-z]{1,253}")
# Header values the sidecar may write: visible ASCII, space and tab, possibly empty.
HEADER_VALUE = re.compile(r"[\x20-\x7e\t]{0,8192}")


class Checker:
    """Reads fields from plain JSON values, raising ConfigError with the path."""

    def __init__(self, name: str) -> None:
        self.name = name

    def fail(self, path: str, reason: str) -> ConfigError:
        return ConfigError("snapshot", self.name, path, reason)

    def mapping(self, value: Any, path: str) -> Mapping[str, Any]:
        if not isinstance(value, dict):
            raise self.fail(path, f"expected an object, got {type(value).__name__}")
        return value

    def items(self, value: Any, path: str) -> list[Any]:
        if not isinstance(value, list):
            raise self.fail(path, f"expected a list, got {type(value).__name__}")
        return value

    def get(self, obj: Mapping[str, Any], key: str, path: str) -> Any:
        if key not in obj:
            raise self.fail(f"{path}.{key}" if path else key, "required field is missing")
        return obj[key]

    def integer(self, value: Any, path: str, low: int, high: int) -> int:
        if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
            raise self.fail(path, f"expected an integer from {low} to {high}, got {value!r}")
        return value

    def number(self, value: Any, path: str, low: float, high: float) -> float:
        if not isinstance(value, (int, float)) or isinstance(value, bool) or not low <= value <= high:
            raise self.fail(path, f"expected a number from {low:g} to {high:g}, got {value!r}")
        return float(value)

    def optional_number(self, value: Any, path: str, low: float, high: float) -> float | None:
        return None if value is None else self.number(value, path, low, high)

    def boolean(self, value: Any, path: str) -> bool:
        if not isinstance(value, bool):
            raise self.fail(path, f"expected true or false, got {value!r}")
        return value

    def text(self, value: Any, path: str, pattern: re.Pattern[str] = TEXT) -> str:
        if not isinstance(value, str) or not pattern.fullmatch(value):
            raise self.fail(path, f"expected printable text matching {pattern.pattern}, got {value!r}")
        return value

    def optional_text(self, value: Any, path: str, pattern: re.Pattern[str] = TEXT) -> str | None:
        return None if value is None else self.text(value, path, pattern)

    def choice(self, value: Any, path: str, choices: tuple[str | None, ...]) -> Any:
        if value not in choices:
            shown = ", ".join("null" if c is None else c for c in choices)
            raise self.fail(path, f"expected one of {shown}, got {value!r}")
        return value

    def labels(self, value: Any, path: str) -> dict[str, str]:
        obj = self.mapping(value, path)
        return {self.text(k, path): self.text(v, f"{path}.{k}") for k, v in obj.items()}


RESOURCE_NAME = re.compile(r"[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?")
"""Names and namespaces of resources, and subset names: DNS-1123 subdomains."""


def resource_envelope(check: Checker, raw: Any, path: str, kind: str) -> tuple[str, str, Mapping[str, Any]]:
    """(namespace, name, spec) of a canonical resource of `kind` in a snapshot; the field path on error."""
    obj = check.mapping(raw, path)
    got = check.get(obj, "kind", path)
    if got != kind:
        raise check.fail(f"{path}.kind", f"expected {kind!r}, got {got!r}")
    namespace = check.text(check.get(obj, "namespace", path), f"{path}.namespace", RESOURCE_NAME)
    name = check.text(check.get(obj, "name", path), f"{path}.name", RESOURCE_NAME)
    return namespace, name, check.mapping(check.get(obj, "spec", path), f"{path}.spec")
