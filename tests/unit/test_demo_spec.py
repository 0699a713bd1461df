"""The demo app spec: the contract's example parses, bad input names the field."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from meshkit.demo.paths import fill_path, match_path, template_problem
from meshkit.demo.spec import load_spec, parse_spec
from meshkit.errors import ConfigError

CONTRACT_EXAMPLE: dict[str, Any] = {
    "service": "reviews", "version": "v2", "namespace": "default",
    "host": "127.0.0.1", "port": 41300,
    "latency_ms": {"p50": 3.0, "p99": 12.0},
    "error_rate": 0.0,
    "calls": [{"service": "ratings", "path": "/ratings/{id}", "timeout_s": 10.0, "retries": 0}],
    "resolver": "/path/to/lab/dns.json",
}


def test_the_contract_example_parses_with_defaults_for_the_extensions() -> None:
    spec = parse_spec(CONTRACT_EXAMPLE, source="spec.json")
    assert (spec.service, spec.version, spec.port, spec.p50_ms, spec.p99_ms) == ("reviews", "v2", 41300, 3.0, 12.0)
    assert spec.calls[0].port == 9080 and spec.calls[0].retries == 0
    assert spec.role == "generic" and spec.concurrent_calls is False and spec.star_color is None
    assert spec.paths == ("/", "/reviews", "/reviews/{id}")
    assert spec.default_instance == "reviews-v2"


def test_a_minimal_spec_needs_only_service_version_and_port() -> None:
    spec = parse_spec({"service": "x", "version": "v1", "port": 0}, source="s")
    assert (spec.namespace, spec.host, spec.p50_ms, spec.error_rate, spec.calls, spec.resolver) == (
        "default", "127.0.0.1", 0.0, 0.0, (), None)


def _with(**changes: Any) -> dict[str, Any]:
    return {**CONTRACT_EXAMPLE, **changes}


@pytest.mark.parametrize(("doc", "where", "reason"), [
    ([], "", "must be a JSON object"),
    (_with(colour="red"), "colour", "unknown key"),
    (_with(service="Reviews"), "service", "is not a valid name"),
    ({"version": "v1", "port": 1}, "service", "is required"),
    (_with(port=True), "port", "whole number"),
    (_with(port=70000), "port", "whole number from 0 to 65535"),
    (_with(host="localhost"), "host", "not an IP address"),
    (_with(error_rate=2), "error_rate", "at most 1"),
    (_with(error_rate=float("nan")), "error_rate", "must be a number"),
    (_with(latency_ms={"p50": 5, "p99": 1}), "latency_ms.p99", "at least p50"),
    (_with(latency_ms={"p50": "5"}), "latency_ms.p50", "must be a number"),
    (_with(latency_ms={"median": 5}), "latency_ms.median", "unknown key"),
    (_with(calls={"service": "x"}), "calls", "must be a list"),
    (_with(calls=[{"service": "ratings", "path": "ratings", "timeout_s": 1}]), "calls[0].path", "must start with '/'"),
    (_with(calls=[{"service": "ratings", "path": "/r/{pid}", "timeout_s": 1}]), "calls[0].path", "only placeholder"),
    (_with(calls=[{"service": "ratings", "path": "/", "timeout_s": 0}]), "calls[0].timeout_s", "more than 0"),
    (_with(calls=[{"service": "ratings", "path": "/", "timeout_s": 1, "retries": -1}]), "calls[0].retries", "whole"),
    (_with(calls=[{"service": "a", "path": "/", "timeout_s": 1}, {"service": "a", "path": "/", "timeout_s": 1}]),
     "calls[1].service", "called twice"),
    (_with(role="frontend"), "role", "is not one of"),
    (_with(paths=[]), "paths", "non-empty list"),
    (_with(paths=["/a b"]), "paths[0]", "spaces or control characters"),
    (_with(resolver=3), "resolver", "file path or null"),
    (_with(concurrent_calls="yes"), "concurrent_calls", "true or false"),
    (_with(star_color="Black!"), "star_color", "colour name"),
])
def test_bad_specs_are_rejected_naming_the_field(doc: Any, where: str, reason: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_spec(doc, source="spec.json")
    assert caught.value.kind == "demo app spec" and caught.value.name == "spec.json"
    assert caught.value.path == where
    assert reason in caught.value.reason


def test_load_spec_names_the_file_when_it_is_missing_or_not_json(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read the file"):
        load_spec(str(tmp_path / "absent.json"))
    broken = tmp_path / "broken.json"
    broken.write_text('{"service": ')
    with pytest.raises(ConfigError, match="broken.json.*not valid JSON"):
        load_spec(str(broken))
    good = tmp_path / "good.json"
    good.write_text(json.dumps(CONTRACT_EXAMPLE))
    assert load_spec(str(good)).service == "reviews"


@pytest.mark.parametrize(("path", "expected"), [
    ("/reviews/0", "0"),
    ("/reviews/42", "42"),
    ("/reviews/007", "7"),
    ("/productpage", "0"),
    ("/", "0"),
    ("/reviews/abc", None),
    ("/reviews/\u0663", None),
    ("/reviews/1234567890", None),
    ("/reviews/", None),
    ("/reviews/1/x", None),
    ("/productpage/", None),
    ("/other", None),
])
def test_match_path_finds_the_product_id(path: str, expected: str | None) -> None:
    assert match_path(("/productpage", "/", "/reviews/{id}"), path) == expected


def test_fill_path_passes_the_id_on_and_templates_are_checked() -> None:
    assert fill_path("/ratings/{id}", "3") == "/ratings/3"
    assert fill_path("/cart", "3") == "/cart"
    assert template_problem("/ratings/{id}") is None
    assert template_problem("/ratings/x{id}") is not None
    assert template_problem("/a\x00") is not None
