"""Which connections a workload accepts (PeerAuthentication) and how a client connects to it.

Server side, Istio's precedence (https://istio.io/latest/docs/concepts/security/#peer-authentication):
a workload-specific policy (selector matching the workload's labels) beats
the namespace-wide one (no selector, in the workload's namespace), which
beats the mesh-wide one (no selector, in the root namespace istio-system).
A policy whose mode is UNSET inherits from the next level; with no policy at
all, or UNSET all the way up, the mode is PERMISSIVE ("proxies are configured
in permissive mode by default",
https://istio.io/latest/docs/ops/best-practices/security/#mutual-tls).

A selector only picks workloads in its policy's own namespace; Istio ignores
selector policies placed in the root namespace for other namespaces
(istio/api#3604). Where Istio finds two policies at one level it takes the
oldest; canonical resources carry no creation time, so meshkit takes the
first by name, a rule a learner can predict.

Client side (DestinationRule trafficPolicy.tls.mode): ISTIO_MUTUAL always
uses mTLS, DISABLE never does, and no mode means Istio's auto mTLS: mTLS to
an endpoint that has a sidecar, plaintext to one that does not, and
plaintext when the destination's PeerAuthentication is DISABLE, since its
sidecar would not accept TLS (istiod's buildAutoMtlsSettings).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, NamedTuple

ROOT_NAMESPACE = "istio-system"
DEFAULT_MODE = "PERMISSIVE"
MODES = ("STRICT", "PERMISSIVE", "DISABLE")
UNSET = "UNSET"


class MtlsMode(NamedTuple):
    """The mode a workload's inbound side enforces, and the policy ("namespace/name") that set it; None for the default."""

    mode: str
    policy: str | None


def selects(selector: Mapping[str, str] | None, labels: Mapping[str, str]) -> bool:
    """True when every label the selector names has that value on the workload; no selector selects all."""
    return selector is None or all(labels.get(key) == value for key, value in selector.items())


def policy_name(resource: Mapping[str, Any]) -> str:
    """How decisions name a policy: `namespace/name`, unique across the mesh."""
    return f"{resource['namespace']}/{resource['name']}"


def effective_mode(
    policies: Iterable[Mapping[str, Any]],
    namespace: str,
    labels: Mapping[str, str],
    root_namespace: str = ROOT_NAMESPACE,
) -> MtlsMode:
    """The mTLS mode for a workload in `namespace` with `labels`, from canonical PeerAuthentications."""
    workload: list[Mapping[str, Any]] = []
    namespace_wide: list[Mapping[str, Any]] = []
    mesh_wide: list[Mapping[str, Any]] = []
    for policy in sorted(policies, key=policy_name):
        selector = policy["spec"]["selector"]
        if policy["namespace"] == namespace and selector is not None and selects(selector, labels):
            workload.append(policy)
        elif policy["namespace"] == namespace and selector is None:
            namespace_wide.append(policy)
        if policy["namespace"] == root_namespace and selector is None:
            mesh_wide.append(policy)
    for level in (workload, namespace_wide, mesh_wide):
        if level and (mode := level[0]["spec"]["mtls"]["mode"]) != UNSET:
            return MtlsMode(mode, policy_name(level[0]))
    return MtlsMode(DEFAULT_MODE, None)


def accepts(mode: str, mtls: bool) -> bool:
    """Whether the inbound side serves a connection: STRICT mTLS only, DISABLE plaintext only, PERMISSIVE both."""
    if mode == "STRICT":
        return mtls
    if mode == "DISABLE":
        return not mtls
    return True


def client_uses_mtls(tls_mode: str | None, endpoint_has_sidecar: bool, destination_mode: str | None = None) -> bool:
    """Whether a sidecar dials an endpoint with mTLS, per DestinationRule tls.mode or auto mTLS (None).

    `destination_mode` is the endpoint workload's effective PeerAuthentication
    mode when the caller knows it; auto mTLS sends plaintext to DISABLE.
    """
    if tls_mode == "ISTIO_MUTUAL":
        return True
    if tls_mode == "DISABLE":
        return False
    return endpoint_has_sidecar and destination_mode != "DISABLE"
