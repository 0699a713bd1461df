"""Service host names in resources, and what they expand to.

Istio reads a short host in a rule relative to the rule's own namespace, not
the service's: "When short names are used (e.g. reviews instead of
reviews.default.svc.cluster.local), Istio will interpret the short name based
on the namespace of the rule"
(https://istio.io/latest/docs/reference/config/networking/virtual-service/#VirtualService).
meshkit does the same, and also expands `reviews.default` and
`reviews.default.svc` the way Kubernetes DNS does for a pod
(docs/internals.md, "Names"), so every spelling a learner uses with curl also
works in a resource.

meshkit has no ServiceEntry or gateway, so every host a resource names must be
a service in the lab; wildcards (`*`, `*.example.com`), which Istio allows for
hosts outside the mesh, are refused with that reason.
"""

from __future__ import annotations

import re

from meshkit.names import CLUSTER_DOMAIN, fqdn

__all__ = ["CLUSTER_DOMAIN", "fqdn", "host_problem"]

_HOST = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?(\.[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?)*")


def host_problem(host: str) -> str | None:
    """Why `host` cannot name a service in a resource, or None."""
    if "*" in host:
        return (
            f"wildcard host {host!r} is not supported in meshkit: name a service, "
            "such as reviews or reviews.default.svc.cluster.local"
        )
    if len(host) > 253 or not _HOST.fullmatch(host):
        return (
            f"{host!r} is not a host name: use lowercase letters, digits, '-' and '.', "
            "such as reviews or reviews.default.svc.cluster.local (no port, no scheme)"
        )
    return None
