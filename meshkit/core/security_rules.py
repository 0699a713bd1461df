"""The security part of a snapshot, checked before anything enforces it.

The control plane sends PeerAuthentications and AuthorizationPolicies in
their canonical form (meshkit/config/canonical.py's docstring is the shape)
and the mesh's trust bundle as PEM text. It validated the resources before
storing them; the sidecar still checks every field it will enforce, because
a policy it misreads is a policy bypassed: anything not of the documented
shape is NACKed with its field path (`authorization_policies[0].spec.rules[1].to[0].ports[0]: ...`)
and the sidecar keeps its last good config, as docs/internals.md requires.

The checked documents are returned as plain canonical dicts, the form
`meshkit.core.peer_auth.effective_mode` and `meshkit.core.authz.compile_policies`
take. Compiling may still refuse a policy meshkit cannot enforce completely
(an unknown `when` key); the sidecar NACKs that too.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from meshkit.core.checks import Checker, resource_envelope

MTLS_MODES = ("UNSET", "DISABLE", "PERMISSIVE", "STRICT")
AUTHZ_ACTIONS = ("ALLOW", "DENY", "AUDIT")
SOURCE_FIELDS = ("principals", "not_principals", "namespaces", "not_namespaces", "service_accounts", "not_service_accounts")
DRY_RUN_ACTIONS = ("ALLOW", "DENY")
OPERATION_TEXT_FIELDS = ("hosts", "not_hosts", "methods", "not_methods", "paths", "not_paths")
OPERATION_PORT_FIELDS = ("ports", "not_ports")
MAX_BUNDLE_BYTES = 256 * 1024
PEM_CERTIFICATE = "-----BEGIN CERTIFICATE-----"

# Policy strings: printable ASCII without spaces (principals, paths, hosts, methods, header values).
_POLICY_TEXT = re.compile(r"[\x21-\x7e]{1,1024}")
# Header values in `when` may hold spaces.
_WHEN_VALUE = re.compile(r"[\x20-\x7e]{1,1024}")
_PEM = re.compile(r"[\x20-\x7e\r\n]+")


def _selector(check: Checker, spec: Mapping[str, Any], path: str) -> dict[str, str] | None:
    raw = spec.get("selector")
    return None if raw is None else check.labels(raw, f"{path}.selector")


def _texts(check: Checker, obj: Mapping[str, Any], key: str, path: str, pattern: re.Pattern[str] = _POLICY_TEXT) -> list[str]:
    values = check.items(obj.get(key, []), f"{path}.{key}")
    return [check.text(value, f"{path}.{key}[{i}]", pattern) for i, value in enumerate(values)]


def parse_peer_authentication(check: Checker, raw: Any, path: str) -> dict[str, Any]:
    """A checked canonical PeerAuthentication."""
    namespace, name, spec = resource_envelope(check, raw, path, "PeerAuthentication")
    mtls = spec.get("mtls")
    mode = "UNSET" if mtls is None else check.choice(check.mapping(mtls, f"{path}.spec.mtls").get("mode", "UNSET"), f"{path}.spec.mtls.mode", MTLS_MODES)
    return {
        "kind": "PeerAuthentication",
        "namespace": namespace,
        "name": name,
        "spec": {"selector": _selector(check, spec, f"{path}.spec"), "mtls": {"mode": mode}},
    }


def parse_authorization_policy(check: Checker, raw: Any, path: str) -> dict[str, Any]:
    """A checked canonical AuthorizationPolicy (every list present, ports as integers, dry_run a bool)."""
    namespace, name, spec = resource_envelope(check, raw, path, "AuthorizationPolicy")
    action = check.choice(check.get(spec, "action", f"{path}.spec"), f"{path}.spec.action", AUTHZ_ACTIONS)
    dry_run = check.boolean(spec.get("dry_run", False), f"{path}.spec.dry_run")
    if dry_run and action not in DRY_RUN_ACTIONS:
        raise check.fail(f"{path}.spec.dry_run", f"a dry run applies to ALLOW and DENY policies only, not {action}")
    rules = []
    for r, rule_raw in enumerate(check.items(check.get(spec, "rules", f"{path}.spec"), f"{path}.spec.rules")):
        at = f"{path}.spec.rules[{r}]"
        rule = check.mapping(rule_raw, at)
        sources = []
        for s, source_raw in enumerate(check.items(rule.get("from", []), f"{at}.from")):
            source = check.mapping(source_raw, f"{at}.from[{s}]")
            sources.append({key: _texts(check, source, key, f"{at}.from[{s}]") for key in SOURCE_FIELDS})
        operations = []
        for o, operation_raw in enumerate(check.items(rule.get("to", []), f"{at}.to")):
            where = f"{at}.to[{o}]"
            operation = check.mapping(operation_raw, where)
            found: dict[str, Any] = {key: _texts(check, operation, key, where) for key in OPERATION_TEXT_FIELDS}
            for key in OPERATION_PORT_FIELDS:
                ports = check.items(operation.get(key, []), f"{where}.{key}")
                found[key] = [_port(check, port, f"{where}.{key}[{i}]") for i, port in enumerate(ports)]
            operations.append(found)
        conditions = []
        for w, when_raw in enumerate(check.items(rule.get("when", []), f"{at}.when")):
            where = f"{at}.when[{w}]"
            when = check.mapping(when_raw, where)
            conditions.append(
                {
                    "key": check.text(check.get(when, "key", where), f"{where}.key", _POLICY_TEXT),
                    "values": _texts(check, when, "values", where, _WHEN_VALUE),
                    "not_values": _texts(check, when, "not_values", where, _WHEN_VALUE),
                }
            )
        rules.append({"from": sources, "to": operations, "when": conditions})
    return {
        "kind": "AuthorizationPolicy",
        "namespace": namespace,
        "name": name,
        "spec": {"selector": _selector(check, spec, f"{path}.spec"), "action": action, "rules": rules, "dry_run": dry_run},
    }


def _port(check: Checker, value: Any, path: str) -> int:
    """Ports arrive as integers; digit strings (Istio's YAML form) are accepted too."""
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 5:
        value = int(value)
    return check.integer(value, path, 1, 65535)


def parse_trust_bundle(check: Checker, raw: Any, path: str) -> str | None:
    """The mesh's trusted roots as PEM text; None when the snapshot has none.

    Only the shape is checked here (core stays free of ssl); the sidecar
    loads the certificates and NACKs a bundle it cannot read.
    """
    if raw is None:
        return None
    if not isinstance(raw, str) or len(raw) > MAX_BUNDLE_BYTES or not _PEM.fullmatch(raw) or PEM_CERTIFICATE not in raw:
        raise check.fail(path, "expected PEM text holding at least one CERTIFICATE block")
    return raw
