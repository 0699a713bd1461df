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
    return [str(warning) for warning in validate(obj, config_context(state)).warnings]


def validate_batch(state: State, objs: list[dict[str, Any]]) -> list[str]:
    """Validate resources applied together (their DestinationRules count for
    their VirtualServices); returns the warnings, raises ConfigError on the first bad one."""
    checked = validate_all([parse(obj) for obj in objs], config_context(state))
    return [str(warning) for result in checked for warning in result.warnings]
