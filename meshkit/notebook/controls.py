"""What every config widget shares: apply through the Lab, say what happened.

A config widget builds an Istio-shaped dict (meshkit.notebook.istio) and
calls `lab.apply`, the same validated, all-or-nothing path YAML takes. When
the lab refuses, the ConfigError's message (kind, name, field path, reason)
is shown under the widget and nothing was applied; when it accepts, the
widget shows the config version and how long the slowest sidecar took to
ACK it, so the learner sees the push happen.

Applying runs in the caller's thread (the kernel's, for a widget event): a
push is short (the lab returns once every sidecar ACKed, tens of ms), and
doing it in order keeps "move, then read lab.get" true for the learner and
for tests. Load and chart refresh, which are long, run on the loop thread.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from typing import Any

import ipywidgets as widgets
from traitlets import Dict, Float, Int, Unicode

from meshkit.errors import MeshkitError
from meshkit.lab import Lab
from meshkit.notebook.istio import Manifest

OK_STYLE = "color: #2ca02c"
ERROR_STYLE = "color: #d62728; white-space: pre-wrap"


def lab_resources(lab: Lab, kind: str, namespace: str | None = None) -> list[Manifest]:
    """Every stored resource of a kind, as the dicts lab.get gives for one."""
    table = lab.get(kind, namespace=namespace)
    return [lab.get(kind, name, ns) for ns, name in zip(table["namespace"], table["name"], strict=True)]


def applied_message(resource: Mapping[str, Any], version: int, ack_ms: float, warnings: Sequence[str]) -> str:
    """The status line after an apply: which resource, which version, how fast the sidecars took it."""
    meta = resource.get("metadata", {})
    text = (
        f"applied {resource.get('kind')} {meta.get('namespace', 'default')}/{meta.get('name')} "
        f"as config version {version}; the slowest sidecar ACKed it in {ack_ms:.0f} ms"
    )
    return "\n".join([text, *(f"warning: {w}" for w in warnings)])


class ConfigControl(widgets.VBox):
    """A titled box of controls with a status line under it.

    Traits a notebook (or a test) can read or observe: `error` (the last
    refusal's message, "" after a success), `version` and `ack_ms` (of the
    last successful apply) and `applied` (the resource it applied).
    """

    error = Unicode("")
    message = Unicode("")
    version = Int(0)
    ack_ms = Float(0.0)
    applied = Dict()

    def __init__(self, lab: Lab, title: str, controls: Sequence[widgets.Widget], **kwargs: Any) -> None:
        self.lab = lab
        self.status = widgets.HTML()
        super().__init__(children=[widgets.HTML(f"<b>{html.escape(title)}</b>"), *controls, self.status], **kwargs)

    def apply(self, resource: Manifest) -> bool:
        """Apply one resource; on refusal show why and return False (nothing changed)."""
        try:
            frame = self.lab.apply(resource)
        except MeshkitError as exc:
            self.show_error(str(exc))
            return False
        self.version = int(frame.attrs.get("version", 0))
        self.ack_ms = float(frame.attrs.get("ack_ms", 0.0))
        self.applied = dict(resource)
        self.show_message(applied_message(resource, self.version, self.ack_ms, frame.attrs.get("warnings", [])))
        return True

    def delete(self, kind: str, name: str, namespace: str) -> bool:
        """Remove one resource; a missing one is shown as an error, not raised."""
        try:
            self.version = self.lab.delete(kind, name, namespace)
        except MeshkitError as exc:
            self.show_error(str(exc))
            return False
        self.applied = {}
        self.show_message(f"deleted {kind} {namespace}/{name}; config version {self.version}")
        return True

    def show_error(self, text: str) -> None:
        self.error = text
        self.message = ""
        self.status.value = f'<span style="{ERROR_STYLE}">{html.escape(text)}</span>'

    def show_message(self, text: str) -> None:
        self.error = ""
        self.message = text
        self.status.value = f'<span style="{OK_STYLE}; white-space: pre-wrap">{html.escape(text)}</span>'
