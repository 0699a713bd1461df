"""Traffic widgets: split, header routing, faults, retries, circuit breaker.

Each is a thin view: it reads the service's VirtualService and
DestinationRule from the lab, lets the learner change one part, and applies
the edited resource (meshkit.notebook.istio builds it) through `lab.apply`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import ipywidgets as widgets
from traitlets import Dict, List

from meshkit.lab import Lab
from meshkit.notebook import istio
from meshkit.notebook.controls import ConfigControl, lab_resources
from meshkit.notebook.weights import normalized, rebalance

WIDE = widgets.Layout(width="420px")
LABEL = {"description_width": "150px"}
MAX_MS = 3_600_000
"""Longest duration a field offers (an hour): more is a typo in a lab."""


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


class SplitWidget(ServiceControl):
    """One slider per subset of the service, always adding up to 100, applied on release.

    Subsets come from the service's DestinationRule; the starting weights
    from its VirtualService's default rule (100 to the first subset when it
    has none). Moving one slider rebalances the others in proportion
    (meshkit.notebook.weights.rebalance) and applies the split as the
    VirtualService's default route. `weights` is the split on screen;
    `version` and `ack_ms` tell when the lab took it.
    """

    weights = Dict()
    subsets: List[str] = List()

    def __init__(self, lab: Lab, service: str, namespace: str | None = None) -> None:
        self.sliders: dict[str, widgets.IntSlider] = {}
        self._syncing = False
        self.box = widgets.VBox()
        super().__init__(lab, service, namespace, f"Traffic split for {service}", [self.box])
        self.refresh()

    def refresh(self) -> None:
        """Read subsets and weights from the lab again (after applying YAML by hand)."""
        names = istio.subsets(self.destination_rule())
        self.subsets = names
        self.versions = istio.subset_versions(self.destination_rule())
        if not names:
            self.sliders = {}
            self.box.children = []
            self.show_error(
                f"no DestinationRule with subsets for {self.service} in namespace {self.namespace}: "
                "apply one (Istio's destination-rule-all.yaml has them), then call refresh()"
            )
            return
        self.sliders = {
            name: widgets.IntSlider(min=0, max=100, step=1, description=name, continuous_update=False,
                                    layout=WIDE, style=LABEL)
            for name in names
        }
        for name, slider in self.sliders.items():
            slider.observe(self._moved, names="value")
        self.box.children = list(self.sliders.values())
        self._show(normalized(istio.split_of(self.virtual_service()), names))
        self.show_message(f"subsets from the DestinationRule: {', '.join(names)}")

    def _show(self, weights: dict[str, int]) -> None:
        self._syncing = True
        try:
            for name, value in weights.items():
                self.sliders[name].value = value
        finally:
            self._syncing = False
        self.weights = dict(weights)

    def _moved(self, change: dict[str, Any]) -> None:
        if self._syncing:
            return
        name = change["owner"].description
        self._show(rebalance(self.weights, name, change["new"]))
        self.apply_split()

    def set_weights(self, weights: dict[str, int]) -> bool:
        """Set and apply a split from code (a script, a headless notebook); missing subsets get 0."""
        self._show(normalized(weights, self.subsets))
        return self.apply_split()

    def apply_split(self) -> bool:
        """Apply the split on screen as the default route of the service's VirtualService."""
        return self.apply(istio.with_split(self.virtual_service(), self.service, self.namespace, self.weights))


class HeaderRouteWidget(ServiceControl):
    """A rule builder: requests whose header matches go to one subset, the rest to a default.

    "(keep)" as the default leaves the default rule as it is, so a split
    applied with the split widget stays in force for everyone else.
    """

    def __init__(self, lab: Lab, service: str, namespace: str | None = None, header: str = "end-user",
                 value: str = "jason") -> None:
        self.header = widgets.Text(value=header, description="header", style=LABEL, layout=WIDE)
        self.match_type = widgets.Dropdown(options=istio.MATCH_TYPES, value="exact", description="match", style=LABEL)
        self.value = widgets.Text(value=value, description="value", style=LABEL, layout=WIDE)
        self.subset = widgets.Dropdown(description="then route to", style=LABEL)
        self.default = widgets.Dropdown(description="everyone else to", style=LABEL)
        self.apply_button = widgets.Button(description="Apply rule", button_style="primary")
        self.remove_button = widgets.Button(description="Remove rule")
        self.apply_button.on_click(lambda _: self.apply_rule())
        self.remove_button.on_click(lambda _: self.remove_rule())
        controls = [self.header, self.match_type, self.value, self.subset, self.default,
                    widgets.HBox([self.apply_button, self.remove_button])]
        super().__init__(lab, service, namespace, f"Header routing for {service}", controls)
        self.refresh()

    def refresh(self) -> None:
        names = istio.subsets(self.destination_rule())
        self.subset.options = names
        self.default.options = ["(keep)", *names]
        if not names:
            self.show_error(f"no DestinationRule with subsets for {self.service}: apply one, then call refresh()")

    def apply_rule(self) -> bool:
        default = None if self.default.value in (None, "(keep)") else str(self.default.value)
        if not self.subset.value:
            self.show_error("pick a subset to route matching requests to")
            return False
        resource = istio.with_header_route(
            self.virtual_service(), self.service, self.namespace, self.header.value, str(self.match_type.value),
            self.value.value, str(self.subset.value), default,
        )
        return self.apply(resource)

    def remove_rule(self) -> bool:
        current = self.virtual_service()
        if current is None:
            self.show_error(f"{self.service} has no VirtualService, so no header rule to remove")
            return False
        return self.apply(istio.without_match_rules(current, self.service, self.namespace))


class RouteControl(ServiceControl):
    """A ServiceControl that sets fields on one rule (or every rule) of the VirtualService.

    `fields` returns the route fields to set from the widget's values (a
    None value removes that field).
    """

    def __init__(self, lab: Lab, service: str, namespace: str | None, title: str, controls: list[widgets.Widget],
                 fields: Callable[[], dict[str, Any]]) -> None:
        self._fields = fields
        self.rule = widgets.Dropdown(description="on rule", style=LABEL, layout=WIDE)
        reload = widgets.Button(description="reload rules", tooltip="read the VirtualService's rules again")
        reload.on_click(lambda _: self.refresh_rules())
        self.apply_button = widgets.Button(description="Apply", button_style="primary")
        self.apply_button.on_click(lambda _: self.apply_fields())
        super().__init__(lab, service, namespace, title,
                         [*controls, widgets.HBox([self.rule, reload]), self.apply_button])
        self.refresh_rules()

    def refresh_rules(self) -> None:
        """Offer "every rule" and each rule of the current VirtualService."""
        vs = self.virtual_service()
        rules = vs["spec"].get("http", []) if vs else []
        options: list[tuple[str, int | None]] = [("every rule", None)]
        options += [(f"{i + 1}: {istio.describe_rule(r)}", i) for i, r in enumerate(rules)]
        self.rule.options = options
        self.rule.value = None

    def apply_fields(self) -> bool:
        try:
            resource = istio.with_rule_fields(self.virtual_service(), self.service, self.namespace, self._fields(),
                                              self.rule.value)
        except IndexError as exc:
            self.show_error(f"{exc}; press 'reload rules'")
            return False
        return self.apply(resource)


class FaultWidget(RouteControl):
    """Fault injection on a route: delay (ms, % of requests) and abort (status, % of requests).

    A 0 ms delay and a 0% abort are off; with both off the route's fault is
    removed.
    """

    def __init__(self, lab: Lab, service: str, namespace: str | None = None) -> None:
        self.delay_ms = number("delay (ms)", 0, MAX_MS)
        self.delay_percent = percent("delay %", 100.0)
        self.abort_status = widgets.IntText(value=500, description="abort status", style=LABEL)
        self.abort_percent = percent("abort %", 0.0)
        controls = [self.delay_ms, self.delay_percent, self.abort_status, self.abort_percent]
        super().__init__(lab, service, namespace, f"Fault injection for {service}", controls, self.fields)

    def fields(self) -> dict[str, Any]:
        """The route's fault, or None to remove it."""
        return {"fault": istio.fault_block(self.delay_ms.value, self.delay_percent.value, self.abort_status.value,
                                           self.abort_percent.value)}


class RetryWidget(RouteControl):
    """Retries (attempts, per-try timeout, retryOn) and the route's overall timeout.

    0 ms means "not set": no per-try timeout, no route timeout (Istio's
    default). An empty retryOn keeps Istio's default conditions.
    """

    def __init__(self, lab: Lab, service: str, namespace: str | None = None) -> None:
        self.attempts = number("attempts", 2, 100)
        self.per_try_timeout_ms = number("per-try timeout (ms)", 0, MAX_MS)
        self.retry_on = widgets.Text(value="5xx,connect-failure", description="retry on", style=LABEL, layout=WIDE)
        self.timeout_ms = number("timeout (ms)", 0, MAX_MS)
        controls = [self.attempts, self.per_try_timeout_ms, self.retry_on, self.timeout_ms]
        super().__init__(lab, service, namespace, f"Retries and timeout for {service}", controls, self.fields)

    def fields(self) -> dict[str, Any]:
        """The route's retries and timeout (None removes the timeout)."""
        timeout = istio.duration(self.timeout_ms.value) if self.timeout_ms.value > 0 else None
        retries = istio.retries_block(self.attempts.value, self.per_try_timeout_ms.value, self.retry_on.value)
        return {"retries": retries, "timeout": timeout}


class BreakerWidget(ServiceControl):
    """Circuit breaker (connectionPool) and outlier detection in the service's DestinationRule.

    The subsets and other policies already in the DestinationRule are kept
    (meshkit.notebook.istio.with_traffic_policy). A limit of 0 means no limit,
    as in Istio; an unticked section is removed.
    """

    def __init__(self, lab: Lab, service: str, namespace: str | None = None) -> None:
        self.pool_on = widgets.Checkbox(value=True, description="circuit breaker (connectionPool)")
        self.max_connections = number("maxConnections", 1)
        self.max_pending = number("http1MaxPendingRequests", 1)
        self.max_per_connection = number("maxRequestsPerConnection", 0)
        self.max_retries = number("maxRetries", 0)
        self.outlier_on = widgets.Checkbox(value=False, description="outlier detection")
        self.consecutive_5xx = number("consecutive5xxErrors", 5, 1000)
        self.interval_ms = number("interval (ms)", 1000, MAX_MS)
        self.base_ejection_ms = number("baseEjectionTime (ms)", 30_000, MAX_MS)
        self.max_ejection_percent = number("maxEjectionPercent", 100, 100)
        self.apply_button = widgets.Button(description="Apply", button_style="primary")
        self.apply_button.on_click(lambda _: self.apply_policy())
        controls = [self.pool_on, self.max_connections, self.max_pending, self.max_per_connection, self.max_retries,
                    self.outlier_on, self.consecutive_5xx, self.interval_ms, self.base_ejection_ms,
                    self.max_ejection_percent, self.apply_button]
        super().__init__(lab, service, namespace, f"Circuit breaker and outlier detection for {service}", controls)

    def apply_policy(self) -> bool:
        pool = istio.connection_pool_block(self.max_connections.value, self.max_pending.value,
                                           self.max_per_connection.value, self.max_retries.value) \
            if self.pool_on.value else None
        outlier = istio.outlier_detection_block(self.consecutive_5xx.value, self.interval_ms.value,
                                                self.base_ejection_ms.value, self.max_ejection_percent.value) \
            if self.outlier_on.value else None
        return self.apply(istio.with_traffic_policy(self.destination_rule(), self.service, self.namespace, pool, outlier))
