"""From a snapshot's VirtualServices and DestinationRules to a route table per host.

Compiled once per snapshot, for this node; per request only matching and a
weighted pick remain (DESIGN.md, "Performance shape").

Semantics, as Istio documents them:

- **Rules in order, first match wins**: "routing rules are evaluated in
  sequential order from top to bottom, with the first rule in the virtual
  service definition being given highest priority"
  (https://istio.io/latest/docs/concepts/traffic-management/#routing-rule-precedence).
  A rule without `match` matches every request. A request that matches no
  rule of a host's VirtualService gets 404 NR, as on Istio (no fallback to
  the plain service).
- **Within a rule**, any one of its `match` entries must hold, and within an
  entry every condition given (HTTPMatchRequest: "All conditions inside a
  single match block have AND semantics, while the list of match blocks have
  OR semantics"). `ignoreUriCase` applies to exact and prefix uri matches
  only ("the case will be ignored only in the case of exact and prefix URI
  matches"). Header values that appear several times are matched joined with
  ",", as Envoy does; query parameters by their first value, undecoded.
- **sourceLabels** depend only on the calling workload, so they are decided
  here: a match entry whose labels this node lacks is dropped, and a rule
  whose entries are all dropped is dropped.
- **No VirtualService**: one rule to the whole service (every endpoint), with
  Istio's default retry policy and no timeout.
- **Two VirtualServices for one host**: Istio merges VirtualServices only
  for gateways; for sidecars the conflict is reported (IST0109,
  https://istio.io/latest/docs/reference/config/analysis/ist0109/) and one
  of them is used. meshkit uses the first in the snapshot's order
  (namespace, then name) and lists the others in `RouteTable.ignored`.
- **Two DestinationRules for one host** are merged as Istio does
  (https://istio.io/latest/docs/ops/best-practices/traffic-management/#split-virtual-services):
  the subsets of both are available (a subset name defined twice: the first
  wins), and the first rule's top-level traffic policy applies.
- **Subsets** are clusters: the service's endpoints whose labels include the
  subset's labels, with the subset's merged traffic policy. A destination
  naming a subset no DestinationRule defines has no cluster: the request
  gets 503 NC, as Envoy answers for a missing cluster.
- **Fault injection turns off the rule's timeout and retries**: "Note that
  timeouts or retries will not be enabled when faults are enabled on the
  client side"
  (https://istio.io/latest/docs/reference/config/networking/virtual-service/#HTTPRoute,
  the `fault` field; istio/istio#13705 tracks lifting it).

Gateways (`compile_gateway_routes`), as Istio's ingress gateway does:

- A VirtualService applies to the sidecars when its `gateways` hold `mesh`
  (the default), and to a gateway when they name a Gateway that selects it;
  a match entry's own `gateways` replace the VirtualService's for that entry.
- A gateway routes by the request's Host: the VirtualService hosts that a
  server of the Gateway accepts (same or narrower host; `*` takes every
  host, `*.example.com` its subdomains; the server host's namespace part
  names whose VirtualServices may bind). A host named exactly wins over a
  wildcard, a longer wildcard over a shorter. Istio merges the
  VirtualServices for one host on a gateway, so their rules are tried in
  order, one VirtualService's after another's.
- A request whose host no VirtualService claims, or that matches no rule,
  gets 404 NR, as Envoy's gateway answers.

The sidecar passes `make_cluster`, which turns a `ClusterSpec` into its own
live cluster object (connection pools, balancer, breaker and outlier state);
the table holds those objects directly, so a request never looks a cluster
up by name.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from meshkit.core.edits import CompiledOps, compile_ops
from meshkit.core.retry import NO_RETRIES, RetryPolicy
from meshkit.core.rules import (
    MESH,
    DEFAULT_POLICY,
    DEFAULT_RETRY,
    AbortSpec,
    DelaySpec,
    DestinationSpec,
    FaultSpec,
    HttpRouteSpec,
    MatchSpec,
    PolicySpec,
    StringMatch,
    GatewaySpec,
    ServerHost,
    SubsetSpec,
    VirtualServiceSpec,
)
from meshkit.core.services import normalize_host, spellings
from meshkit.core.snapshot import Endpoint, Snapshot
from meshkit.names import CLUSTER_DOMAIN

T = TypeVar("T")
Header = tuple[bytes, bytes]
DEFAULT_PORT = 80


@dataclass(frozen=True, slots=True)
class ClusterSpec:
    """A group of endpoints with one traffic policy: Envoy's cluster, named as Istio names it."""

    name: str
    host: str
    subset: str | None
    port: int
    policy: PolicySpec
    endpoints: tuple[Endpoint, ...]


def cluster_name(host: str, port: int, subset: str | None) -> str:
    """Istio's cluster name, `outbound|9080|v1|reviews.default.svc.cluster.local`."""
    return f"outbound|{port}|{subset or ''}|{host}"


class RequestView:
    """The parts of a request head that matches look at, decoded on first use."""

    __slots__ = ("method", "target", "raw_headers", "authority", "_path", "_headers", "_params")

    def __init__(self, method: bytes, target: bytes, headers: Sequence[Header], authority: bytes) -> None:
        self.method = method
        self.target = target
        self.raw_headers = headers
        self.authority = authority
        self._path: str | None = None
        self._headers: dict[str, str] | None = None
        self._params: dict[str, str] | None = None

    @property
    def path(self) -> str:
        if self._path is None:
            self._path = self.target.partition(b"?")[0].decode("latin-1")
        return self._path

    def header(self, name: str) -> str | None:
        headers = self._headers
        if headers is None:
            collected: dict[str, list[str]] = {}
            for raw_name, raw_value in self.raw_headers:
                collected.setdefault(raw_name.decode("latin-1").lower(), []).append(raw_value.decode("latin-1"))
            headers = self._headers = {k: ",".join(v) for k, v in collected.items()}
        return headers.get(name)

    def param(self, name: str) -> str | None:
        params = self._params
        if params is None:
            params = {}
            query = self.target.partition(b"?")[2].decode("latin-1")
            for pair in query.split("&"):
                key, _, value = pair.partition("=")
                if key and key not in params:
                    params[key] = value
            self._params = params
        return params.get(name)

    def port(self, default: int) -> int:
        authority = self.authority
        if authority.startswith(b"["):
            authority = authority.rpartition(b"]")[2]
        _, colon, digits = authority.rpartition(b":")
        return int(digits) if colon and digits.isdigit() and len(digits) <= 5 else default


Test = Callable[[str], object]


def compile_string_match(match: StringMatch, ignore_case: bool = False) -> Test:
    """A predicate on a string; for `present` it holds for any value."""
    value = match.value
    if match.kind == "regex":
        return re.compile(value).fullmatch
    if match.kind == "present":
        return lambda text: True
    if ignore_case:
        lowered = value.lower()
        if match.kind == "exact":
            return lambda text: text.lower() == lowered
        return lambda text: text.lower().startswith(lowered)
    if match.kind == "exact":
        return lambda text: text == value
    return lambda text: text.startswith(value)


class CompiledMatch:
    """One match entry, ready to test a RequestView."""

    __slots__ = ("uri", "prefix_length", "method", "headers", "without", "params", "port")

    def __init__(self, spec: MatchSpec) -> None:
        self.uri = compile_string_match(spec.uri, spec.ignore_uri_case) if spec.uri else None
        self.prefix_length = len(spec.uri.value) if spec.uri is not None and spec.uri.kind == "prefix" else None
        self.method = compile_string_match(spec.method) if spec.method else None
        self.headers = tuple((name, compile_string_match(m)) for name, m in spec.headers)
        self.without = tuple((name, compile_string_match(m)) for name, m in spec.without_headers)
        self.params = tuple((name, compile_string_match(m)) for name, m in spec.query_params)
        self.port = spec.port

    def matches(self, view: RequestView, default_port: int) -> bool:
        if self.uri is not None and not self.uri(view.path):
            return False
        if self.method is not None and not self.method(view.method.decode("latin-1")):
            return False
        for name, test in self.headers:
            value = view.header(name)
            if value is None or not test(value):
                return False
        for name, test in self.without:
            value = view.header(name)
            if value is not None and test(value):
                return False
        for name, test in self.params:
            value = view.param(name)
            if value is None or not test(value):
                return False
        return self.port is None or view.port(default_port) == self.port


class Destination(Generic[T]):
    """Where a picked request goes: the cluster (None: no such subset) and the edits."""

    __slots__ = ("cluster", "host", "subset", "request_ops", "response_ops")

    def __init__(self, cluster: T | None, host: str, subset: str | None, request_ops: CompiledOps | None, response_ops: CompiledOps | None) -> None:
        self.cluster = cluster
        self.host = host
        self.subset = subset
        self.request_ops = request_ops
        self.response_ops = response_ops

    def describe(self) -> str:
        return f"{self.host} subset {self.subset}" if self.subset else self.host


GOLDEN_FRACTION = (5**0.5 - 1) / 2
"""The fractional part of the golden ratio: the step that spreads draws most evenly."""


class Rule(Generic[T]):
    """One compiled http rule: its matches, weighted destinations and policies."""

    __slots__ = (
        "name",
        "matches",
        "destinations",
        "cumulative",
        "total",
        "rewrite",
        "timeout",
        "retry",
        "delay",
        "abort",
        "mirror",
        "mirror_percentage",
        "phase",
    )

    def __init__(
        self,
        name: str,
        matches: tuple[CompiledMatch, ...],
        destinations: tuple[tuple[Destination[T], int], ...],
        rewrite: str | None,
        timeout: float | None,
        retry: RetryPolicy,
        fault: FaultSpec | None,
        mirror: Destination[T] | None,
        mirror_percentage: float,
    ) -> None:
        self.name = name
        self.matches = matches
        kept = [(d, w) for d, w in destinations if w > 0]
        self.destinations = tuple(d for d, _ in kept)
        running = 0
        cumulative = []
        for _, weight in kept:
            running += weight
            cumulative.append(running)
        self.cumulative = tuple(cumulative)
        self.total = running
        self.rewrite = rewrite.encode("latin-1") if rewrite is not None else None
        self.timeout = timeout
        self.retry = retry
        self.delay: DelaySpec | None = fault.delay if fault else None
        self.abort: AbortSpec | None = fault.abort if fault else None
        self.mirror = mirror
        self.mirror_percentage = mirror_percentage
        self.phase = 0.0

    def next_draw(self) -> float:
        """The next draw for `pick`, spread evenly over [0, 1) rather than independent.

        Envoy draws a fresh random number per request, so a 90/10 split is
        90/10 only on average: 100 calls may show 4 or 18 at v2, and a
        learner moving a slider cannot tell the weights from the noise. The
        golden-ratio sequence (each draw the last plus 0.618..., modulo 1) is
        the simplest low-discrepancy sequence: any run of n consecutive draws
        puts within a few of weight*n/total in each destination's interval,
        while the long-run shares are exactly Envoy's. The sequence restarts
        with each snapshot; the sidecar's event loop is single-threaded, so
        the update needs no lock.
        """
        self.phase = (self.phase + GOLDEN_FRACTION) % 1.0
        return self.phase

    def pick(self, draw: float) -> Destination[T]:
        """The destination for a uniform `draw` in [0, 1): each gets weight/total of the draws."""
        destinations = self.destinations
        if len(destinations) == 1:
            return destinations[0]
        index = bisect_right(self.cumulative, draw * self.total)
        return destinations[min(index, len(destinations) - 1)]


def injected_delay(rule: Rule[T], draw: float) -> float | None:
    """The fixed delay for this request, if the rule's delay fault hits it.

    `draw` is uniform in [0, 100): a fault with percentage p hits p% of
    requests, as Envoy's fractional percent does; percentage 0 hits none.
    """
    delay = rule.delay
    if delay is None or draw >= delay.percentage:
        return None
    return delay.fixed_delay


def injected_abort(rule: Rule[T], draw: float) -> int | None:
    """The status to answer with, if the rule's abort fault hits this request."""
    abort = rule.abort
    if abort is None or draw >= abort.percentage:
        return None
    return abort.http_status


class HostRoutes(Generic[T]):
    """The rules for one destination host, in order."""

    __slots__ = ("host", "port", "source", "rules", "unconditional")

    def __init__(self, host: str, port: int, source: str, rules: tuple[Rule[T], ...]) -> None:
        self.host = host
        self.port = port
        self.source = source
        self.rules = rules
        self.unconditional = bool(rules) and not rules[0].matches

    def select(self, method: bytes, target: bytes, headers: Sequence[Header], authority: bytes) -> tuple[Rule[T], CompiledMatch | None] | None:
        """The first rule that matches, and the match entry that did; None: 404 NR."""
        rules = self.rules
        if self.unconditional:
            return rules[0], None
        view = RequestView(method, target, headers, authority)
        for rule in rules:
            if not rule.matches:
                return rule, None
            for match in rule.matches:
                if match.matches(view, self.port):
                    return rule, match
        return None


@dataclass(frozen=True, slots=True)
class RouteTable(Generic[T]):
    """Everything outbound routing needs from one snapshot."""

    index: Mapping[str, HostRoutes[T]]
    hosts: tuple[str, ...]
    clusters: Mapping[str, T]
    ignored: tuple[str, ...]
    # A gateway's wildcard hosts, most specific first: (suffix, routes); "" is `*`.
    wildcards: tuple[tuple[str, HostRoutes[T]], ...] = ()

    def resolve(self, authority: str) -> HostRoutes[T] | None:
        """The routes for the host an authority names (Kubernetes DNS spellings; a gateway's wildcards), or None."""
        host = normalize_host(authority)
        found = self.index.get(host)
        if found is None and self.wildcards:
            for suffix, routes in self.wildcards:
                if host.endswith(suffix):
                    return routes
        return found


def _labels_hold(wanted: Mapping[str, str], labels: Mapping[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in wanted.items())


def _split_fqdn(host: str) -> tuple[str, str] | None:
    suffix = "." + CLUSTER_DOMAIN
    if not host.endswith(suffix):
        return None
    parts = host[: -len(suffix)].split(".")
    return (parts[0], parts[1]) if len(parts) == 2 else None


class _Compiler(Generic[T]):
    """Builds clusters once each and rules that point at them."""

    def __init__(self, snapshot: Snapshot, make_cluster: Callable[[ClusterSpec], T]) -> None:
        self.snapshot = snapshot
        self.make_cluster = make_cluster
        self.policies: dict[str, PolicySpec] = {}
        self.subsets: dict[str, dict[str, SubsetSpec]] = {}
        for rule in snapshot.destination_rules:
            self.policies.setdefault(rule.host, rule.policy)
            named = self.subsets.setdefault(rule.host, {})
            for subset in rule.subsets:
                named.setdefault(subset.name, subset)
        self.clusters: dict[str, T] = {}

    def port_of(self, host: str) -> int:
        service = self.snapshot.services.get(host)
        return service.port if service is not None else DEFAULT_PORT

    def cluster(self, host: str, subset: str | None) -> T | None:
        port = self.port_of(host)
        name = cluster_name(host, port, subset)
        if name in self.clusters:
            return self.clusters[name]
        service = self.snapshot.services.get(host)
        endpoints = service.endpoints if service is not None else ()
        if subset is None:
            spec = ClusterSpec(name, host, None, port, self.policies.get(host, DEFAULT_POLICY), endpoints)
        else:
            defined = self.subsets.get(host, {}).get(subset)
            if defined is None:
                return None
            chosen = tuple(ep for ep in endpoints if _labels_hold(defined.labels, ep.labels))
            spec = ClusterSpec(name, host, subset, port, defined.policy, chosen)
        made = self.clusters[name] = self.make_cluster(spec)
        return made

    def destination(self, spec: DestinationSpec, ops: tuple[CompiledOps | None, CompiledOps | None]) -> Destination[T]:
        return Destination(self.cluster(spec.host, spec.subset), spec.host, spec.subset, ops[0], ops[1])

    def rule(self, spec: HttpRouteSpec, index: int, labels: Mapping[str, str], bound: frozenset[str] = frozenset((MESH,))) -> Rule[T] | None:
        """The compiled rule for a caller with `labels` that the VirtualService reached through `bound`
        (mesh, or the Gateways); None when none of its match entries applies here."""
        matches = tuple(
            CompiledMatch(m)
            for m in spec.match
            if _labels_hold(m.source_labels, labels) and (not m.gateways or not bound.isdisjoint(m.gateways))
        )
        if spec.match and not matches:
            return None  # every match entry names other callers
        destinations = tuple(
            (
                self.destination(
                    target.destination,
                    (
                        compile_ops(target.headers.request, spec.headers.request),
                        compile_ops(target.headers.response, spec.headers.response),
                    ),
                ),
                target.weight,
            )
            for target in spec.route
        )
        faulty = spec.fault is not None
        return Rule(
            name=spec.name or f"http[{index}]",
            matches=matches,
            destinations=destinations,
            rewrite=spec.rewrite_uri,
            timeout=None if faulty else spec.timeout,
            retry=NO_RETRIES if faulty else RetryPolicy(spec.retries),
            fault=spec.fault,
            mirror=self.destination(spec.mirror, (None, None)) if spec.mirror is not None else None,
            mirror_percentage=spec.mirror_percentage if spec.mirror is not None else 0.0,
        )

    def default_rule(self, host: str) -> Rule[T]:
        target = Destination(self.cluster(host, None), host, None, None, None)
        return Rule("default", (), ((target, 100),), None, None, RetryPolicy(DEFAULT_RETRY), None, None, 0.0)


def compile_routes(
    snapshot: Snapshot,
    namespace: str,
    labels: Mapping[str, str],
    make_cluster: Callable[[ClusterSpec], T],
) -> RouteTable[T]:
    """The route table for a workload in `namespace` with `labels`."""
    compiler: _Compiler[T] = _Compiler(snapshot, make_cluster)
    for host in snapshot.services:
        compiler.cluster(host, None)
    for host, named in compiler.subsets.items():
        for subset in named:
            compiler.cluster(host, subset)

    claimed: dict[str, tuple[str, tuple[HttpRouteSpec, ...]]] = {}
    ignored: list[str] = []
    for vs in snapshot.virtual_services:
        if not vs.for_mesh:
            continue  # bound to gateways only
        for host in vs.hosts:
            if host in claimed:
                ignored.append(f"VirtualService {vs.namespace}/{vs.name} for {host}: {claimed[host][0]} already routes it")
            else:
                claimed[host] = (f"VirtualService {vs.namespace}/{vs.name}", vs.http)

    routes: dict[str, HostRoutes[T]] = {}
    for host in sorted(set(snapshot.services) | set(claimed)):
        if host in claimed:
            source, specs = claimed[host]
            compiled = (compiler.rule(spec, i, labels) for i, spec in enumerate(specs))
            rules = tuple(rule for rule in compiled if rule is not None)
        else:
            source, rules = "no VirtualService: the default route to every endpoint", (compiler.default_rule(host),)
        routes[host] = HostRoutes(host, compiler.port_of(host), source, rules)

    index: dict[str, HostRoutes[T]] = {}
    for host, host_routes in routes.items():
        split = _split_fqdn(host)
        names = spellings(split[0], split[1], namespace) if split else [host]
        for name in names:
            index[name] = host_routes
    return RouteTable(index, tuple(sorted(routes)), compiler.clusters, tuple(ignored))


def host_covers(pattern: str, host: str) -> bool:
    """A gateway host `pattern` (`*`, `*.example.com`, a name) accepts `host` (which may be a wildcard too)."""
    if pattern == "*" or pattern == host:
        return True
    return pattern.startswith("*.") and host.endswith(pattern[1:]) and host != pattern[1:]


def bound_host(server: ServerHost, vs: VirtualServiceSpec, vs_host: str) -> str | None:
    """The host a gateway server routes with this VirtualService host: the narrower of the two, or None.

    The server's namespace part must allow the VirtualService's namespace.
    """
    if server.namespace not in ("*", vs.namespace):
        return None
    if host_covers(server.host, vs_host):
        return vs_host
    if host_covers(vs_host, server.host):
        return server.host
    return None


def gateway_bindings(
    gateways: Sequence[GatewaySpec], virtual_services: Sequence[VirtualServiceSpec], ports: frozenset[int]
) -> dict[str, list[tuple[VirtualServiceSpec, frozenset[str]]]]:
    """host -> the VirtualServices a gateway listening on `ports` routes it with, in order, each with
    the Gateways it was bound through (a rule's match `gateways` are read against them)."""
    hosts_by_gateway: dict[str, list[ServerHost]] = {}
    for gateway in gateways:
        listed = hosts_by_gateway.setdefault(gateway.reference, [])
        for server in gateway.servers:
            if server.port in ports:
                listed.extend(server.hosts)
    bindings: dict[str, list[tuple[VirtualServiceSpec, frozenset[str]]]] = {}
    for vs in virtual_services:
        through: dict[str, set[str]] = {}
        for reference in vs.gateways:
            for server_host in hosts_by_gateway.get(reference, ()):
                for vs_host in vs.hosts:
                    host = bound_host(server_host, vs, vs_host)
                    if host is not None:
                        through.setdefault(host, set()).add(reference)
        for host, references in through.items():
            bindings.setdefault(host, []).append((vs, frozenset(references)))
    return bindings


def compile_gateway_routes(
    snapshot: Snapshot,
    labels: Mapping[str, str],
    ports: frozenset[int],
    make_cluster: Callable[[ClusterSpec], T],
) -> RouteTable[T]:
    """The route table of a gateway whose listener serves the Gateway server ports `ports`.

    `snapshot.gateways` are the Gateways that select this workload; requests
    are routed by Host with the VirtualServices bound to them (module docstring).
    """
    compiler: _Compiler[T] = _Compiler(snapshot, make_cluster)
    for host in snapshot.services:
        compiler.cluster(host, None)
    for host, named in compiler.subsets.items():
        for subset in named:
            compiler.cluster(host, subset)
    listener_port = min(ports) if ports else DEFAULT_PORT
    routes: dict[str, HostRoutes[T]] = {}
    for host, bound in gateway_bindings(snapshot.gateways, snapshot.virtual_services, ports).items():
        rules: list[Rule[T]] = []
        for vs, references in bound:
            compiled = (compiler.rule(spec, i, labels, references) for i, spec in enumerate(vs.http))
            rules.extend(rule for rule in compiled if rule is not None)
        names = ", ".join(f"{vs.namespace}/{vs.name}" for vs, _ in bound)
        gateways = ", ".join(sorted({ref for _, refs in bound for ref in refs}))
        source = f"VirtualService {names} (Gateway {gateways})"
        routes[host] = HostRoutes(host, listener_port, source, tuple(rules))
    index = {host: r for host, r in routes.items() if not host.startswith("*")}
    wildcards = sorted(
        ((host[1:], r) for host, r in routes.items() if host.startswith("*")),
        key=lambda item: -len(item[0]),
    )
    return RouteTable(index, tuple(sorted(routes)), compiler.clusters, (), tuple(wildcards))
