"""Names: the rules they follow, and what a service's short name means.

Names end up in URLs, SPIFFE identities, hostnames and HTTP headers, so they
follow Kubernetes' rules, which also keep out every control byte (CR, LF, NUL)
that could split a header or forge an identity.

A service is known inside the mesh by `<name>.<namespace>.svc.cluster.local`,
and the shorter spellings mean what Kubernetes DNS makes them mean for a pod
in a given namespace (docs/internals.md, "Names"). Every part of meshkit that
reads a host (the backends, the demo apps, the config checks) uses `fqdn`, so
a name means the same everywhere. This module imports nothing heavy: the
sidecar and the demo apps import it at start-up.
"""

from __future__ import annotations

import re

_DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")
_DNS_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_LABEL_NAME = re.compile(r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_KIND = re.compile(r"[A-Z][A-Za-z0-9]{0,62}")

CLUSTER_DOMAIN = "svc.cluster.local"


def service_host(name: str, namespace: str) -> str:
    """The fully qualified host of service `name` in `namespace`."""
    return f"{name}.{namespace}.{CLUSTER_DOMAIN}"


def fqdn(host: str, namespace: str) -> str:
    """The fully qualified service host that `host`, used from `namespace`, means.

    A bare name is a service in `namespace`; `name.ns` and `name.ns.svc` are
    completed as the pod's DNS search path completes them; anything else is
    taken as written. The caller normalises case, ports and trailing dots.
    """
    labels = host.split(".")
    if host.endswith("." + CLUSTER_DOMAIN):
        return host
    if len(labels) == 1:
        return service_host(host, namespace)
    if len(labels) == 2:
        return f"{host}.{CLUSTER_DOMAIN}"
    if len(labels) == 3 and labels[2] == "svc":
        return f"{host}.cluster.local"
    return host


def _pattern_problem(value: object, pattern: re.Pattern[str], max_len: int, failure: str) -> str | None:
    """Why `value` is not a string of at most `max_len` matching `pattern` (`failure` explains), or None."""
    if not isinstance(value, str):
        return f"must be a string, got {type_name(value)}"
    if len(value) > max_len or not pattern.fullmatch(value):
        return f"{value!r} {failure}"
    return None


def dns_label_problem(value: object) -> str | None:
    """Why `value` is not a DNS label (namespaces, instances, services), or None."""
    return _pattern_problem(
        value, _DNS_LABEL, 63,
        "is not a valid name: use at most 63 lowercase letters, digits and '-', starting and ending with a letter or digit",
    )


def dns_subdomain_problem(value: object) -> str | None:
    """Why `value` is not a DNS subdomain (resource names may contain dots), or None."""
    return _pattern_problem(
        value, _DNS_SUBDOMAIN, 253,
        "is not a valid name: use at most 253 lowercase letters, digits, '-' and '.', "
        "starting and ending with a letter or digit",
    )


def kind_problem(value: object) -> str | None:
    """Why `value` is not a resource kind such as VirtualService, or None."""
    return _pattern_problem(value, _KIND, 63, "is not a kind: expected a CamelCase name such as VirtualService")


def label_value_problem(value: object) -> str | None:
    """Why `value` is not a label value (a workload version such as v2 or 1.0), or None."""
    return _pattern_problem(
        value, _LABEL_NAME, 63, "is not a valid label value: at most 63 letters, digits, '-', '_' and '.'"
    )


def label_map_problem(value: object, free_values: bool = False) -> tuple[str, str] | None:
    """(key, reason) for the first bad entry of a label map, ('', reason) if not a map, or None.

    Annotations (`free_values`) may hold any text except control bytes; label
    values are selectors and follow the stricter label rule.
    """
    if not isinstance(value, dict):
        return "", f"must be a mapping of strings, got {type_name(value)}"
    for key, item in value.items():
        prefix, _, name = key.rpartition("/")
        if (prefix and dns_subdomain_problem(prefix)) or not _LABEL_NAME.fullmatch(name):
            return key, f"{key!r} is not a valid label key"
        if not isinstance(item, str):
            return key, f"must be a string, got {type_name(item)}"
        if free_values:
            if _CONTROL.search(item):
                return key, "must not contain control characters"
        elif item and (problem := label_value_problem(item)):
            return key, problem
    return None


def type_name(value: object) -> str:
    """The JSON name of a value's type, the word a learner sees in their YAML."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "list"
    if isinstance(value, dict):
        return "mapping"
    return type(value).__name__
