"""Instance records: what the backends tell the control plane is running.

A record is checked field by field before it reaches the store, because its
names become hostnames and SPIFFE identities and its address and port become
endpoints every sidecar dials. Errors are ConfigError with kind "Instance", the
node id as name and the field as path, the same shape as resource errors.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Mapping
from typing import Any

from meshkit.names import dns_label_problem, label_map_problem, label_value_problem, type_name
from meshkit.errors import ConfigError

KIND = "Instance"

# field -> (required, default when absent). `service` may be null for a
# workload that serves nothing (the lab's client): then it has no endpoint.
FIELDS: dict[str, tuple[bool, Any]] = {
    "instance": (False, None),
    "namespace": (False, None),
    "workload": (True, None),
    "service": (False, None),
    "service_port": (False, None),
    "version": (False, None),
    "service_account": (True, None),
    "labels": (False, {}),
    "address": (False, None),
    "port": (False, None),
    "sidecar": (False, False),
}
ENDPOINT_FIELDS = ("service_port", "address", "port")


def node_id(namespace: str, instance: str) -> str:
    """A sidecar's id, `<namespace>/<instance>` (docs/internals.md)."""
    return f"{namespace}/{instance}"


def check_instance(record: Any, namespace: str, instance: str) -> dict[str, Any]:
    """The record as stored, with defaults filled in, or ConfigError naming the field.

    `namespace` and `instance` come from the URL; the body may omit them but
    must not contradict them.
    """
    name = node_id(namespace, instance)

    def fail(path: str, reason: str) -> ConfigError:
        return ConfigError(KIND, name, path, reason)

    for field, value in (("namespace", namespace), ("instance", instance)):
        if problem := dns_label_problem(value):
            raise fail(field, problem)
    if not isinstance(record, dict):
        raise fail("", f"an instance record must be a mapping, got {type_name(record)}")
    for field in record:
        if field not in FIELDS:
            raise fail(str(field), f"unknown field; expected only {', '.join(FIELDS)}")
    out: dict[str, Any] = {}
    for field, (required, default) in FIELDS.items():
        if field not in record and required:
            raise fail(field, "required field is missing")
        out[field] = record.get(field, default)
    for field, from_path in (("namespace", namespace), ("instance", instance)):
        if out[field] is None:
            out[field] = from_path
        elif out[field] != from_path:
            raise fail(field, f"{out[field]!r} does not match {from_path!r} in the URL")
    for field in ("workload", "service_account"):
        if problem := dns_label_problem(out[field]):
            raise fail(field, problem)
    if out["version"] is not None and (problem := label_value_problem(out["version"])):
        raise fail("version", problem)
    if bad := label_map_problem(out["labels"]):
        key, reason = bad
        raise fail("labels" + (f".{key}" if key else ""), reason)
    if not isinstance(out["sidecar"], bool):
        raise fail("sidecar", f"must be true or false, got {type_name(out['sidecar'])}")
    _check_endpoint(out, fail)
    out["labels"] = dict(out["labels"])
    return out


def _check_endpoint(out: dict[str, Any], fail: Callable[[str, str], ConfigError]) -> None:
    """A service needs its port and an endpoint address; no service means no endpoint."""
    if out["service"] is None:
        for field in ENDPOINT_FIELDS:
            if out[field] is not None:
                raise fail(field, "must be null when service is null (an instance without a service has no endpoint)")
        return
    if problem := dns_label_problem(out["service"]):
        raise fail("service", problem)
    for field in ENDPOINT_FIELDS:
        if out[field] is None:
            raise fail(field, "required when service is set")
    for field in ("service_port", "port"):
        port = out[field]
        if not isinstance(port, int) or isinstance(port, bool):
            raise fail(field, f"must be an integer, got {type_name(port)}")
        if not 1 <= port <= 65535:
            raise fail(field, f"{port} is not a port number (1-65535)")
    address = out["address"]
    if not isinstance(address, str):
        raise fail("address", f"must be a string, got {type_name(address)}")
    try:
        ipaddress.ip_address(address)
    except ValueError:
        raise fail("address", f"{address!r} is not an IP address") from None


def check_service_port(instances: Mapping[str, Mapping[str, Any]], record: Mapping[str, Any]) -> None:
    """Every instance of a service shares the service's port; refuse a record that disagrees.

    The replaced record itself does not count, so a service's only instance
    may change the port.
    """
    if record["service"] is None:
        return
    me = node_id(record["namespace"], record["instance"])
    for other_id in sorted(instances):
        other = instances[other_id]
        if (
            other_id != me
            and other["namespace"] == record["namespace"]
            and other["service"] == record["service"]
            and other["service_port"] != record["service_port"]
        ):
            raise ConfigError(
                KIND,
                me,
                "service_port",
                f"service {record['service']}.{record['namespace']} already uses port "
                f"{other['service_port']} (instance {other['instance']}); all its instances must agree",
            )


def registry_view(instances: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """`GET /v1/registry`: workloads with their instances, plus the flat instance list.

    Workload fields (service, version, account, labels) come from the
    workload's first instance by name: instances of one workload agree on them
    in every backend.
    """
    workloads: dict[tuple[str, str], dict[str, Any]] = {}
    flat: list[dict[str, Any]] = []
    for key in sorted(instances):
        record = dict(instances[key])
        flat.append(record)
        group = (record["namespace"], record["workload"])
        if group not in workloads:
            workloads[group] = {
                "name": record["workload"],
                "namespace": record["namespace"],
                "service": record["service"],
                "service_port": record["service_port"],
                "version": record["version"],
                "service_account": record["service_account"],
                "labels": dict(record["labels"]),
                "instances": [],
            }
        workloads[group]["instances"].append(record)
    return {"workloads": [workloads[g] for g in sorted(workloads)], "instances": flat}
