"""Structure check for config resources (VirtualService, DestinationRule, ...).

`check_resource` is the single gate every resource passes before the store
accepts it. Today it checks the Kubernetes envelope only; full Istio-shaped
validation of `spec` plugs in here, so the admin API and its error format do
not change when it does.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from meshkit.names import (
    dns_label_problem,
    dns_subdomain_problem,
    kind_problem,
    label_map_problem,
    type_name,
)
from meshkit.errors import ConfigError

DEFAULT_NAMESPACE = "default"
TOP_LEVEL_FIELDS = ("apiVersion", "kind", "metadata", "spec")
METADATA_FIELDS = ("name", "namespace", "labels", "annotations")


class ResourceKey(NamedTuple):
    """Where a resource lives in the store: one per (kind, namespace, name)."""

    kind: str
    namespace: str
    name: str

    @property
    def text(self) -> str:
        """The store key and URL tail, `kind/namespace/name`."""
        return f"{self.kind}/{self.namespace}/{self.name}"


def check_resource(obj: Any) -> ResourceKey:
    """Accept a resource's structure or raise ConfigError naming kind, name, field and reason.

    A missing metadata.namespace means "default", as with kubectl.
    """
    if not isinstance(obj, dict):
        raise ConfigError("resource", "?", "", f"must be a mapping, got {type_name(obj)}")
    kind = obj.get("kind")
    kind_label = kind if isinstance(kind, str) and kind else "resource"
    metadata = obj.get("metadata")
    name = metadata.get("name") if isinstance(metadata, dict) else None
    name_label = name if isinstance(name, str) and name else "?"

    def fail(path: str, reason: str) -> ConfigError:
        return ConfigError(kind_label, name_label, path, reason)

    for field in obj:
        if field not in TOP_LEVEL_FIELDS:
            raise fail(str(field), f"unknown field; expected only {', '.join(TOP_LEVEL_FIELDS)}")
    for field in TOP_LEVEL_FIELDS:
        if field not in obj:
            raise fail(field, "required field is missing")
    api_version = obj["apiVersion"]
    if not isinstance(api_version, str) or not api_version.strip():
        raise fail("apiVersion", f"must be a non-empty string, got {type_name(api_version)}")
    if problem := kind_problem(kind):
        raise fail("kind", problem)
    if not isinstance(metadata, dict):
        raise fail("metadata", f"must be a mapping, got {type_name(metadata)}")
    for field in metadata:
        if field not in METADATA_FIELDS:
            raise fail(f"metadata.{field}", f"unknown field; expected only {', '.join(METADATA_FIELDS)}")
    if "name" not in metadata:
        raise fail("metadata.name", "required field is missing")
    if problem := dns_subdomain_problem(name):
        raise fail("metadata.name", problem)
    namespace = metadata.get("namespace", DEFAULT_NAMESPACE)
    if problem := dns_label_problem(namespace):
        raise fail("metadata.namespace", problem)
    for field in ("labels", "annotations"):
        if field in metadata and (bad := label_map_problem(metadata[field], free_values=field == "annotations")):
            key, reason = bad
            raise fail(f"metadata.{field}" + (f".{key}" if key else ""), reason)
    if not isinstance(obj["spec"], dict):
        raise fail("spec", f"must be a mapping, got {type_name(obj['spec'])}")
    return ResourceKey(kind, namespace, name)  # type: ignore[arg-type]
