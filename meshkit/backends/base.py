"""The one interface every backend implements.

A backend places workloads and their sidecars somewhere (local processes, a
kind cluster, any Kubernetes cluster) and tells the Lab how to reach them.
Everything above it (Lab, CLI, notebooks) speaks only this protocol, so a
lesson written on the local backend runs unchanged on Kubernetes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from meshkit.control.client import ControlClient
from meshkit.demo.apps import WorkloadSpec
from meshkit.progress import Progress


@dataclass(frozen=True)
class InstanceView:
    """One running copy of a workload, as the Lab shows it."""

    namespace: str
    instance: str
    workload: str
    service: str
    version: str
    app: str
    service_port: int
    port: int
    sidecar: bool
    running: bool
    paths: tuple[str, ...] = ()
    """The path templates the app serves (`/reviews/{id}`); empty: the demo default (`/` and more)."""

    @property
    def node(self) -> str:
        """The sidecar's node id, `<namespace>/<instance>`."""
        return f"{self.namespace}/{self.instance}"


@dataclass(frozen=True)
class Entry:
    """How traffic leaves a workload: through its sidecar, or straight to an endpoint.

    Exactly one of `proxy` and `connect_to` is set.
    """

    proxy: tuple[str, int] | None
    connect_to: tuple[str, int] | None


# What a process of the lab is there for (ProcessUsage.role): the mesh's cost
# is the control plane plus every sidecar, next to the apps that do the work.
APP = "app"
SIDECAR = "sidecar"
CONTROL_PLANE = "control plane"

CONTROL_PLANE_NAME = "control-plane"
"""The workload and instance name the control plane's row carries (it has no namespace)."""


@dataclass(frozen=True)
class ProcessUsage:
    """One process of the lab and what it costs: CPU over a sample window, CPU so far, memory."""

    namespace: str
    workload: str
    instance: str
    role: str
    pid: int | None
    cpu_percent: float
    cpu_seconds: float
    rss_bytes: int


class Backend(Protocol):
    name: str

    def up(self, progress: Progress | None = None, control_port: int | None = None) -> None:
        """Start (or reattach to) the control plane and every recorded workload."""

    def down(self) -> None:
        """Stop everything the lab started and forget its state."""

    def running(self) -> bool:
        """True when the control plane of this lab answers."""

    def control(self) -> ControlClient:
        """A client for the control plane's admin API."""

    def deploy(self, app: str, specs: Sequence[WorkloadSpec], namespace: str, inject: bool, progress: Progress | None = None) -> list[InstanceView]:
        """Create the workloads (idempotent: existing ones are left as they are)."""

    def undeploy(self, instances: Sequence[InstanceView]) -> None:
        """Remove these instances and their sidecars."""

    def set_sidecar(self, instances: Sequence[InstanceView], enabled: bool, progress: Progress | None = None) -> None:
        """Restart these instances with (or without) a sidecar, as injection does on Kubernetes."""

    def instances(self) -> list[InstanceView]:
        """Every instance the lab knows, in a stable order."""

    def gateways(self) -> list[InstanceView]:
        """The ingress gateway's instances (deployed with `deploy`, a WorkloadSpec with
        gateway=True). They are infrastructure, as the control plane is: `instances()`
        leaves them out, so apps, checkpoints and catch-up never count them."""
        ...

    def entry(self, source: InstanceView, host: str) -> Entry:
        """How a request from `source` to service `host` leaves the workload."""

    def sidecar_admin(self, instance: InstanceView) -> str | None:
        """Base URL of the instance's sidecar admin endpoint, or None without a sidecar."""

    def sidecar_admin_token(self) -> str | None:
        """The bearer token the sidecars' protected admin pages need (config, certificates,
        requests, telemetry flush), or None when the lab has none yet."""

    def local_address(self, instance: InstanceView) -> str | None:
        """`host:port` a browser or curl on this machine opens to reach the
        instance's endpoint (its app, or the sidecar in front of it), or None
        where this machine cannot reach it."""

    def usage(self, window_s: float) -> list[ProcessUsage]:
        """Every process of the lab (control plane, apps, sidecars) with its CPU
        over one shared window of `window_s` seconds and its memory."""
