"""Resources back to YAML that Istio (and kubectl) accept as they are.

What a learner built in the lab should work on a real cluster, so export
writes Istio's current apiVersions (networking.istio.io/v1,
security.istio.io/v1), Istio's camelCase field names, durations as Istio
strings, and leaves out every unset field. Loading the output back gives
equal models (tests/unit/test_config_export.py checks every fixture).

LocalRateLimit has no Istio equivalent: it is left out with a comment saying
that Istio needs an EnvoyFilter for local rate limiting.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import yaml

from meshkit.config.rate_limit import LocalRateLimit
from meshkit.config.schema import Resource

ENVOYFILTER_NOTE = (
    "# LocalRateLimit {namespace}/{name} is not exported: Istio has no local rate limit resource;\n"
    "# it needs an EnvoyFilter that adds Envoy's local_ratelimit filter\n"
    "# (https://istio.io/latest/docs/tasks/policy-enforcement/rate-limit/#local-rate-limit).\n"
)


def to_manifest(resource: Resource) -> dict[str, Any]:
    """The resource as a Kubernetes object: apiVersion, kind, metadata, spec."""
    body = resource.model_dump(mode="json", by_alias=True)
    return {
        "apiVersion": resource.EXPORT_API_VERSION,
        "kind": resource.KIND,
        "metadata": body["metadata"],
        "spec": body.get("spec", {}),
    }


def to_istio_yaml(resources: Iterable[Resource]) -> str:
    """Multi-document YAML for `kubectl apply -f`, in the order given."""
    parts: list[str] = []
    for resource in resources:
        if isinstance(resource, LocalRateLimit):
            parts.append(ENVOYFILTER_NOTE.format(namespace=resource.namespace, name=resource.name))
        else:
            parts.append("---\n" + yaml.safe_dump(to_manifest(resource), sort_keys=False, default_flow_style=False))
    return "".join(parts)
