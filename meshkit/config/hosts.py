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

meshkit has no ServiceEntry, so every host the sidecars route must be a
service in the lab; wildcards (`*`, `*.example.com`), which Istio allows for
hosts outside the mesh, are refused with that reason. Hosts routed only at
the ingress gateway are what clients ask for and may be anything
(meshkit/config/routing_rules.py).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from meshkit.names import CLUSTER_DOMAIN, fqdn

__all__ = ["CLUSTER_DOMAIN", "fqdn", "host_problem", "version_service"]

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


def version_service(host: str, labels_by_host: Mapping[str, Sequence[Mapping[str, str]]]) -> tuple[str, str] | None:
    """(service host, version) that a Service host `SERVICE-VERSION` stands for, or None.

    meshkit has no Service kind: a lab's services are the ones its workloads
    register. Istio's Gateway API samples split traffic between per-version
    Services (reviews-v1, reviews-v2) that its bookinfo-versions.yaml
    defines as "the workloads of reviews labelled version: v2"; meshkit reads
    those names the same way, so the samples work unchanged. The service
    part must be a service in the lab (`labels_by_host` maps each fully
    qualified host to its workloads' label sets) with a workload labelled
    that version; a real service of that name always wins.
    """
    if host in labels_by_host:
        return None
    name, dot, rest = host.partition(".")
    if not dot:
        return None
    for cut in range(len(name) - 1, 0, -1):
        if name[cut] != "-":
            continue
        service, version = f"{name[:cut]}.{rest}", name[cut + 1 :]
        if any(labels.get("version") == version for labels in labels_by_host.get(service, ())):
            return service, version
    return None
