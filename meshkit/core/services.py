"""Which service does a request's host name mean?

The sidecar answers the way Kubernetes DNS would for a pod in the caller's
namespace, whose search path is `<ns>.svc.cluster.local svc.cluster.local
cluster.local`: a bare `reviews` means `reviews.<caller ns>`, while
`reviews.default`, `reviews.default.svc` and
`reviews.default.svc.cluster.local` name the namespace themselves. Matching
ignores ASCII case, a `:port` suffix and a trailing dot.

All spellings are computed once per snapshot into one dict, so resolving a
request costs a normalisation and a dict lookup.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TypeVar

from meshkit.core.snapshot import Service
from meshkit.names import CLUSTER_DOMAIN

T = TypeVar("T")


def normalize_host(authority: str) -> str:
    """The host part of an authority, lower-case, without port or trailing dot.

    An IP literal (`[::1]:80`) keeps its brackets: it is never a service name.
    """
    host = authority
    if host.startswith("["):
        end = host.find("]")
        host = host[: end + 1] if end != -1 else host
    else:
        colon = host.find(":")
        if colon != -1:
            host = host[:colon]
    return host.rstrip(".").lower()


def spellings(name: str, namespace: str, caller_namespace: str) -> list[str]:
    """Every host name that resolves to this service from the caller's namespace."""
    names = [
        f"{name}.{namespace}.{CLUSTER_DOMAIN}",
        f"{name}.{namespace}.svc",
        f"{name}.{namespace}",
    ]
    if namespace == caller_namespace:
        names.append(name)
    return names


def build_index(pairs: Iterable[tuple[Service, T]], caller_namespace: str) -> dict[str, T]:
    """Map every spelling of every service to its value.

    Each Service comes paired with what the caller wants back for it (the
    Service itself, or a routing entry built from it).
    """
    index: dict[str, T] = {}
    for service, value in pairs:
        for spelling in spellings(service.name, service.namespace, caller_namespace):
            index[spelling] = value
    return index


def resolve(index: Mapping[str, T], authority: str) -> T | None:
    """The value for the service an authority names, or None (Envoy's NR)."""
    return index.get(normalize_host(authority))
