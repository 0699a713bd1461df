"""Checking a resource against the lab before the store accepts it.

The structure check (resources.check_resource) says a document is a
resource; this says it is a *valid* one for this lab: Istio's schema, the
rules a schema cannot express (weights sum to 100, regexes compile), and the
references (the host is a known service, the subset is defined by a
DestinationRule). A rejected resource raises ConfigError with the field path
and changes nothing; what is valid but probably unintended comes back as
warnings for the learner to read.
"""

from __future__ import annotations

from typing import Any

from meshkit.config import ConfigContext, DestinationRule, parse, validate, validate_all
from meshkit.config.kinds import resource_class
from meshkit.errors import ConfigError
from meshkit.control.resources import check_resource
from meshkit.control.snapshot import service_host
from meshkit.control.store import State


def config_context(state: State) -> ConfigContext:
    """Known services (with their workloads' labels and their ports) and the stored DestinationRules."""
    services: dict[str, list[dict[str, str]]] = {}
    ports: dict[str, int] = {}
    for record in state.instances.values():
        if record["service"] is None:
            continue
        host = service_host(record["service"], record["namespace"])
        labels = services.setdefault(host, [])
        if record["labels"] not in labels:
            labels.append(dict(record["labels"]))
        ports[host] = record["service_port"]
    rules = [parse(obj) for obj in state.resources.values() if obj.get("kind") == "DestinationRule"]
    return ConfigContext(services, tuple(r for r in rules if isinstance(r, DestinationRule)), ports)


def validate_resource(state: State, obj: dict[str, Any]) -> list[str]:
    """Validate `obj` against the lab in `state`; returns the warnings, raises ConfigError."""
    warnings = [str(warning) for warning in validate(obj, config_context(state)).warnings]
    _refuse_other_api(state, obj)
    return warnings


def validate_batch(state: State, objs: list[dict[str, Any]]) -> list[str]:
    """Validate resources applied together (their DestinationRules count for
    their VirtualServices); returns the warnings, raises ConfigError on the first bad one."""
    checked = validate_all([parse(obj) for obj in objs], config_context(state))
    for obj in objs:
        _refuse_other_api(state, obj)
    return [str(warning) for result in checked for warning in result.warnings]


def other_api_problem(stored: dict[str, Any] | None, obj: dict[str, Any]) -> str | None:
    """Why `obj` may not replace `stored`, the resource at its store key (kind/namespace/name), or None.

    The store keys resources by kind, namespace and name, and two APIs name a
    kind Gateway (Istio's and the Gateway API's); on Kubernetes both could
    exist side by side, here the second would silently replace the first, so
    it is refused instead.
    """
    if stored is None:
        return None
    kind, old_version, new_version = obj.get("kind"), stored.get("apiVersion"), obj.get("apiVersion")
    if resource_class(kind, old_version) is resource_class(kind, new_version):
        return None
    name = obj["metadata"]["name"]
    return (
        f"a {kind} {name!r} from apiVersion {old_version} is already applied in this namespace, and meshkit keeps one "
        f"{kind} per namespace and name whatever its API; delete it first (lab.delete({kind!r}, {name!r})) or give "
        "this one another name"
    )


def _refuse_other_api(state: State, obj: dict[str, Any]) -> None:
    key = check_resource(obj)
    if problem := other_api_problem(state.resources.get(key.text), obj):
        raise ConfigError(key.kind, key.name, "apiVersion", problem)
