"""The small value rules: durations, RE2-compatible regexes, hosts, policy patterns, field paths."""

from __future__ import annotations

import pytest

from meshkit.config.checks import header_name_problem, pattern_problem, port_text_problem
from meshkit.config.durations import DurationError, format_duration, parse_duration
from meshkit.config.hosts import fqdn, host_problem
from meshkit.config.problems import format_path
from meshkit.config.regexes import regex_problem


@pytest.mark.parametrize(
    "text, seconds",
    [("7s", 7.0), ("300ms", 0.3), ("1.5s", 1.5), ("2m", 120.0), ("1h30m", 5400.0), (".5s", 0.5), ("1ms", 0.001)],
)
def test_durations_read_as_seconds(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize(
    "value, words",
    [
        ("-1s", "negative"),
        ("1x", "not a duration"),
        ("10", "not a duration"),
        ("1 s", "not a duration"),
        ("1m30", "not a duration"),
        ("", "not a duration"),
        ("0s", "at least 1ms"),
        ("0.5ms", "at least 1ms"),
        ("1.0005s", "finer than a millisecond"),
        (10, "got number"),
        (None, "got null"),
    ],
)
def test_bad_durations_say_what_is_wrong(value: object, words: str) -> None:
    with pytest.raises(DurationError) as caught:
        parse_duration(value)
    assert words in str(caught.value)


@pytest.mark.parametrize("seconds, text", [(7.0, "7s"), (0.3, "300ms"), (1.5, "1.5s"), (0.001, "1ms"), (61.25, "61.25s")])
def test_durations_are_written_the_short_istio_way(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("pattern", [r"^/api/v[0-9]+$", "(?i)jason", r"[(?=]", r"\(?=x\)", "(?P<id>[0-9]+)", "a|b"])
def test_re2_compatible_regexes_pass(pattern: str) -> None:
    assert regex_problem(pattern) is None


@pytest.mark.parametrize(
    "pattern, words",
    [
        (r"(a)\1", "backreferences"),
        (r"(?P<n>a)(?P=n)", "backreferences"),
        ("x(?=y)", "lookahead and lookbehind"),
        ("(?<!y)z", "negative lookahead"),
        ("x(?:a|(?!b))", "negative lookahead"),
        ("(?>a)", "atomic groups"),
        ("a*+", "possessive"),
        ("(a)(?(1)b|c)", "conditionals"),
        (r"a\Z", r"\Z"),
        ("(?x) a b", "verbose"),
        ("([a-", "does not compile"),
    ],
)
def test_regexes_re2_cannot_run_are_refused(pattern: str, words: str) -> None:
    problem = regex_problem(pattern)
    assert problem is not None and words in problem


@pytest.mark.parametrize(
    "host, namespace, full",
    [
        ("reviews", "default", "reviews.default.svc.cluster.local"),
        ("reviews", "shop", "reviews.shop.svc.cluster.local"),
        ("reviews.default", "shop", "reviews.default.svc.cluster.local"),
        ("reviews.default.svc", "shop", "reviews.default.svc.cluster.local"),
        ("reviews.default.svc.cluster.local", "shop", "reviews.default.svc.cluster.local"),
        ("a.b.c.d", "shop", "a.b.c.d"),
    ],
)
def test_short_hosts_expand_as_kubernetes_dns_does(host: str, namespace: str, full: str) -> None:
    assert fqdn(host, namespace) == full


@pytest.mark.parametrize("host", ["*", "*.example.com", "Reviews", "reviews:9080", "http://reviews", "", "a..b"])
def test_hosts_that_name_no_service_are_refused(host: str) -> None:
    assert host_problem(host) is not None


@pytest.mark.parametrize("value", ["*", "/api/*", "*.html", "cluster.local/ns/default/sa/x", "GET"])
def test_policy_patterns_that_istio_reads(value: str) -> None:
    assert pattern_problem(value) is None


@pytest.mark.parametrize("value", ["", "/a*b", "**", "*a*", "a\nb", "spiffe://td/ns/victim\x00evil"])
def test_policy_patterns_that_istio_does_not_read(value: str) -> None:
    assert pattern_problem(value) is not None


@pytest.mark.parametrize("value, ok", [("9080", True), ("1", True), ("65535", True), ("0", False), ("65536", False),
                                       ("http", False), ("+80", False), ("\uff18\uff10", False)])
def test_ports_in_policies(value: str, ok: bool) -> None:
    assert (port_text_problem(value) is None) is ok


@pytest.mark.parametrize("name, lowercase, ok", [("end-user", True, True), ("End-User", True, False),
                                                 ("End-User", False, True), ("bad name", False, False),
                                                 ("x:y", False, False), ("", False, False)])
def test_header_names(name: str, lowercase: bool, ok: bool) -> None:
    assert (header_name_problem(name, lowercase=lowercase) is None) is ok


def test_field_paths_read_as_in_yaml() -> None:
    assert format_path(("spec", "http", 0, "route", 1, "weight")) == "spec.http[0].route[1].weight"
    assert format_path(("spec", "http", 0, "match", 0, "headers", "end-user")) == "spec.http[0].match[0].headers.end-user"
    assert format_path(()) == ""
