"""Security widgets: mTLS mode (PeerAuthentication) and authorization (AuthorizationPolicy).

They only write config: whether a sidecar then refuses plaintext or a caller
is the data plane's business, and the charts (topology's lock, the success
rate) show the effect.
"""

from __future__ import annotations

from typing import Any

import ipywidgets as widgets
from traitlets import Unicode

from meshkit.demo.apps import get_app
from meshkit.errors import UnknownWorkload
from meshkit.lab import CLIENT, CLIENT_APP, Lab
from meshkit.notebook import istio
from meshkit.notebook.controls import ConfigControl, lab_resources
from meshkit.notebook.traffic import LABEL, WIDE

Scope = tuple[str, dict[str, str] | None]
"""(PeerAuthentication name, matchLabels or None for the whole namespace)."""


class MtlsWidget(ConfigControl):
    """The mTLS mode (DISABLE / PERMISSIVE / STRICT) for a namespace or one workload.

    The namespace scope writes PeerAuthentication "default" with no selector
    (Istio's convention); a workload scope writes one named after the
    workload, selecting it by its app and version labels. Changing the mode
    applies at once. `mode` is the mode on screen.
    """

    mode = Unicode("")

    def __init__(self, lab: Lab, namespace: str | None = None) -> None:
        self.namespace = namespace or lab.namespace
        self._quiet = False
        self.scope = widgets.Dropdown(description="applies to", style=LABEL, layout=WIDE)
        self.buttons = widgets.ToggleButtons(options=istio.MTLS_MODES, value=None, description="mode", style=LABEL)
        super().__init__(lab, f"mTLS mode in namespace {self.namespace}", [self.scope, self.buttons])
        self.refresh()
        self.scope.observe(lambda _: self._show_current(), names="value")
        self.buttons.observe(self._picked, names="value")

    def refresh(self) -> None:
        """Offer the namespace and each of its workloads."""
        table = self.lab.workloads()
        rows = table[table["namespace"] == self.namespace]
        options: list[tuple[str, Scope]] = [(f"namespace {self.namespace}", ("default", None))]
        options += [
            (f"workload {w}", (str(w), istio.workload_labels(str(s), str(v))))
            for w, s, v in zip(rows["workload"], rows["service"], rows["version"], strict=True)
        ]
        self.scope.options = options
        self.scope.value = options[0][1]
        self._show_current()

    def _show_current(self) -> None:
        """Show the mode the chosen scope has in the lab now, without applying anything."""
        name, _ = self.scope.value
        current = next(
            (r for r in lab_resources(self.lab, "PeerAuthentication", self.namespace) if r["metadata"]["name"] == name),
            None,
        )
        mode = (current or {}).get("spec", {}).get("mtls", {}).get("mode")
        self._quiet = True
        try:
            self.buttons.value = mode if mode in istio.MTLS_MODES else None
        finally:
            self._quiet = False
        self.mode = self.buttons.value or ""

    def _picked(self, change: dict[str, Any]) -> None:
        if self._quiet or change["new"] is None:
            return
        self.set_mode(str(change["new"]))

    def set_mode(self, mode: str, workload: str | None = None) -> bool:
        """Apply `mode` to the chosen scope (or to `workload` when given), from code or a click."""
        if workload is not None:
            self.scope.value = next(v for label, v in self.scope.options if label == f"workload {workload}")
        name, selector = self.scope.value
        self.mode = mode
        return self.apply(istio.peer_authentication(self.namespace, mode, selector, name))


def service_accounts(lab: Lab) -> list[str]:
    """The service accounts of the deployed demo apps and the lab's client, for suggestions."""
    accounts = {CLIENT.service_account}
    for app in set(lab.workloads()["app"]):
        if app == CLIENT_APP:
            continue
        try:
            accounts |= {spec.service_account for spec in get_app(str(app))}
        except UnknownWorkload:
            continue
    return sorted(accounts)


class AuthorizationWidget(ConfigControl):
    """Allow or deny a caller (a service account, or a whole namespace) on a path of a service.

    Istio's semantics apply as they are: once any ALLOW policy selects a
    workload, requests that match no ALLOW rule are refused (403). "Remove"
    deletes the policy this widget applied last.
    """

    def __init__(self, lab: Lab, service: str | None = None, namespace: str | None = None) -> None:
        self.namespace = namespace or lab.namespace
        table = lab.workloads()
        services = sorted(set(table[table["namespace"] == self.namespace]["service"]))
        self.target = widgets.Dropdown(
            options=[("every workload in the namespace", "")] + [(s, s) for s in services],
            value=service if service in services else "", description="requests to", style=LABEL, layout=WIDE,
        )
        self.action = widgets.ToggleButtons(options=istio.ACTIONS, value="DENY", description="action", style=LABEL)
        self.caller_kind = widgets.ToggleButtons(options=["service account", "namespace", "anyone"],
                                                 value="service account", description="caller is", style=LABEL)
        self.caller = widgets.Combobox(options=service_accounts(lab), placeholder="bookinfo-productpage",
                                       description="service account", style=LABEL, layout=WIDE, ensure_option=False)
        self.caller_namespace = widgets.Text(value=self.namespace, description="caller namespace", style=LABEL)
        self.path = widgets.Text(value="", placeholder="/reviews/* (empty: every path)", description="path",
                                 style=LABEL, layout=WIDE)
        self.apply_button = widgets.Button(description="Apply", button_style="primary")
        self.remove_button = widgets.Button(description="Remove")
        self.apply_button.on_click(lambda _: self.apply_policy())
        self.remove_button.on_click(lambda _: self.remove_policy())
        controls = [self.target, self.action, self.caller_kind, self.caller, self.caller_namespace, self.path,
                    widgets.HBox([self.apply_button, self.remove_button])]
        super().__init__(lab, f"Authorization in namespace {self.namespace}", controls)

    def policy(self) -> istio.Manifest:
        """The AuthorizationPolicy the controls describe."""
        kind = self.caller_kind.value
        selector = {"app": self.target.value} if self.target.value else None
        return istio.authorization_policy(
            self.namespace,
            str(self.action.value),
            service_account=self.caller.value.strip() if kind == "service account" else "",
            caller_namespace=self.caller_namespace.value.strip() if kind != "anyone" else "",
            path=self.path.value.strip(),
            selector=selector,
        )

    def apply_policy(self) -> bool:
        if self.caller_kind.value == "service account" and not self.caller.value.strip():
            self.show_error("name the caller's service account (or pick 'namespace' or 'anyone')")
            return False
        return self.apply(self.policy())

    def remove_policy(self) -> bool:
        if not self.applied:
            self.show_error("this widget has applied no policy yet")
            return False
        meta = self.applied["metadata"]
        return self.delete("AuthorizationPolicy", meta["name"], meta["namespace"])
