"""Security widgets: mTLS mode (PeerAuthentication) and authorization (AuthorizationPolicy).

They only write config: whether a sidecar then refuses plaintext or a caller
is the data plane's business, and the charts (topology's lock, the success
rate) show the effect. Like the traffic widgets they are views of the lab:
they show what is in force now and follow it (meshkit.notebook.controls).
"""

from __future__ import annotations

import html
from typing import Any

import ipywidgets as widgets
from traitlets import Unicode

from meshkit.demo.apps import get_app
from meshkit.errors import UnknownWorkload
from meshkit.lab import CLIENT, CLIENT_APP, Lab
from meshkit.notebook import istio
from meshkit.notebook.controls import ConfigControl, lab_resources
from meshkit.notebook.traffic import LABEL, WIDE

NAMESPACE_SCOPE = ""
"""The scope dropdown's value for the whole namespace; a workload's is its name."""


class MtlsWidget(ConfigControl):
    """The mTLS mode (DISABLE / PERMISSIVE / STRICT) for a namespace or one workload.

    The buttons show the mode in force for the chosen scope, as the sidecars
    decide it (workload policy, else namespace policy, else the mesh-wide one
    in istio-system, else Istio's default PERMISSIVE), and the line under
    them says where it comes from. Picking a mode applies it at once, in the
    policy that decides that scope's mode at its own level
    (meshkit.notebook.istio.mtls_policy): the namespace's policy without
    selector ("default" when there is none), or the workload's (one named
    after it, selecting its app and version labels, when there is none).
    Traits: `mode` (in force), `source` ("workload", "namespace", "mesh" or
    "default") and `policy` (the deciding PeerAuthentication, namespace/name).
    """

    mode = Unicode("")
    source = Unicode("")
    policy = Unicode("")

    def __init__(self, lab: Lab, namespace: str | None = None) -> None:
        self.namespace = namespace or lab.namespace
        self.scope = widgets.Dropdown(options=[(f"namespace {self.namespace}", NAMESPACE_SCOPE)],
                                      value=NAMESPACE_SCOPE, description="applies to", style=LABEL, layout=WIDE)
        self.buttons = widgets.ToggleButtons(options=istio.MTLS_MODES, value=None, description="mode", style=LABEL)
        self.where = widgets.HTML()
        self._labels: dict[str, dict[str, str]] = {}
        self._policies: list[istio.Manifest] = []
        super().__init__(lab, f"mTLS mode in namespace {self.namespace}", [self.scope, self.buttons, self.where])
        self.refresh()
        self.scope.observe(self._scoped, names="value")
        self.buttons.observe(self._picked, names="value")

    def reload(self) -> str:
        """The namespace's workloads, and every PeerAuthentication (the mesh-wide one lives in istio-system)."""
        table = self.lab.workloads()
        rows = table[table["namespace"] == self.namespace]
        self._labels = {
            str(w): istio.workload_labels(str(s), str(v))
            for w, s, v in zip(rows["workload"], rows["service"], rows["version"], strict=True)
        }
        options = [(f"namespace {self.namespace}", NAMESPACE_SCOPE)] + [(f"workload {w}", w) for w in self._labels]
        self.set_choices(self.scope, options, NAMESPACE_SCOPE)
        self._policies = lab_resources(self.lab, "PeerAuthentication")
        self._show_in_force()
        return ""

    def in_force(self) -> istio.MtlsInForce:
        """The mode the chosen scope has now, and the policy it comes from."""
        workload = self.scope.value or None
        return istio.mtls_in_force(self._policies, self.namespace, self._labels.get(workload) if workload else None)

    def _show_in_force(self) -> None:
        found = self.in_force()
        with self.quietly():
            self.buttons.value = found.mode if found.mode in istio.MTLS_MODES else None
        self.mode, self.source, self.policy = found.mode, found.level, found.policy
        self.where.value = f"<i>{html.escape(found.describe())}</i>"

    def _scoped(self, change: dict[str, Any]) -> None:
        if not self.quiet:
            self._show_in_force()

    def _picked(self, change: dict[str, Any]) -> None:
        if self.quiet or change["new"] is None:
            return
        self.set_mode(str(change["new"]))

    def set_mode(self, mode: str, workload: str | None = None) -> bool:
        """Apply `mode` to the chosen scope (or to `workload` when given), from code or a click."""
        if workload is not None:
            if workload not in self._labels:
                self.refresh()  # deployed since the widget was read: deploys do not move the config version
            if workload not in self._labels:
                self.show_error(f"no workload {workload!r} in namespace {self.namespace}")
                return False
            with self.quietly():
                self.scope.value = workload
        scope = self.scope.value or None
        resource = istio.mtls_policy(lab_resources(self.lab, "PeerAuthentication"), self.namespace, mode, scope,
                                     self._labels.get(scope) if scope else None)
        if not self.apply(resource):
            self._show_in_force()
            return False
        return True


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

    "policy" picks what the form edits: a new policy, or one the lab has
    (it starts on the first policy for `service`, if there is one). For a
    policy in the lab it shows the action, target and the first rule's first
    caller and path, and applying changes only those; its other rules,
    methods, conditions and labels stay. A new policy is named after what it
    does; once applied the form edits it. "Remove" deletes the chosen policy.
    Istio's semantics apply as they are: once any ALLOW policy selects a
    workload, requests that match no ALLOW rule are refused (403).
    """

    def __init__(self, lab: Lab, service: str | None = None, namespace: str | None = None) -> None:
        self.namespace = namespace or lab.namespace
        self.service = service or ""
        self.choice = widgets.Dropdown(options=[("new policy", istio.NEW_POLICY)], value=istio.NEW_POLICY,
                                       description="policy", style=LABEL, layout=WIDE)
        self.target = widgets.Dropdown(options=[("every workload in the namespace", "")], value="",
                                       description="requests to", style=LABEL, layout=WIDE)
        self.action = widgets.ToggleButtons(options=istio.ACTIONS, value="DENY", description="action", style=LABEL)
        self.caller_kind = widgets.ToggleButtons(options=istio.CALLER_KINDS, value=istio.CALLER_KINDS[0],
                                                 description="caller is", style=LABEL)
        self.caller = widgets.Combobox(placeholder="bookinfo-productpage", description="service account",
                                       style=LABEL, layout=WIDE, ensure_option=False)
        self.caller_namespace = widgets.Text(value=self.namespace, description="caller namespace", style=LABEL)
        self.path = widgets.Text(value="", placeholder="/reviews/* (empty: every path)", description="path",
                                 style=LABEL, layout=WIDE)
        self.note = widgets.HTML()
        self.apply_button = widgets.Button(description="Apply", button_style="primary")
        self.remove_button = widgets.Button(description="Remove")
        self.apply_button.on_click(lambda _: self.apply_policy())
        self.remove_button.on_click(lambda _: self.remove_policy())
        self._policies: list[istio.Manifest] = []
        self._started = False
        controls = [self.choice, self.target, self.action, self.caller_kind, self.caller, self.caller_namespace,
                    self.path, self.note, widgets.HBox([self.apply_button, self.remove_button])]
        super().__init__(lab, f"Authorization in namespace {self.namespace}", controls)
        self.form = {"target": self.target, "action": self.action, "caller_kind": self.caller_kind,
                     "caller": self.caller, "caller_namespace": self.caller_namespace, "path": self.path}
        self.refresh()
        self.choice.observe(self._chosen, names="value")

    def chosen(self) -> istio.Manifest | None:
        """The policy the form edits as the lab has it, or None for a new one."""
        return istio.find_named(self._policies, "AuthorizationPolicy", str(self.choice.value), self.namespace)

    def reload(self) -> str:
        table = self.lab.workloads()
        services = sorted(set(table[table["namespace"] == self.namespace]["service"]))
        self.set_choices(self.target, [("every workload in the namespace", "")] + [(s, s) for s in services], "")
        self.caller.options = service_accounts(self.lab)
        self._policies = lab_resources(self.lab, "AuthorizationPolicy", self.namespace)
        names = [str(p["metadata"]["name"]) for p in self._policies]
        first = istio.authorization_for(self._policies, self.service) if not self._started else istio.NEW_POLICY
        self.set_choices(self.choice, [("new policy", istio.NEW_POLICY)] + [(n, n) for n in names], istio.NEW_POLICY)
        if not self._started:
            with self.quietly():
                self.choice.value = first
            self._started = True
        self._show_chosen()
        return ""

    def _show_chosen(self) -> None:
        policy = self.chosen()
        self.show_values(istio.authorization_values(policy, self.namespace, self.service))
        self.note.value = f"<i>{html.escape(istio.authorization_note(policy))}</i>" if policy else ""

    def _chosen(self, change: dict[str, Any]) -> None:
        if not self.quiet:
            self._show_chosen()

    def policy(self) -> istio.Manifest:
        """The AuthorizationPolicy the controls describe: the chosen one edited, or a new one."""
        kind = self.caller_kind.value
        caller = {
            "service_account": self.caller.value.strip() if kind == istio.CALLER_KINDS[0] else "",
            "caller_namespace": self.caller_namespace.value.strip() if kind != istio.ANYONE else "",
            "path": self.path.value.strip(),
        }
        current = self.chosen()
        if current is not None:
            return istio.with_authorization(current, str(self.action.value), target=str(self.target.value), **caller)
        selector = {"app": str(self.target.value)} if self.target.value else None
        return istio.authorization_policy(self.namespace, str(self.action.value), selector=selector, **caller)

    def apply_policy(self) -> bool:
        if not self.sync():
            return False
        if self.caller_kind.value == istio.CALLER_KINDS[0] and not self.caller.value.strip():
            self.show_error("name the caller's service account (or pick 'namespace' or 'anyone')")
            return False
        resource = self.policy()
        if not self.apply(resource):
            return False
        with self.quietly():
            self.choice.value = resource["metadata"]["name"]
        self._show_chosen()
        return True

    def remove_policy(self) -> bool:
        """Delete the chosen policy."""
        if self.choice.value == istio.NEW_POLICY:
            self.show_error("pick the policy to remove")
            return False
        return self.delete("AuthorizationPolicy", str(self.choice.value), self.namespace)
