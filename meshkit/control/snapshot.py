"""The snapshot each sidecar receives, as a pure function of (state, node).

Pure so that what a sidecar gets can be tested as a table and shown to a
learner (`GET /v1/snapshot/{ns}/{instance}`) without a running mesh. Order is
deterministic (services by host, endpoints by namespace and instance), so two
builds of one state are byte-identical and a sidecar can compare them.
"""

from __future__ import annotations

from typing import Any

from meshkit.control.store import State


def service_host(service: str, namespace: str) -> str:
    """The fully qualified service name, as cluster DNS spells it."""
    return f"{service}.{namespace}.svc.cluster.local"


def build_snapshot(state: State, node_id: str) -> dict[str, Any]:
    """The document in docs/internals.md: every registered service with its endpoints."""
    services: dict[str, dict[str, Any]] = {}
    for key in sorted(state.instances):
        record = state.instances[key]
        if record["service"] is None:
            continue
        host = service_host(record["service"], record["namespace"])
        entry = services.setdefault(
            host,
            {"name": record["service"], "namespace": record["namespace"], "port": record["service_port"], "endpoints": []},
        )
        entry["endpoints"].append(
            {
                "address": record["address"],
                "port": record["port"],
                "instance": record["instance"],
                "workload": record["workload"],
                "version": record["version"],
                "labels": dict(record["labels"]),
                "sidecar": record["sidecar"],
            }
        )
    return {"version": state.version, "node": node_id, "services": {host: services[host] for host in sorted(services)}}
