"""The configuration the sidecar runs on, and how a new one replaces it.

A snapshot is checked completely (`meshkit.core.snapshot.parse_snapshot`)
and its routing table built before the table changes; then one assignment
makes it current. Checking is all in the parse: compiling a checked snapshot
cannot fail, so the clusters it updates on the way (meshkit.sidecar.cluster)
always end up matching the table that is swapped in. A rejected snapshot changes nothing: the sidecar keeps the
last good one and remembers why it refused, for /config_dump and the NACK.

The security part is checked the same way before anything changes: the
inbound mode and the compiled AuthorizationPolicies (a policy meshkit
cannot enforce completely is refused, never enforced halfway) and the trust
bundle. A sidecar is ready when it has a config and, if it has a source of
certificates, a certificate: before that it serves no request and dials
no mTLS endpoint in plaintext (HARDENING: control plane).
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any, NamedTuple

from meshkit.core.snapshot import parse_snapshot
from meshkit.errors import ConfigError
from meshkit.sidecar.bootstrap import Bootstrap
from meshkit.sidecar.cluster import ClusterSet
from meshkit.sidecar.identity import WorkloadIdentity
from meshkit.sidecar.inbound_policy import InboundSecurity, inbound_security
from meshkit.sidecar.routing_table import RoutingTable, build_table

log = logging.getLogger("meshkit.sidecar")


class Outcome(NamedTuple):
    """What became of an offered snapshot: the ACK or NACK to send back."""

    version: int | None
    accepted: bool
    reason: str | None


class MeshState:
    """The current routing table and the history a learner may ask about."""

    def __init__(self, bootstrap: Bootstrap, clusters: ClusterSet, identity: WorkloadIdentity | None = None) -> None:
        self.bootstrap = bootstrap
        self.clusters = clusters
        self.identity = identity
        self.security: InboundSecurity | None = None
        self.table: RoutingTable | None = None
        self.version: int | None = None
        self.document: dict[str, Any] | None = None
        self.applied_at: float | None = None
        self.last_nack: str | None = None
        self.last_nack_version: int | None = None

    @property
    def ready(self) -> bool:
        return self.table is not None and self.has_certificate

    @property
    def has_certificate(self) -> bool:
        """True once a certificate is held, or when this sidecar has no source of one."""
        identity = self.identity
        return identity is None or not identity.required or identity.credentials is not None

    @property
    def waiting_for(self) -> str:
        """Why the sidecar is not ready, for /ready."""
        missing = []
        if self.table is None:
            missing.append("no config received yet")
        if not self.has_certificate:
            missing.append("no workload certificate yet")
        return " and ".join(missing) or "nothing"

    def inbound_mode(self) -> str | None:
        """The inbound side's effective PeerAuthentication mode; None before the first config."""
        security = self.security
        return None if security is None else security.mode.mode

    def apply(self, doc: Any) -> None:
        """Make `doc` the current snapshot, or raise ConfigError and keep the old one."""
        snapshot = parse_snapshot(doc, self.bootstrap.node)
        security = inbound_security(snapshot, self.bootstrap.workload, self.bootstrap.inbound_port)
        if self.identity is not None:
            self.identity.check_bundle(snapshot.trust_bundle)
        if self.clusters.tls is not None:
            self.clusters.tls.peer_authentications = snapshot.peer_authentications
        table = build_table(snapshot, self.bootstrap.workload, self.clusters, self.table)
        if self.identity is not None:
            self.identity.use_bundle(snapshot.trust_bundle)
        if security != self.security:
            mode = security.mode
            log.info(
                "inbound security: mode %s (%s), %d authorization policies",
                mode.mode,
                mode.policy or "default",
                len(security.policies),
            )
        self.security = security
        self.table = table
        self.version = snapshot.version
        self.document = doc
        self.applied_at = time.time()
        endpoints = sum(len(s.endpoints) for s in snapshot.services.values())
        log.info(
            "config version %d applied: %d services, %d endpoints, %d virtual services, %d destination rules, %d rate limits",
            snapshot.version,
            len(snapshot.services),
            endpoints,
            len(snapshot.virtual_services),
            len(snapshot.destination_rules),
            len(snapshot.rate_limits),
        )
        for note in table.routes.ignored:
            log.warning("ignored %s (Istio uses one VirtualService per host for sidecars)", note)

    def offer(self, body: bytes) -> Outcome:
        """Apply a snapshot as the control plane sent it, and say how it went."""
        try:
            doc = json.loads(body)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            return self._refuse(None, f"snapshot is not valid JSON: {exc}")
        version = doc.get("version") if isinstance(doc, dict) else None
        if not isinstance(version, int) or isinstance(version, bool):
            version = None
        try:
            self.apply(doc)
        except ConfigError as exc:
            return self._refuse(version, str(exc))
        return Outcome(version, True, None)

    def _refuse(self, version: int | None, reason: str) -> Outcome:
        self.last_nack = reason
        self.last_nack_version = version
        log.warning("config version %s rejected (NACK), still running version %s: %s", version, self.version, reason)
        return Outcome(version, False, reason)
