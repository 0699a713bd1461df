"""Rules for AuthorizationPolicy and LocalRateLimit that a schema cannot express.

Istio refuses a `from` without a source and a `to` without an operation
("`from.source` must not be empty"), because an empty one would match every
caller while looking like a restriction; meshkit does the same.

`serviceAccounts` follow Istio's CRD: NAMESPACE/NAME (or NAME, read in the
policy's namespace), matched exactly, at most 16 of at most 320 characters,
and never beside principals or namespaces in one source ("Cannot set
serviceAccounts with namespaces or principals"), since the two would say
the same thing twice and could contradict each other.

The dry-run annotation takes "true" or "false" only: Istio parses other
spellings leniently and enforces a policy whose value it cannot read, so a
typo there would enforce what the learner meant to try; meshkit refuses it.
Istio dry-runs ALLOW and DENY policies only.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence

from meshkit.config.checks import header_name_problem, pattern_problem, port_text_problem
from meshkit.config.problems import Path, Problem
from meshkit.config.rate_limit import LocalRateLimit
from meshkit.config.security import DRY_RUN_ANNOTATION, WHEN_KEYS, AuthorizationPolicy, Condition, Operation, Source
from meshkit.names import dns_label_problem, dns_subdomain_problem

MIN_FILL_INTERVAL_S = 0.05
MAX_SERVICE_ACCOUNTS = 16  # Istio's CRD: maxItems 16, maxLength 320
MAX_SERVICE_ACCOUNT_CHARS = 320
DRY_RUN_VALUES = ("true", "false")
DRY_RUN_ACTIONS = ("ALLOW", "DENY")
_HEADER_KEY = re.compile(r"request\.headers\[(.*)\]")
_SOURCE_FIELDS = ("principals", "notPrincipals", "namespaces", "notNamespaces", "serviceAccounts", "notServiceAccounts")
_OPERATION_FIELDS = ("hosts", "notHosts", "ports", "notPorts", "methods", "notMethods", "paths", "notPaths")


def authorization_policy_problems(policy: AuthorizationPolicy) -> Iterator[Problem]:
    yield from _dry_run_problems(policy)
    for i, rule in enumerate(policy.spec.rules):
        at: Path = ("spec", "rules", i)
        for j, rule_from in enumerate(rule.from_):
            yield from _source_problems(rule_from.source, at + ("from", j, "source"))
        for j, rule_to in enumerate(rule.to):
            yield from _operation_problems(rule_to.operation, at + ("to", j, "operation"))
        for j, condition in enumerate(rule.when):
            yield from _condition_problems(condition, at + ("when", j))


def _dry_run_problems(policy: AuthorizationPolicy) -> Iterator[Problem]:
    value = policy.metadata.annotations.get(DRY_RUN_ANNOTATION)
    if value is None:
        return
    at: Path = ("metadata", f'annotations["{DRY_RUN_ANNOTATION}"]')
    if value not in DRY_RUN_VALUES:
        yield Problem(at, f'must be "true" (evaluate and report, never enforce) or "false" (enforce), got {value!r}')
    elif value == "true" and policy.spec.action not in DRY_RUN_ACTIONS:
        yield Problem(at, f"a dry run applies to ALLOW and DENY policies only, as in Istio, not {policy.spec.action}")


def _source_problems(source: Source, at: Path) -> Iterator[Problem]:
    identities = (source.principals, source.not_principals, source.namespaces, source.not_namespaces)
    accounts = (source.service_accounts, source.not_service_accounts)
    if not any(identities) and not any(accounts):
        yield _empty(_SOURCE_FIELDS, "source", at)
    yield from _pattern_problems(_SOURCE_FIELDS, identities, at)
    if any(accounts) and any(identities):
        field = _SOURCE_FIELDS[4] if source.service_accounts else _SOURCE_FIELDS[5]
        yield Problem(at + (field,), "Cannot set serviceAccounts with namespaces or principals (Istio's rule): "
                      "name the caller one way")
    for field, values in zip(_SOURCE_FIELDS[4:], accounts):
        if len(values) > MAX_SERVICE_ACCOUNTS:
            yield Problem(at + (field,), f"at most {MAX_SERVICE_ACCOUNTS} service accounts, as Istio's CRD allows; got {len(values)}")
        for i, value in enumerate(values):
            if problem := service_account_problem(value):
                yield Problem(at + (field, i), problem)


def service_account_problem(value: str) -> str | None:
    """Why `value` is not a service account as Istio's Source takes it (NAMESPACE/NAME or NAME), or None."""
    if len(value) > MAX_SERVICE_ACCOUNT_CHARS:
        return f"at most {MAX_SERVICE_ACCOUNT_CHARS} characters, as Istio's CRD allows"
    if "*" in value:
        return f"service accounts match exactly, without wildcards; got {value!r}"
    namespace, slash, name = value.rpartition("/")
    if slash and (problem := dns_label_problem(namespace)):
        return f"write NAMESPACE/NAME: the namespace {problem}"
    if problem := dns_subdomain_problem(name):
        return f"write NAMESPACE/NAME: the name {problem}"
    return None


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
        yield _empty(fields, what, at)
    yield from _pattern_problems(fields, lists, at)


def _empty(fields: Sequence[str], what: str, at: Path) -> Problem:
    return Problem(at, f"an empty {what} would match everything; set at least one of {', '.join(fields)}")


def _pattern_problems(fields: Sequence[str], lists: Sequence[list[str]], at: Path) -> Iterator[Problem]:
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
