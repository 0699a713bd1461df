"""Rules for AuthorizationPolicy and LocalRateLimit that a schema cannot express.

Istio refuses a `from` without a source and a `to` without an operation
("`from.source` must not be empty"), because an empty one would match every
caller while looking like a restriction; meshkit does the same.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence

from meshkit.config.checks import header_name_problem, pattern_problem, port_text_problem
from meshkit.config.problems import Path, Problem
from meshkit.config.rate_limit import LocalRateLimit
from meshkit.config.security import WHEN_KEYS, AuthorizationPolicy, Condition, Operation, Source

MIN_FILL_INTERVAL_S = 0.05
_HEADER_KEY = re.compile(r"request\.headers\[(.*)\]")
_SOURCE_FIELDS = ("principals", "notPrincipals", "namespaces", "notNamespaces")
_OPERATION_FIELDS = ("hosts", "notHosts", "ports", "notPorts", "methods", "notMethods", "paths", "notPaths")


def authorization_policy_problems(policy: AuthorizationPolicy) -> Iterator[Problem]:
    for i, rule in enumerate(policy.spec.rules):
        at: Path = ("spec", "rules", i)
        for j, rule_from in enumerate(rule.from_):
            yield from _source_problems(rule_from.source, at + ("from", j, "source"))
        for j, rule_to in enumerate(rule.to):
            yield from _operation_problems(rule_to.operation, at + ("to", j, "operation"))
        for j, condition in enumerate(rule.when):
            yield from _condition_problems(condition, at + ("when", j))


def _source_problems(source: Source, at: Path) -> Iterator[Problem]:
    lists = (source.principals, source.not_principals, source.namespaces, source.not_namespaces)
    yield from _lists_problems(_SOURCE_FIELDS, lists, "source", at)


def _operation_problems(operation: Operation, at: Path) -> Iterator[Problem]:
    lists = (
        operation.hosts,
        operation.not_hosts,
        operation.ports,
        operation.not_ports,
        operation.methods,
        operation.not_methods,
        operation.paths,
        operation.not_paths,
    )
    yield from _lists_problems(_OPERATION_FIELDS, lists, "operation", at)
    for field, ports in (("ports", operation.ports), ("notPorts", operation.not_ports)):
        for i, port in enumerate(ports):
            if problem := port_text_problem(port):
                yield Problem(at + (field, i), problem)


def _lists_problems(fields: Sequence[str], lists: Sequence[list[str]], what: str, at: Path) -> Iterator[Problem]:
    if not any(lists):
        yield Problem(at, f"an empty {what} would match everything; set at least one of {', '.join(fields)}")
    for field, values in zip(fields, lists):
        for i, value in enumerate(values):
            if problem := pattern_problem(value):
                yield Problem(at + (field, i), problem)


def _condition_problems(condition: Condition, at: Path) -> Iterator[Problem]:
    header = _HEADER_KEY.fullmatch(condition.key)
    if header is not None:
        if problem := header_name_problem(header.group(1)):
            yield Problem(at + ("key",), problem)
    elif condition.key not in WHEN_KEYS:
        yield Problem(at + ("key",), f"key {condition.key!r} is not supported in meshkit; use {', '.join(WHEN_KEYS)}")
    if not condition.values and not condition.not_values:
        yield Problem(at, "set values, notValues or both")
    for field, values in (("values", condition.values), ("notValues", condition.not_values)):
        for i, value in enumerate(values):
            check = port_text_problem if condition.key == "destination.port" else pattern_problem
            if problem := check(value):
                yield Problem(at + (field, i), problem)


def local_rate_limit_problems(limit: LocalRateLimit) -> Iterator[Problem]:
    if limit.spec.token_bucket.fill_interval < MIN_FILL_INTERVAL_S:
        yield Problem(
            ("spec", "tokenBucket", "fillInterval"),
            "must be at least 50ms, as Envoy's token bucket requires",
        )
    for i, path in enumerate(limit.spec.paths):
        if problem := pattern_problem(path):
            yield Problem(("spec", "paths", i), problem)
