"""Checks that need the lab: known services, their workloads, other DestinationRules.

A route to `reviews` subset `v9` is well-formed on its own; it is only wrong
because no service `reviews` exists, or no DestinationRule for it defines
`v9`. Istio accepts such a route and the request fails later with a 503 (no
healthy upstream); meshkit refuses it with the reason instead, which is what
a learner needs (HARDENING.md: "unknown host ... rejected with the resource,
the field path and the reason").

What is valid but probably unintended comes back as warnings: a subset whose
labels match no workload (Istio allows it: the workload may be deployed
later), or a policy whose selector matches nothing yet.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import chain
from typing import Any, NamedTuple

from meshkit.config.destination_rule import DestinationRule, Subset
from meshkit.config.gateway_api import GatewayHTTPRoute
from meshkit.config.gateway_translation import is_service_parent
from meshkit.config.hosts import CLUSTER_DOMAIN, fqdn, version_service
from meshkit.config.loading import parse
from meshkit.config.problems import Path, Problem
from meshkit.config.rate_limit import LocalRateLimit
from meshkit.config.routing_rules import binds_mesh
from meshkit.config.rules import resource_problems, resource_warnings
from meshkit.config.schema import Resource, WorkloadSelector
from meshkit.config.security import AuthorizationPolicy, PeerAuthentication
from meshkit.config.virtual_service import Destination, VirtualService

Labels = Mapping[str, str]


@dataclass(frozen=True)
class ConfigContext:
    """What the lab knows that a resource may refer to.

    `services` maps each fully qualified service host
    (`reviews.default.svc.cluster.local`) to the label sets of its workloads,
    one per version (`[{"app": "reviews", "version": "v1"}, ...]`).
    `destination_rules` are the DestinationRules already in the store.
    `ports` maps a service host to its port, where the lab knows it (an
    HTTPRoute names the port of its Service).
    """

    services: Mapping[str, Sequence[Labels]] = field(default_factory=dict)
    destination_rules: Sequence[DestinationRule] = ()
    ports: Mapping[str, int] = field(default_factory=dict)

    def with_destination_rules(self, rules: Iterable[DestinationRule]) -> ConfigContext:
        """This context with `rules` added, each replacing a stored rule of the same namespace and name."""
        added = list(rules)
        keys = {(rule.namespace, rule.name) for rule in added}
        kept = [rule for rule in self.destination_rules if (rule.namespace, rule.name) not in keys]
        return ConfigContext(self.services, tuple(kept + added), self.ports)

    def subsets(self, host: str) -> dict[str, Subset]:
        """Every subset any DestinationRule defines for the fully qualified `host`."""
        return {
            subset.name: subset
            for rule in self.destination_rules
            if fqdn(rule.spec.host, rule.namespace) == host
            for subset in rule.spec.subsets
        }


@dataclass(frozen=True)
class ConfigWarning:
    """Valid config that probably does not do what was meant; shown, never enforced."""

    kind: str
    name: str
    path: str
    reason: str

    def __str__(self) -> str:
        where = f" at {self.path}" if self.path else ""
        return f"{self.kind} {self.name!r}{where}: {self.reason}"


class Validated(NamedTuple):
    """A resource that passed every check, and the warnings about it."""

    resource: Resource
    warnings: tuple[ConfigWarning, ...]


def validate(resource: Resource | Mapping[str, Any], context: ConfigContext) -> Validated:
    """Check a resource against the lab; ConfigError for the first problem.

    A Resource built in Python is checked by the same rules as loaded YAML.
    """
    checked = resource if isinstance(resource, Resource) else parse(dict(resource))
    problems = chain(resource_problems(checked), _context_problems(checked, context))
    if problem := next(problems, None):
        raise problem.error(checked.KIND, checked.name)
    warnings = chain(resource_warnings(checked), _context_warnings(checked, context))
    return Validated(
        checked,
        tuple(ConfigWarning(checked.KIND, checked.name, item.where, item.reason) for item in warnings),
    )


def validate_all(resources: Iterable[Resource], context: ConfigContext) -> list[Validated]:
    """Check resources applied together: their DestinationRules count for their VirtualServices."""
    batch = list(resources)
    combined = context.with_destination_rules(r for r in batch if isinstance(r, DestinationRule))
    return [validate(resource, combined) for resource in batch]


def _context_problems(resource: Resource, context: ConfigContext) -> Iterator[Problem]:
    namespace = resource.namespace
    if isinstance(resource, VirtualService):
        # Hosts routed only at gateways are what browsers ask for (bookinfo.example.com, *), not services.
        mesh_hosts = resource.spec.hosts if binds_mesh(resource) else []
        for i, host in enumerate(mesh_hosts):
            yield from _host_problems(host, namespace, context, ("spec", "hosts", i))
        for i, route in enumerate(resource.spec.http):
            at: Path = ("spec", "http", i)
            for j, target in enumerate(route.route):
                yield from _destination_problems(target.destination, namespace, context, at + ("route", j, "destination"))
            if route.mirror is not None:
                yield from _destination_problems(route.mirror, namespace, context, at + ("mirror",))
    elif isinstance(resource, DestinationRule):
        yield from _host_problems(resource.spec.host, namespace, context, ("spec", "host"))
    elif isinstance(resource, GatewayHTTPRoute):
        yield from _http_route_problems(resource, context)


def _http_route_problems(route: GatewayHTTPRoute, context: ConfigContext) -> Iterator[Problem]:
    """Service parents must be services in the lab, backendRefs services or SERVICE-VERSION, ports theirs."""
    namespace = route.namespace
    for i, ref in enumerate(route.spec.parent_refs):
        if is_service_parent(ref):
            at: Path = ("spec", "parentRefs", i)
            host = fqdn(ref.name, ref.namespace or namespace)
            yield from _host_problems(ref.name, ref.namespace or namespace, context, at + ("name",))
            yield from _port_problems(host, ref.port, context, at + ("port",))
    for i, rule in enumerate(route.spec.rules):
        for j, backend in enumerate(rule.backend_refs):
            at = ("spec", "rules", i, "backendRefs", j)
            host = fqdn(backend.name, namespace)
            if host in context.services:
                yield from _port_problems(host, backend.port, context, at + ("port",))
                continue
            resolved = version_service(host, context.services)
            if resolved is None:
                for problem in _host_problems(backend.name, namespace, context, at + ("name",)):
                    yield Problem(
                        problem.path,
                        problem.reason + "; a backendRef may also name SERVICE-VERSION, such as reviews-v2 "
                        "(the workloads of reviews labelled version: v2)",
                    )
            else:
                yield from _port_problems(resolved[0], backend.port, context, at + ("port",))


def _port_problems(host: str, port: int | None, context: ConfigContext, at: Path) -> Iterator[Problem]:
    known = context.ports.get(host)
    if port is not None and known is not None and port != known:
        yield Problem(at, f"{host} listens on port {known}, not {port}")


def _host_problems(host: str, namespace: str, context: ConfigContext, at: Path) -> Iterator[Problem]:
    full = fqdn(host, namespace)
    if full not in context.services:
        known = ", ".join(sorted(context.services)) or "none yet"
        yield Problem(at, f"no service {host!r} in the lab (read as {full}); known services: {known}")


def _destination_problems(
    destination: Destination, namespace: str, context: ConfigContext, at: Path
) -> Iterator[Problem]:
    host = fqdn(destination.host, namespace)
    if host not in context.services:
        yield from _host_problems(destination.host, namespace, context, at + ("host",))
        return
    if destination.subset is None:
        return
    subsets = context.subsets(host)
    if destination.subset in subsets:
        return
    if subsets:
        reason = f"no subset {destination.subset!r} for {host}; its DestinationRules define {', '.join(subsets)}"
    else:
        reason = (
            f"no subset {destination.subset!r} for {host}: no DestinationRule for this host defines subsets; "
            "apply one first (Bookinfo's destination-rule-all.yaml defines v1, v2, v3)"
        )
    yield Problem(at + ("subset",), reason)


def _context_warnings(resource: Resource, context: ConfigContext) -> Iterator[Problem]:
    if isinstance(resource, DestinationRule):
        host = fqdn(resource.spec.host, resource.namespace)
        workloads = context.services.get(host, ())
        for i, subset in enumerate(resource.spec.subsets):
            if not any(_selects(subset.labels, labels) for labels in workloads):
                yield Problem(
                    ("spec", "subsets", i, "labels"),
                    f"no workload of {host} has labels {_labels_text(subset.labels)}: "
                    f"requests routed to subset {subset.name!r} will fail with 503 until one is deployed",
                )
    elif isinstance(resource, (PeerAuthentication, AuthorizationPolicy, LocalRateLimit)):
        yield from _selector_warnings(resource.spec.selector, resource.namespace, context)


def _selector_warnings(selector: WorkloadSelector | None, namespace: str, context: ConfigContext) -> Iterator[Problem]:
    if selector is None or not selector.match_labels:
        return
    suffix = f".{namespace}.{CLUSTER_DOMAIN}"
    in_namespace = [labels for host, sets in context.services.items() if host.endswith(suffix) for labels in sets]
    if not any(_selects(selector.match_labels, labels) for labels in in_namespace):
        yield Problem(
            ("spec", "selector", "matchLabels"),
            f"no workload in namespace {namespace} has labels {_labels_text(selector.match_labels)}: "
            "this applies to nothing until one is deployed",
        )


def _selects(wanted: Labels, labels: Labels) -> bool:
    """Kubernetes selector semantics: every wanted label present with the same value."""
    return all(labels.get(key) == value for key, value in wanted.items())


def _labels_text(labels: Labels) -> str:
    return ", ".join(f"{key}={value}" for key, value in labels.items()) or "(none)"
