"""Every error meshkit raises on purpose.

One tree, so a notebook can catch `MeshkitError` and show its message, and so
no foreign exception (httpx, OSError, pydantic) leaks out of the package:
they are mapped at the boundary with `raise X(...) from exc`.

    MeshkitError
    ├── ConfigError          a resource is invalid: kind, name, field path, reason
    ├── LabError             the lab cannot do what was asked
    │   ├── LabNotRunning    no lab is up in this MESHKIT_HOME
    │   ├── UnknownWorkload  no such workload / namespace / service
    │   └── PortInUse        a port the lab needs is taken
    └── ControlPlaneError    the control plane refused or could not be reached
"""

from __future__ import annotations


class MeshkitError(Exception):
    """Base of every error meshkit raises on purpose."""


class ConfigError(MeshkitError):
    """A resource was rejected; nothing was changed.

    The message names the resource, the field path and the reason so that a
    learner can find the line in their YAML.
    """

    def __init__(self, kind: str, name: str, path: str, reason: str) -> None:
        self.kind = kind
        self.name = name
        self.path = path
        self.reason = reason
        where = f" at {path}" if path else ""
        super().__init__(f"{kind} {name!r}{where}: {reason}")


class LabError(MeshkitError):
    """The lab cannot do what was asked."""


class LabNotRunning(LabError):
    """No lab is running in this home directory."""


class UnknownWorkload(LabError):
    """A workload, namespace or service name that the lab does not have."""


class PortInUse(LabError):
    """A port the lab needs is already taken by another process."""


class ControlPlaneError(MeshkitError):
    """The control plane refused a request or could not be reached."""
