"""The demo app spec: the JSON file `python -m meshkit.demo --spec FILE` runs.

docs/internals.md ("Demo app spec") defines the keys the backend writes:
`service`, `version`, `namespace`, `host`, `port`, `latency_ms` {p50, p99},
`error_rate`, `calls` [{service, path, timeout_s, retries}] and `resolver`.
This module adds optional keys, each with a default that keeps a spec
written to the contract alone working:

- `calls[].port` (9080): the service port the call is addressed to, which
  goes into the URL or Host header (`ratings:9080`).
- `role` ("generic"): how the response body is composed, see roles.py;
  Bookinfo's four services each have one.
- `paths`: path templates the service answers (see paths.py); default
  `/`, `/<service>` and `/<service>/{id}`.
- `concurrent_calls` (false): make the downstream calls at once rather than
  in order.
- `star_color` (null): the colour of a Bookinfo reviews version's stars.
- `port` 0 asks the OS for a free port; the app prints the port it got.

Unknown keys are rejected: a typo in a spec should fail loudly, not be
ignored while the app runs with a default the learner did not mean.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NoReturn

from meshkit.names import dns_label_problem, dns_subdomain_problem, label_value_problem
from meshkit.demo.paths import template_problem
from meshkit.errors import ConfigError

SPEC_KIND = "demo app spec"
ROLES = ("generic", "productpage", "details", "reviews", "ratings")
DEFAULT_SERVICE_PORT = 9080
MAX_RETRIES = 10
MAX_TIMEOUT_S = 600.0
# Ten minutes: longer than any lesson waits, short enough to catch a unit slip
# (seconds typed where milliseconds were meant).
MAX_LATENCY_MS = 600_000.0

_COLOR = re.compile(r"[a-z]{1,20}")

_TOP_KEYS = frozenset(
    {"service", "version", "namespace", "host", "port", "latency_ms", "error_rate", "calls",
     "resolver", "role", "paths", "concurrent_calls", "star_color"}
)
_CALL_KEYS = frozenset({"service", "path", "timeout_s", "retries", "port"})
_LATENCY_KEYS = frozenset({"p50", "p99"})


@dataclass(frozen=True)
class CallSpec:
    """One downstream call, validated."""

    service: str
    path: str
    timeout_s: float
    retries: int
    port: int


@dataclass(frozen=True)
class AppSpec:
    """A validated demo app spec."""

    service: str
    version: str
    namespace: str
    host: str
    port: int
    p50_ms: float
    p99_ms: float
    error_rate: float
    calls: tuple[CallSpec, ...]
    resolver: str | None
    role: str
    paths: tuple[str, ...]
    concurrent_calls: bool
    star_color: str | None

    @property
    def default_instance(self) -> str:
        """The instance name when MESHKIT_INSTANCE does not give one."""
        return f"{self.service}-{self.version}"


class _Reader:
    """Typed access to one JSON object, raising ConfigError with a field path."""

    def __init__(self, doc: object, *, source: str, where: str, allowed: frozenset[str]) -> None:
        self.source = source
        self.where = where
        if not isinstance(doc, dict):
            self.fail("", f"must be a JSON object, not {type(doc).__name__}")
        unknown = sorted(set(doc) - allowed)
        if unknown:
            self.fail(unknown[0], f"unknown key; known keys are {', '.join(sorted(allowed))}")
        self.doc: dict[str, Any] = doc

    def path(self, key: str) -> str:
        return ".".join(part for part in (self.where, key) if part)

    def fail(self, key: str, reason: str) -> NoReturn:
        raise ConfigError(SPEC_KIND, self.source, self.path(key), reason)

    def raw(self, key: str, default: object) -> object:
        return self.doc.get(key, default)

    def text(self, key: str, problem: Callable[[object], str | None], default: str | None = None) -> str:
        """A string field that `problem` (a checker from meshkit.control.names or alike) accepts."""
        value = self.doc.get(key, default)
        if value is None:
            self.fail(key, "is required")
        reason = problem(value)
        if reason:
            self.fail(key, reason)
        return value  # type: ignore[no-any-return]

    def number(self, key: str, low: float, high: float, default: float | None = None,
               *, low_open: bool = False) -> float:
        value = self.doc.get(key, default)
        if value is None:
            self.fail(key, "is required")
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value:
            self.fail(key, f"must be a number, not {value!r}")
        too_low = value <= low if low_open else value < low
        if too_low or value > high:
            bound = f"more than {low:g}" if low_open else f"at least {low:g}"
            self.fail(key, f"must be {bound} and at most {high:g}, not {value!r}")
        return float(value)

    def integer(self, key: str, low: int, high: int, default: int | None = None) -> int:
        value = self.doc.get(key, default)
        if value is None:
            self.fail(key, "is required")
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            self.fail(key, f"must be a whole number from {low} to {high}, not {value!r}")
        return value  # type: ignore[return-value]

    def boolean(self, key: str, default: bool) -> bool:
        value = self.doc.get(key, default)
        if not isinstance(value, bool):
            self.fail(key, f"must be true or false, not {value!r}")
        return value  # type: ignore[return-value]


def _path_problem(value: object) -> str | None:
    if not isinstance(value, str):
        return f"must be a path string, not {value!r}"
    return template_problem(value)


def _color_problem(value: object) -> str | None:
    if not isinstance(value, str) or not _COLOR.fullmatch(value):
        return f"{value!r} is not a colour name such as 'black' or 'red'"
    return None


def _host(reader: _Reader) -> str:
    value = reader.raw("host", "127.0.0.1")
    try:
        return str(ipaddress.ip_address(value))  # type: ignore[arg-type]
    except ValueError:
        reader.fail("host", f"{value!r} is not an IP address to listen on")


def _call(doc: object, *, source: str, index: int) -> CallSpec:
    reader = _Reader(doc, source=source, where=f"calls[{index}]", allowed=_CALL_KEYS)
    return CallSpec(
        service=reader.text("service", dns_subdomain_problem),
        path=reader.text("path", _path_problem),
        timeout_s=reader.number("timeout_s", 0.0, MAX_TIMEOUT_S, low_open=True),
        retries=reader.integer("retries", 0, MAX_RETRIES, 0),
        port=reader.integer("port", 1, 65535, DEFAULT_SERVICE_PORT),
    )


def _calls(reader: _Reader) -> tuple[CallSpec, ...]:
    raw = reader.raw("calls", [])
    if not isinstance(raw, list):
        reader.fail("calls", "must be a list")
    calls = tuple(_call(item, source=reader.source, index=i) for i, item in enumerate(raw))  # type: ignore[arg-type]
    services = [call.service for call in calls]
    for index, service in enumerate(services):
        if service in services[:index]:
            reader.fail(f"calls[{index}].service", f"{service!r} is called twice; one call per service")
    return calls


def _paths(reader: _Reader, service: str) -> tuple[str, ...]:
    raw = reader.raw("paths", ["/", f"/{service}", f"/{service}/{{id}}"])
    if not isinstance(raw, list) or not raw or not all(isinstance(p, str) for p in raw):
        reader.fail("paths", "must be a non-empty list of path templates")
    for index, template in enumerate(raw):  # type: ignore[arg-type]
        problem = template_problem(template)
        if problem:
            reader.fail(f"paths[{index}]", problem)
    return tuple(raw)  # type: ignore[arg-type]


def _latency(reader: _Reader) -> tuple[float, float]:
    latency = _Reader(reader.raw("latency_ms", {}), source=reader.source,
                      where=reader.path("latency_ms"), allowed=_LATENCY_KEYS)
    p50 = latency.number("p50", 0.0, MAX_LATENCY_MS, 0.0)
    p99 = latency.number("p99", 0.0, MAX_LATENCY_MS, p50)
    if p99 < p50:
        latency.fail("p99", f"must be at least p50 ({p50:g} ms), not {p99:g}")
    return p50, p99


def parse_spec(doc: object, *, source: str) -> AppSpec:
    """Validate a decoded spec; `source` names it in errors (a file name)."""
    reader = _Reader(doc, source=source, where="", allowed=_TOP_KEYS)
    service = reader.text("service", dns_label_problem)
    role = reader.raw("role", "generic")
    if role not in ROLES:
        reader.fail("role", f"{role!r} is not one of {', '.join(ROLES)}")
    resolver = reader.raw("resolver", None)
    if resolver is not None and (not isinstance(resolver, str) or not resolver):
        reader.fail("resolver", "must be a file path or null")
    star_color = reader.raw("star_color", None)
    if star_color is not None:
        star_color = reader.text("star_color", _color_problem)
    p50, p99 = _latency(reader)
    return AppSpec(
        service=service,
        version=reader.text("version", label_value_problem),
        namespace=reader.text("namespace", dns_label_problem, "default"),
        host=_host(reader),
        port=reader.integer("port", 0, 65535),
        p50_ms=p50,
        p99_ms=p99,
        error_rate=reader.number("error_rate", 0.0, 1.0, 0.0),
        calls=_calls(reader),
        resolver=resolver,  # type: ignore[arg-type]
        role=role,  # type: ignore[arg-type]
        paths=_paths(reader, service),
        concurrent_calls=reader.boolean("concurrent_calls", False),
        star_color=star_color,  # type: ignore[arg-type]
    )


def load_spec(path: str) -> AppSpec:
    """Read and validate a spec file; every failure is a ConfigError naming the file."""
    try:
        with open(path, encoding="utf-8") as handle:
            doc = json.load(handle)
    except OSError as exc:
        raise ConfigError(SPEC_KIND, path, "", f"cannot read the file: {exc.strerror or exc}") from exc
    except (UnicodeDecodeError, ValueError) as exc:
        raise ConfigError(SPEC_KIND, path, "", f"not valid JSON: {exc}") from exc
    return parse_spec(doc, source=path)
