"""Traffic widgets: split, header routing, faults, retries, circuit breaker.

Each is a view of one service's VirtualService or DestinationRule: it shows
what the lab has (meshkit.notebook.istio reads it), lets the learner change
its own part, and applies the edited resource through `lab.apply`, every
field it does not own kept. They follow the lab when it changes from
elsewhere (meshkit.notebook.controls).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import ipywidgets as widgets
from traitlets import Dict, List

from meshkit.lab import Lab
from meshkit.notebook import istio
from meshkit.notebook.controls import ConfigControl, lab_resources
from meshkit.notebook.weights import normalized, rebalance

WIDE = widgets.Layout(width="420px")
LABEL = {"description_width": "190px"}  # wide enough for Istio's longest field names (http1MaxPendingRequests)
MAX_MS = 3_600_000
"""Longest duration a field offers (an hour): more is a typo in a lab."""
MAX_LIMIT = 2**32 - 1
"""Largest connectionPool limit Istio takes (uint32), so any limit in the lab can be shown as it is."""


def number(description: str, value: int, high: int = 100_000) -> widgets.BoundedIntText:
    """A whole-number field from 0 to `high` with the shared label width."""
    return widgets.BoundedIntText(value=value, min=0, max=high, description=description, style=LABEL)


def percent(description: str, value: float) -> widgets.FloatSlider:
    """A 0-100 slider for a share of requests."""
    return widgets.FloatSlider(value=value, min=0.0, max=100.0, step=1.0, description=description, style=LABEL,
                               layout=WIDE)


class ServiceControl(ConfigControl):
    """A ConfigControl for one service: finds its VirtualService and DestinationRule."""

    def __init__(self, lab: Lab, service: str, namespace: str | None, title: str, controls: list[widgets.Widget]) -> None:
        self.service = service
        self.namespace = namespace or lab.namespace
        super().__init__(lab, title, controls)

    def virtual_service(self) -> istio.Manifest | None:
        return istio.find_virtual_service(lab_resources(self.lab, "VirtualService"), self.service, self.namespace)

    def destination_rule(self) -> istio.Manifest | None:
        return istio.find_destination_rule(lab_resources(self.lab, "DestinationRule"), self.service, self.namespace)

    def no_subsets(self) -> str:
        return (f"no DestinationRule with subsets for {self.service} in namespace {self.namespace}: "
                "apply one (Istio's destination-rule-all.yaml has them); the widget picks it up")


class SplitWidget(ServiceControl):
    """One slider per subset of the service, always adding up to 100, applied on release.

    Subsets come from the service's DestinationRule; the weights from its
    VirtualService's default rule (100 to the first subset when it has
    none), and follow it when it changes from elsewhere. Moving one slider
    rebalances the others in proportion (meshkit.notebook.weights.rebalance)
    from the weights the lab has at that moment, and applies the split as
    the default rule's weights. `weights` is the split on screen; `version`
    and `ack_ms` tell when the lab took it.
    """

    weights = Dict()
    subsets: List[str] = List()

    def __init__(self, lab: Lab, service: str, namespace: str | None = None) -> None:
        self.sliders: dict[str, widgets.IntSlider] = {}
        self.versions: dict[str, str] = {}
        self.box = widgets.VBox()
        super().__init__(lab, service, namespace, f"Traffic split for {service}", [self.box])
        self.refresh()
        if self.subsets:
            self.show_message(f"subsets from the DestinationRule: {', '.join(self.subsets)}")

    def reload(self) -> str:
        """Subsets from the DestinationRule, weights from the VirtualService."""
        rule = self.destination_rule()
        names = istio.subsets(rule)
        self.versions = istio.subset_versions(rule)
        if names != list(self.sliders):
            self.sliders = {
                name: widgets.IntSlider(min=0, max=100, step=1, description=name, continuous_update=False,
                                        layout=WIDE, style=LABEL)
                for name in names
            }
            for slider in self.sliders.values():
                slider.observe(self._moved, names="value")
            self.box.children = list(self.sliders.values())
        self.subsets = names
        if not names:
            self.weights = {}
            return self.no_subsets()
        self._show(normalized(istio.split_of(self.virtual_service()), names))
        return ""

    def _show(self, weights: dict[str, int]) -> None:
        with self.quietly():
            for name, value in weights.items():
                self.sliders[name].value = value
        self.weights = dict(weights)

    def _moved(self, change: dict[str, Any]) -> None:
        if self.quiet:
            return
        name = str(change["owner"].description)
        if not self.sync():
            return
        if name not in self.sliders:
            self.show_error("the service's subsets changed in the lab; the sliders show them now")
            return
        self._show(rebalance(self.weights, name, change["new"]))
        self.apply_split()

    def set_weights(self, weights: dict[str, int]) -> bool:
        """Set and apply a split from code (a script, a headless notebook); missing subsets get 0."""
        self._show(normalized(weights, self.subsets))
        return self.apply_split()

    def apply_split(self) -> bool:
        """Apply the split on screen as the weights of the default rule of the service's VirtualService."""
        return self.apply(istio.with_split(self.virtual_service(), self.service, self.namespace, self.weights))


class HeaderRouteWidget(ServiceControl):
    """A rule builder: requests whose header matches go to one subset, the rest to a default.

    It shows the header rule the lab has (the one it wrote, or a rule
    matching on one header, as Istio's samples write it) and edits that rule
    in place; other rules stay. `header` and `value`, when given, are shown
    instead of the lab's as edits to apply. "(keep)" as the default leaves
    the default rule as it is, so a split applied with the split widget stays
    in force for everyone else.
    """

    def __init__(self, lab: Lab, service: str, namespace: str | None = None, header: str | None = None,
                 value: str | None = None) -> None:
        self.header = widgets.Text(description="header", style=LABEL, layout=WIDE)
        self.match_type = widgets.Dropdown(options=istio.MATCH_TYPES, value="exact", description="match", style=LABEL)
        self.value = widgets.Text(description="value", style=LABEL, layout=WIDE)
        self.subset = widgets.Dropdown(description="then route to", style=LABEL)
        self.default = widgets.Dropdown(options=[istio.KEEP], description="everyone else to", style=LABEL)
        self.apply_button = widgets.Button(description="Apply rule", button_style="primary")
        self.remove_button = widgets.Button(description="Remove rule")
        self.apply_button.on_click(lambda _: self.apply_rule())
        self.remove_button.on_click(lambda _: self.remove_rule())
        controls = [self.header, self.match_type, self.value, self.subset, self.default,
                    widgets.HBox([self.apply_button, self.remove_button])]
        super().__init__(lab, service, namespace, f"Header routing for {service}", controls)
        self.form = {"header": self.header, "match_type": self.match_type, "value": self.value,
                     "subset": self.subset, "default": self.default}
        self.refresh()
        if header is not None:
            self.header.value = header
        if value is not None:
            self.value.value = value

    def reload(self) -> str:
        names = istio.subsets(self.destination_rule())
        values = istio.header_route_values(self.virtual_service(), names)
        self.set_choices(self.subset, names, values["subset"])
        self.set_choices(self.default, [istio.KEEP, *names], istio.KEEP)
        self.show_values(values)
        return "" if names else self.no_subsets()

    def apply_rule(self) -> bool:
        if not self.sync():
            return False
        if not self.subset.value:
            self.show_error("pick a subset to route matching requests to")
            return False
        default = None if self.default.value in (None, istio.KEEP) else str(self.default.value)
        resource = istio.with_header_route(
            self.virtual_service(), self.service, self.namespace, self.header.value, str(self.match_type.value),
            self.value.value, str(self.subset.value), default,
        )
        return self.apply(resource)

    def remove_rule(self) -> bool:
        """Remove the header rule; every other rule stays."""
        current = self.virtual_service()
        if current is None or istio.header_rule_index(current) is None:
            self.show_error(f"{self.service} has no header rule to remove")
            return False
        return self.apply(istio.without_header_route(current))


class RouteControl(ServiceControl):
    """A ServiceControl that sets fields on one rule (or every rule) of the VirtualService.

    It starts on the rule that has the policy (every rule when they all
    agree, meshkit.notebook.istio.policy_rule) and shows that rule's values;
    picking another rule shows its values. Subclasses say which route
    fields they own (`policy_keys`), how to read them from a rule (`values_of`) and
    what to write (`fields`, given the rule as it is; None removes a field).
    """

    policy_keys: tuple[str, ...] = ()

    def __init__(self, lab: Lab, service: str, namespace: str | None, title: str,
                 controls: Mapping[str, widgets.ValueWidget]) -> None:
        self.rule = widgets.Dropdown(options=[("every rule", None)], value=None, description="on rule", style=LABEL,
                                     layout=WIDE)
        self.apply_button = widgets.Button(description="Apply", button_style="primary")
        self.apply_button.on_click(lambda _: self.apply_fields())
        self._vs: istio.Manifest | None = None
        self._started = False
        super().__init__(lab, service, namespace, title, [*controls.values(), self.rule, self.apply_button])
        self.form = dict(controls)
        self.refresh()
        self.rule.observe(self._picked, names="value")

    def values_of(self, rule: Mapping[str, Any]) -> dict[str, Any]:
        raise NotImplementedError

    def fields(self, rule: Mapping[str, Any]) -> dict[str, Any]:
        raise NotImplementedError

    def reload(self) -> str:
        """The VirtualService's rules, and the values of the chosen one (the lab's pick the first time)."""
        self._vs = self.virtual_service()
        rules = istio.http_rules(self._vs)
        options: list[tuple[str, int | None]] = [("every rule", None)]
        options += [(f"{i + 1}: {istio.describe_rule(r)}", i) for i, r in enumerate(rules)]
        suggested = istio.policy_rule(self._vs, self.policy_keys)
        self.set_choices(self.rule, options, suggested)
        if not self._started:
            with self.quietly():
                self.rule.value = suggested
            self._started = True
        self.show_values(self.values_of(istio.rule_policy(self._vs, self.rule.value, self.policy_keys)))
        return ""

    def refresh_rules(self) -> None:
        """Read the VirtualService's rules again (kept for notebooks that call it; refresh() does the same)."""
        self.refresh()

    def _picked(self, change: dict[str, Any]) -> None:
        if not self.quiet:
            self.show_values(self.values_of(istio.rule_policy(self._vs, change["new"], self.policy_keys)))

    def apply_fields(self) -> bool:
        if not self.sync():
            return False
        vs = self.virtual_service()
        try:
            resource = istio.with_rule_fields(vs, self.service, self.namespace,
                                              self.fields(istio.rule_policy(vs, self.rule.value, self.policy_keys)),
                                              self.rule.value)
        except IndexError as exc:
            self.show_error(f"{exc}; pick the rule again")
            return False
        return self.apply(resource)


class FaultWidget(RouteControl):
    """Fault injection on a route: delay (ms, % of requests) and abort (status, % of requests).

    A 0 ms delay and a 0% abort are off; with both off the route's fault is
    removed.
    """

    policy_keys = istio.FAULT_KEYS

    def __init__(self, lab: Lab, service: str, namespace: str | None = None) -> None:
        self.delay_ms = number("delay (ms)", 0, MAX_MS)
        self.delay_percent = percent("delay %", 100.0)
        self.abort_status = widgets.IntText(value=500, description="abort status", style=LABEL)
        self.abort_percent = percent("abort %", 0.0)
        controls = {"delay_ms": self.delay_ms, "delay_percent": self.delay_percent,
                    "abort_status": self.abort_status, "abort_percent": self.abort_percent}
        super().__init__(lab, service, namespace, f"Fault injection for {service}", controls)

    def values_of(self, rule: Mapping[str, Any]) -> dict[str, Any]:
        return istio.fault_values(rule)

    def fields(self, rule: Mapping[str, Any]) -> dict[str, Any]:
        """The route's fault: delay and abort, each None when off."""
        return {"fault": istio.fault_changes(self.delay_ms.value, self.delay_percent.value, self.abort_status.value,
                                             self.abort_percent.value)}


class RetryWidget(RouteControl):
    """Retries (attempts, per-try timeout, retryOn) and the route's overall timeout.

    0 ms means "not set": no per-try timeout, no route timeout (Istio's
    default). An empty retryOn keeps Istio's default conditions. A route
    without `retries` shows Istio's default policy (2 attempts).
    """

    policy_keys = istio.RETRY_KEYS

    def __init__(self, lab: Lab, service: str, namespace: str | None = None) -> None:
        self.attempts = number("attempts", istio.ISTIO_RETRY_ATTEMPTS, 100)
        self.per_try_timeout_ms = number("per-try timeout (ms)", 0, MAX_MS)
        self.retry_on = widgets.Text(value="", placeholder="Istio's default: connect-failure,refused-stream,...",
                                     description="retry on", style=LABEL, layout=WIDE)
        self.timeout_ms = number("timeout (ms)", 0, MAX_MS)
        controls = {"attempts": self.attempts, "per_try_timeout_ms": self.per_try_timeout_ms,
                    "retry_on": self.retry_on, "timeout_ms": self.timeout_ms}
        super().__init__(lab, service, namespace, f"Retries and timeout for {service}", controls)

    def values_of(self, rule: Mapping[str, Any]) -> dict[str, Any]:
        return istio.retry_values(rule)

    def fields(self, rule: Mapping[str, Any]) -> dict[str, Any]:
        """The route's retries and timeout (None removes one)."""
        return istio.retry_changes(rule, self.attempts.value, self.per_try_timeout_ms.value, self.retry_on.value,
                                   self.timeout_ms.value)


class BreakerWidget(ServiceControl):
    """Circuit breaker (connectionPool) and outlier detection in the service's DestinationRule.

    It shows the DestinationRule's service-wide trafficPolicy as it is (a
    section it has is ticked, with its values) and writes back only these
    limits and thresholds: subsets, load balancing, TLS and fields no control
    shows stay (meshkit.notebook.istio.with_traffic_policy). A limit of 0
    means no limit, as in Istio; an unticked section is removed.
    """

    def __init__(self, lab: Lab, service: str, namespace: str | None = None) -> None:
        self.pool_on = widgets.Checkbox(value=False, description="circuit breaker (connectionPool)", indent=False,
                                        layout=widgets.Layout(width="auto"))
        self.max_connections = number("maxConnections", 1, MAX_LIMIT)
        self.max_pending = number("http1MaxPendingRequests", 1, MAX_LIMIT)
        self.max_per_connection = number("maxRequestsPerConnection", 0, MAX_LIMIT)
        self.max_retries = number("maxRetries", 0, MAX_LIMIT)
        self.outlier_on = widgets.Checkbox(value=False, description="outlier detection", indent=False,
                                           layout=widgets.Layout(width="auto"))
        self.consecutive_5xx = number("consecutive5xxErrors", 5, MAX_LIMIT)
        self.interval_ms = number("interval (ms)", 1000, MAX_MS)
        self.base_ejection_ms = number("baseEjectionTime (ms)", 30_000, MAX_MS)
        self.max_ejection_percent = number("maxEjectionPercent", 100, 100)
        self.apply_button = widgets.Button(description="Apply", button_style="primary")
        self.apply_button.on_click(lambda _: self.apply_policy())
        controls: list[widgets.Widget] = [
            self.pool_on, self.max_connections, self.max_pending, self.max_per_connection, self.max_retries,
            self.outlier_on, self.consecutive_5xx, self.interval_ms, self.base_ejection_ms, self.max_ejection_percent,
            self.apply_button,
        ]
        super().__init__(lab, service, namespace, f"Circuit breaker and outlier detection for {service}", controls)
        self.form = {
            "pool_on": self.pool_on, "max_connections": self.max_connections, "max_pending": self.max_pending,
            "max_per_connection": self.max_per_connection, "max_retries": self.max_retries,
            "outlier_on": self.outlier_on, "consecutive_5xx": self.consecutive_5xx, "interval_ms": self.interval_ms,
            "base_ejection_ms": self.base_ejection_ms, "max_ejection_percent": self.max_ejection_percent,
        }
        self.refresh()

    def reload(self) -> str:
        self.show_values(istio.breaker_values(self.destination_rule()))
        return ""

    def apply_policy(self) -> bool:
        if not self.sync():
            return False
        pool = istio.connection_pool_changes(self.max_connections.value, self.max_pending.value,
                                             self.max_per_connection.value, self.max_retries.value) \
            if self.pool_on.value else None
        outlier = istio.outlier_detection_block(self.consecutive_5xx.value, self.interval_ms.value,
                                                self.base_ejection_ms.value, self.max_ejection_percent.value) \
            if self.outlier_on.value else None
        return self.apply(istio.with_traffic_policy(self.destination_rule(), self.service, self.namespace, pool, outlier))

