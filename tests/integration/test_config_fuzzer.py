"""A config fuzzer: random valid and invalid VirtualServices, DestinationRules and
AuthorizationPolicies applied to and deleted from one real lab (issue 14).

Hypothesis drives a state machine over a small app (service `echo` with
workloads v1 and v2, called from the lab's `curl` through its sidecar). The
test keeps its own model of what it applied: which subsets the
DestinationRule defines, the VirtualService's routes, and the policies. After
every accepted change and its ACK, each sidecar must run exactly the snapshot
the control plane builds for it (resources and version), and probe requests
must end as the model predicts: the set of outcomes a request may have
(status with the version that answered, or with the mesh's response flag) is
computed by pure functions from the model, and only what the model is sure
of is asserted (a weighted split allows either version). Fields the model
does not predict from (retries, header edits, mirrors, connection pools,
outlier detection, load balancing) ride along: they must be accepted and
ACKed and change no outcome.

A refused change is a valid resource with one field broken (an undefined
subset, weights not adding up to 100, an unknown field, a bad duration, an
abort status or percentage out of range, an unknown host, a bad subset name,
a bad action or when key, a `*` inside a path), sometimes applied together with
a valid one: the error must name the kind, the name and the field path, and
the version, the stored config and every sidecar's config_dump must be
unchanged (the valid companion not stored either). Deleting what is not there
and re-applying what is stored change nothing too.

The main tier runs a bounded, derandomized search without shrinking (a real
push per step makes shrinking slow); the slow tier runs a longer one that
shrinks. A failure prints its steps as Python, to keep as a regression test.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

import pytest
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, precondition, rule, run_state_machine_as_test

from meshkit.demo.apps import Latency, WorkloadSpec
from meshkit.errors import ConfigError, UnknownWorkload
from meshkit.lab import Lab

SERVICE = "echo"
VERSIONS = ("v1", "v2")
"""The service's workloads, one per version."""
SUBSETS = ("v1", "v2", "v3")
"""Subsets a DestinationRule may define, each by `version: <name>`; v3 selects no workload (503 UH)."""
SIDECARS = ("curl", "echo-v1", "echo-v2")
PATHS = ("/", "/echo", "/echo/7")
"""Paths the demo app serves, so that every 404 in a probe is the mesh's."""
METHODS = ("GET", "POST")
USERS = ("jason", "ana")
CALLER_APP = "curl"
"""The app label of the lab's curl, which sends every probe."""
CALLER_NAMESPACE = "default"
"""Where the lab's curl runs: the namespace its mTLS identity proves."""
POLICY_NAMES = ("p1", "p2")
ABORT_STATUSES = (400, 418, 429, 500, 503)
TIMEOUTS = ("2s", "5s", "2.5s", "3000ms", "1m", "1h30m")
"""Valid route timeouts, all far above the app's few milliseconds, so none fires."""
AUTHZ_PATHS = ("/", "/echo", "/echo/7", "/echo/*", "*", "*/7")
"""Exact, prefix, presence and suffix forms of AuthorizationPolicy paths."""

WORKLOADS = [WorkloadSpec(name=f"{SERVICE}-{v}", service=SERVICE, version=v, service_account=SERVICE,
                          latency=Latency(1.0, 2.0)) for v in VERSIONS]


# -- the model -----------------------------------------------------------------


@dataclass(frozen=True)
class Match:
    """One HTTPMatchRequest with one condition on the end-user header (`header`: exact,
    `regex`, `present`: {}, `without`: withoutHeaders exact), the uri (`prefix`, `exact`),
    the method, or the caller's app label (`source`: sourceLabels)."""

    kind: str
    value: str


@dataclass(frozen=True)
class Route:
    """One http rule. A destination is (subset or None for the whole service, weight or None)."""

    matches: tuple[Match, ...]
    destinations: tuple[tuple[str | None, int | None], ...]
    abort: tuple[int, float] | None = None
    timeout: str | None = None
    extras: tuple[tuple[str, Any], ...] = ()
    """Fields the model does not predict from (retries, header edits, a mirror): they
    must be accepted, pushed and ACKed, and leave the outcome as it is."""


@dataclass(frozen=True)
class Operation:
    """One `to` of an AuthorizationPolicy rule; an empty field is not given."""

    paths: tuple[str, ...]
    methods: tuple[str, ...]
    not_paths: tuple[str, ...] = ()
    not_methods: tuple[str, ...] = ()


@dataclass(frozen=True)
class AuthzRule:
    """A rule's `to` (empty: any request), the caller namespaces of its `from` (None: any caller)
    and the end-user values of its `when` (None: no condition). Never all three empty."""

    to: tuple[Operation, ...]
    namespaces: tuple[str, ...] | None = None
    users: tuple[str, ...] | None = None


@dataclass(frozen=True)
class Policy:
    """An ALLOW or DENY policy on the echo workloads (`version` narrows the selector to one of them)."""

    action: str
    version: str | None
    rules: tuple[AuthzRule, ...]


@dataclass(frozen=True)
class Probe:
    method: str
    path: str
    user: str | None


@dataclass
class Model:
    """What the test has applied: the DestinationRule's subsets (None: no rule), the routes, the policies."""

    subsets: frozenset[str] | None = None
    traffic_policy: Mapping[str, Any] | None = None
    routes: tuple[Route, ...] | None = None
    policies: dict[str, Policy] = field(default_factory=dict)


Outcome = tuple[int, str]
"""(status, the version that answered) for the app's answers, (status, response flags) for the mesh's."""


def match_holds(match: Match, probe: Probe) -> bool:
    if match.kind == "header":
        return probe.user == match.value
    if match.kind == "regex":
        return probe.user is not None and re.fullmatch(match.value, probe.user) is not None
    if match.kind == "present":
        return probe.user is not None
    if match.kind == "source":
        return match.value == CALLER_APP
    if match.kind == "without":
        return probe.user != match.value
    if match.kind == "prefix":
        return probe.path.startswith(match.value)
    if match.kind == "exact":
        return probe.path == match.value
    return probe.method == match.value


def route_for(routes: tuple[Route, ...], probe: Probe) -> Route | None:
    """First rule wins; a rule without matches takes every request; any one match suffices."""
    for route in routes:
        if not route.matches or any(match_holds(m, probe) for m in route.matches):
            return route
    return None


def authz_string_holds(pattern: str, value: str) -> bool:
    """Istio's string forms: exact, `prefix*`, `*suffix`, or `*` for any value."""
    if pattern == "*":
        return True
    if pattern.endswith("*"):
        return value.startswith(pattern[:-1])
    if pattern.startswith("*"):
        return value.endswith(pattern[1:])
    return value == pattern


def operation_holds(operation: Operation, probe: Probe) -> bool:
    paths_ok = not operation.paths or any(authz_string_holds(p, probe.path) for p in operation.paths)
    methods_ok = not operation.methods or probe.method in operation.methods
    excluded = any(authz_string_holds(p, probe.path) for p in operation.not_paths) or probe.method in operation.not_methods
    return paths_ok and methods_ok and not excluded


def rule_holds(authz_rule: AuthzRule, probe: Probe) -> bool:
    """Every given part must hold: any `to`, the `from` (curl calls over mTLS from namespace
    default), and the `when` (an absent header matches no value)."""
    to_ok = not authz_rule.to or any(operation_holds(op, probe) for op in authz_rule.to)
    from_ok = authz_rule.namespaces is None or CALLER_NAMESPACE in authz_rule.namespaces
    when_ok = authz_rule.users is None or probe.user in authz_rule.users
    return to_ok and from_ok and when_ok


def policy_matches(policy: Policy, probe: Probe) -> bool:
    """A request matches a policy when it matches any of its rules."""
    return any(rule_holds(r, probe) for r in policy.rules)


def authz_allows(policies: Mapping[str, Policy], version: str, probe: Probe) -> bool:
    """Istio's order on the destination's workload: any matching DENY denies; then, if any
    ALLOW policy applies to it, one of them must match."""
    applied = [p for p in policies.values() if p.version in (None, version)]
    if any(p.action == "DENY" and policy_matches(p, probe) for p in applied):
        return False
    allows = [p for p in applied if p.action == "ALLOW"]
    return not allows or any(policy_matches(p, probe) for p in allows)


def dangling(routes: tuple[Route, ...], subsets: frozenset[str]) -> bool:
    """Whether a route names a subset the DestinationRule does not define (after the rule changed)."""
    return any(subset is not None and subset not in subsets for r in routes for subset, _ in r.destinations)


def answered_by(model: Model, version: str, probe: Probe) -> Outcome:
    return (200, version) if authz_allows(model.policies, version, probe) else (403, "RBAC")


def outcomes(model: Model, probe: Probe) -> frozenset[Outcome]:
    """Every outcome the mesh may give this probe under the model: the client's sidecar picks
    the rule (none: 404 NR), a destination among those with weight (a subset no
    DestinationRule defines: 503 NC; one that selects no workload: 503 UH), then the
    rule's abort (100%: its status, FI); the destination's sidecar then authorizes."""
    if model.routes is None:
        return frozenset(answered_by(model, v, probe) for v in VERSIONS)
    route = route_for(model.routes, probe)
    if route is None:
        return frozenset({(404, "NR")})
    found: set[Outcome] = set()
    for subset, weight in route.destinations:
        if weight == 0:
            continue
        if subset is not None and subset not in (model.subsets or frozenset()):
            found.add((503, "NC"))
        elif route.abort is not None and route.abort[1] == 100.0:
            found.add((route.abort[0], "FI"))
        elif subset is None:
            found.update(answered_by(model, v, probe) for v in VERSIONS)
        elif subset in VERSIONS:
            found.add(answered_by(model, subset, probe))
        else:
            found.add((503, "UH"))
    return frozenset(found)


# -- manifests -------------------------------------------------------------------


def destination_rule(subsets: frozenset[str], traffic_policy: Mapping[str, Any] | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {"host": SERVICE, "subsets": [{"name": s, "labels": {"version": s}} for s in sorted(subsets)]}
    if traffic_policy:
        spec["trafficPolicy"] = copy.deepcopy(dict(traffic_policy))
    return {"apiVersion": "networking.istio.io/v1", "kind": "DestinationRule", "metadata": {"name": SERVICE}, "spec": spec}


def http_route(route: Route) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if route.matches:
        out["match"] = [MATCH_FORMS[m.kind](m.value) for m in route.matches]
    destinations = []
    for subset, weight in route.destinations:
        destination: dict[str, Any] = {"destination": {"host": SERVICE, **({"subset": subset} if subset else {})}}
        if weight is not None:
            destination["weight"] = weight
        destinations.append(destination)
    out["route"] = destinations
    if route.abort is not None:
        out["fault"] = {"abort": {"httpStatus": route.abort[0], "percentage": {"value": route.abort[1]}}}
    if route.timeout is not None:
        out["timeout"] = route.timeout
    out.update(copy.deepcopy(dict(route.extras)))
    return out


MATCH_FORMS: dict[str, Callable[[str], dict[str, Any]]] = {
    "header": lambda v: {"headers": {"end-user": {"exact": v}}},
    "regex": lambda v: {"headers": {"end-user": {"regex": v}}},
    "without": lambda v: {"withoutHeaders": {"end-user": {"exact": v}}},
    "present": lambda v: {"headers": {"end-user": {}}},
    "source": lambda v: {"sourceLabels": {"app": v}},
    "prefix": lambda v: {"uri": {"prefix": v}},
    "exact": lambda v: {"uri": {"exact": v}},
    "method": lambda v: {"method": {"exact": v}},
}


def virtual_service(routes: tuple[Route, ...]) -> dict[str, Any]:
    return {"apiVersion": "networking.istio.io/v1", "kind": "VirtualService", "metadata": {"name": SERVICE},
            "spec": {"hosts": [SERVICE], "http": [http_route(r) for r in routes]}}


def operation(op: Operation) -> dict[str, Any]:
    fields = {"paths": op.paths, "methods": op.methods, "notPaths": op.not_paths, "notMethods": op.not_methods}
    return {key: list(values) for key, values in fields.items() if values}


def authorization_policy(name: str, policy: Policy) -> dict[str, Any]:
    selector = {"app": SERVICE, **({"version": policy.version} if policy.version else {})}
    rules = []
    for r in policy.rules:
        written: dict[str, Any] = {}
        if r.namespaces is not None:
            written["from"] = [{"source": {"namespaces": list(r.namespaces)}}]
        if r.to:
            written["to"] = [{"operation": operation(op)} for op in r.to]
        if r.users is not None:
            written["when"] = [{"key": "request.headers[end-user]", "values": list(r.users)}]
        rules.append(written)
    return {"apiVersion": "security.istio.io/v1", "kind": "AuthorizationPolicy", "metadata": {"name": name},
            "spec": {"selector": {"matchLabels": selector}, "action": policy.action, "rules": rules}}


# -- strategies ------------------------------------------------------------------

matches = st.one_of(
    st.builds(Match, st.just("header"), st.sampled_from(USERS)),
    st.builds(Match, st.just("regex"), st.sampled_from(("j.*", "a.a", ".*", "jaso"))),
    st.builds(Match, st.just("without"), st.sampled_from(USERS)),
    st.builds(Match, st.just("present"), st.just("")),
    st.builds(Match, st.just("source"), st.sampled_from((CALLER_APP, "other"))),
    st.builds(Match, st.just("prefix"), st.sampled_from(("/", "/echo", "/echo/"))),
    st.builds(Match, st.just("exact"), st.sampled_from(PATHS)),
    st.builds(Match, st.just("method"), st.sampled_from(METHODS)),
)


def route_extras(destinations: list[str | None]) -> st.SearchStrategy[dict[str, Any]]:
    """Retries, header edits that no probe depends on (x-fuzz), and a mirror to a defined subset."""
    mirror = st.sampled_from(destinations).map(lambda subset: {"host": SERVICE, **({"subset": subset} if subset else {})})
    return st.fixed_dictionaries({}, optional={
        "retries": st.fixed_dictionaries({"attempts": st.integers(0, 3)}, optional={
            "perTryTimeout": st.sampled_from(TIMEOUTS),
            "retryOn": st.sampled_from(("5xx", "connect-failure,refused-stream", "gateway-error,503", "retriable-4xx,reset")),
        }),
        "headers": st.sampled_from(({"request": {"set": {"x-fuzz": "1"}}}, {"response": {"add": {"x-fuzz": "1"}}},
                                    {"request": {"remove": ["x-fuzz"]}, "response": {"set": {"x-fuzz": "2"}}})),
        "mirror": mirror,
    })


traffic_policies = st.fixed_dictionaries({}, optional={
    "loadBalancer": st.sampled_from(({"simple": "ROUND_ROBIN"}, {"simple": "LEAST_REQUEST"}, {"simple": "RANDOM"},
                                     {"consistentHash": {"httpHeaderName": "end-user"}})),
    "connectionPool": st.fixed_dictionaries({}, optional={
        "tcp": st.fixed_dictionaries({}, optional={"maxConnections": st.integers(1, 100),
                                                   "connectTimeout": st.sampled_from(("1s", "5s"))}),
        "http": st.fixed_dictionaries({}, optional={"http1MaxPendingRequests": st.integers(1, 100),
                                                    "http2MaxRequests": st.integers(1, 1000),
                                                    "maxRequestsPerConnection": st.integers(0, 10),
                                                    "maxRetries": st.integers(0, 5)}),
    }),
    "outlierDetection": st.fixed_dictionaries({}, optional={
        "consecutive5xxErrors": st.integers(0, 10), "consecutiveGatewayErrors": st.integers(0, 10),
        "interval": st.sampled_from(("1s", "10s")), "baseEjectionTime": st.sampled_from(("1s", "30s")),
        "maxEjectionPercent": st.integers(0, 100),
    }),
})
"""DestinationRule policies no probe can tell apart: requests go one at a time and the
app never fails, so no limit is reached and no endpoint is ejected."""


@st.composite
def routes(draw: st.DrawFn, subsets: frozenset[str] | None) -> tuple[Route, ...]:
    """One to three rules whose destinations use only defined subsets (or the whole service)."""
    choices: list[str | None] = [*sorted(subsets or ()), None]
    out = []
    for _ in range(draw(st.integers(1, 3))):
        picked = draw(st.lists(st.sampled_from(choices), min_size=1, max_size=2, unique=True))
        if len(picked) == 1:
            destinations: tuple[tuple[str | None, int | None], ...] = ((picked[0], draw(st.sampled_from((None, 100)))),)
        else:
            weight = draw(st.sampled_from((0, 100)) | st.integers(0, 100))  # 0 and 100: one answer is sure
            destinations = ((picked[0], weight), (picked[1], 100 - weight))
        out.append(Route(
            matches=tuple(draw(st.lists(matches, max_size=2))),
            destinations=destinations,
            abort=draw(st.none() | st.tuples(st.sampled_from(ABORT_STATUSES), st.sampled_from((0.0, 100.0)))),
            timeout=draw(st.none() | st.sampled_from(TIMEOUTS)),
            extras=tuple(sorted(draw(route_extras(choices)).items())),
        ))
    return tuple(out)


some_paths = st.lists(st.sampled_from(AUTHZ_PATHS), max_size=2, unique=True).map(tuple)
some_methods = st.lists(st.sampled_from(METHODS), max_size=1).map(tuple)
operations = st.builds(Operation, some_paths, some_methods, some_paths, some_methods).filter(
    lambda op: bool(op.paths or op.methods or op.not_paths or op.not_methods))
authz_rules = st.builds(
    AuthzRule,
    st.lists(operations, max_size=2).map(tuple),
    st.none() | st.lists(st.sampled_from((CALLER_NAMESPACE, "other")), min_size=1, max_size=2, unique=True).map(tuple),
    st.none() | st.lists(st.sampled_from(USERS), min_size=1, max_size=2, unique=True).map(tuple),
).filter(lambda r: bool(r.to or r.namespaces is not None or r.users is not None))
policies = st.builds(
    Policy,
    st.sampled_from(("ALLOW", "DENY")),
    st.sampled_from((None, *VERSIONS)),
    st.lists(authz_rules, min_size=1, max_size=2).map(tuple),
)
probes = st.builds(Probe, st.sampled_from(METHODS), st.sampled_from(PATHS), st.sampled_from((None, *USERS)))


# -- breaking a valid resource in one field ----------------------------------------

Broken = tuple[dict[str, Any], str]
"""A manifest with one field broken, and the path the refusal must name."""


def break_virtual_service(manifest: dict[str, Any], how: str, index: int) -> Broken:
    bad = copy.deepcopy(manifest)
    rules = bad["spec"]["http"]
    i = index % len(rules)
    rule_ = rules[i]
    if how == "undefined-subset":
        rule_["route"][0]["destination"]["subset"] = "v9"
        return bad, f"spec.http[{i}].route[0].destination.subset"
    if how == "weights":
        rule_["route"] = [{"destination": {"host": SERVICE}, "weight": 60}, {"destination": {"host": SERVICE}, "weight": 50}]
        return bad, f"spec.http[{i}].route"
    if how == "unknown-field":
        rule_["rouet"] = rule_["route"]
        return bad, f"spec.http[{i}].rouet"
    if how == "bad-duration":
        rule_["timeout"] = ("10", "1.5x", "-1s", "0.5ms")[index % 4]
        return bad, f"spec.http[{i}].timeout"
    if how == "abort-status":
        rule_["fault"] = {"abort": {"httpStatus": (99, 600, 1000)[index % 3], "percentage": {"value": 100.0}}}
        return bad, f"spec.http[{i}].fault.abort.httpStatus"
    if how == "percentage":
        rule_["fault"] = {"abort": {"httpStatus": 500, "percentage": {"value": 100.5}}}
        return bad, f"spec.http[{i}].fault.abort.percentage.value"
    assert how == "unknown-host"
    bad["spec"]["hosts"] = ["nosuch"]
    return bad, "spec.hosts[0]"


def break_destination_rule(manifest: dict[str, Any], how: str, index: int) -> Broken:
    bad = copy.deepcopy(manifest)
    spec = bad["spec"]
    if how == "unknown-field":
        spec["subsetz"] = spec.pop("subsets")
        return bad, "spec.subsetz"
    if how == "subset-name":
        spec["subsets"].append({"name": "V_1", "labels": {"version": "v1"}})
        return bad, f"spec.subsets[{len(spec['subsets']) - 1}].name"
    if how == "duplicate-subset":
        spec["subsets"] = [{"name": "v1", "labels": {"version": "v1"}}, {"name": "v1", "labels": {"version": "v2"}}]
        return bad, "spec.subsets[1].name"
    assert how == "unknown-host"
    spec["host"] = "nosuch"
    return bad, "spec.host"


def break_policy(manifest: dict[str, Any], how: str, index: int) -> Broken:
    bad = copy.deepcopy(manifest)
    spec = bad["spec"]
    to = spec["rules"][0].setdefault("to", [{"operation": {"methods": ["GET"]}}])
    if how == "action":
        spec["action"] = "MAYBE"
        return bad, "spec.action"
    if how == "star-inside":
        to[0]["operation"] = {"paths": ["/ec*ho"]}
        return bad, "spec.rules[0].to[0].operation.paths[0]"
    if how == "empty-operation":
        to[0]["operation"] = {}
        return bad, "spec.rules[0].to[0].operation"
    if how == "when-key":
        spec["rules"][0]["when"] = [{"key": "request.header[end-user]", "values": ["jason"]}]
        return bad, "spec.rules[0].when[0].key"
    assert how == "unknown-field"
    to[0]["operation"]["pathz"] = ["/"]
    return bad, "spec.rules[0].to[0].operation.pathz"


BREAKERS: dict[str, tuple[Callable[[dict[str, Any], str, int], Broken], tuple[str, ...]]] = {
    "VirtualService": (break_virtual_service, ("undefined-subset", "weights", "unknown-field", "bad-duration",
                                               "abort-status", "percentage", "unknown-host")),
    "DestinationRule": (break_destination_rule, ("unknown-field", "subset-name", "duplicate-subset", "unknown-host")),
    "AuthorizationPolicy": (break_policy, ("action", "star-inside", "empty-operation", "when-key", "unknown-field")),
}


# -- the state machine -------------------------------------------------------------


def observed(lab: Lab, probe: Probe) -> Outcome:
    """What one request from curl got: the app's version, or the flags of an answer the mesh wrote."""
    result = lab.call(SERVICE, probe.path, method=probe.method, headers={"end-user": probe.user} if probe.user else None)
    assert not result.error, result.error
    return result.status, result.flags or result.version


class ConfigFuzzer(RuleBasedStateMachine):
    """One run: starts from a lab with no config and leaves it with none. The lab
    outlives the runs (starting one per run would cost seconds each): `run` binds it."""

    lab: ClassVar[Lab]

    def __init__(self) -> None:
        super().__init__()
        self.model = Model()
        assert self.lab.get().empty, "the lab must start each run without config"

    # what every sidecar runs, and what the control plane says it should run
    def sidecars(self) -> dict[str, tuple[int, dict[str, Any]]]:
        dumps = {}
        for workload in SIDECARS:
            dump = self.lab.config_dump(workload)
            dumps[dump["node"]] = (dump["version"], dump["snapshot"])
        return dumps

    def check_synced(self) -> None:
        version = self.lab.health()["version"]
        control = self.lab._control()
        for node, (running, snapshot) in self.sidecars().items():
            namespace, instance = node.split("/")
            assert running == version, f"{node} runs version {running}, the control plane is at {version}"
            assert snapshot == control.snapshot(namespace, instance), f"{node}'s config_dump differs from its snapshot"

    def check_probes(self, data: st.DataObject) -> None:
        for probe in data.draw(st.lists(probes, min_size=2, max_size=3, unique=True), label="probes"):
            allowed = outcomes(self.model, probe)
            got = observed(self.lab, probe)
            assert got in allowed, f"{probe} got {got}, the model allows {sorted(allowed)}"

    def accepted(self, data: st.DataObject) -> None:
        self.check_synced()
        self.check_probes(data)

    def refused(self, manifest: dict[str, Any], path: str, companions: list[dict[str, Any]]) -> None:
        """All or nothing: valid companions applied in the same call are not stored either."""
        before = (self.lab.health()["version"], self.lab._control().resources(), self.sidecars())
        with pytest.raises(ConfigError) as caught:
            self.lab.apply([*companions, manifest])
        error = caught.value
        assert (error.kind, error.name) == (manifest["kind"], manifest["metadata"]["name"]), str(error)
        assert error.path.startswith(path) if path.endswith("route") else error.path == path, f"expected {path}: {error}"
        assert (self.lab.health()["version"], self.lab._control().resources(), self.sidecars()) == before

    # valid changes
    @initialize(data=st.data())
    def start_with_subsets_and_routes(self, data: st.DataObject) -> None:
        """Runs begin with subsets, and most with routes that name them, so that the
        answering version is sure; later steps may take either away again."""
        subsets = frozenset(data.draw(st.sets(st.sampled_from(SUBSETS), min_size=1), label="subsets"))
        self.lab.apply(destination_rule(subsets))
        self.model.subsets, self.model.traffic_policy = subsets, None
        if data.draw(st.integers(0, 4), label="routes first") > 0:
            self.apply_virtual_service(data)

    @rule(data=st.data())
    def apply_destination_rule(self, data: st.DataObject) -> None:
        subsets = frozenset(data.draw(st.sets(st.sampled_from(SUBSETS)), label="subsets"))
        policy = data.draw(traffic_policies, label="trafficPolicy")
        self.lab.apply(destination_rule(subsets, policy))
        self.model.subsets, self.model.traffic_policy = subsets, policy
        self.accepted(data)

    @rule(data=st.data())
    def apply_virtual_service(self, data: st.DataObject) -> None:
        chosen = data.draw(routes(self.model.subsets), label="routes")
        self.lab.apply(virtual_service(chosen))
        self.model.routes = chosen
        self.accepted(data)

    @rule(data=st.data(), name=st.sampled_from(POLICY_NAMES), policy=policies)
    def apply_policy(self, data: st.DataObject, name: str, policy: Policy) -> None:
        self.lab.apply(authorization_policy(name, policy))
        self.model.policies[name] = policy
        self.accepted(data)

    @precondition(lambda self: self.model.subsets is not None)
    @rule(data=st.data())
    def delete_destination_rule(self, data: st.DataObject) -> None:
        self.lab.delete("DestinationRule", SERVICE)
        self.model.subsets = None
        self.accepted(data)

    @precondition(lambda self: self.model.routes is not None)
    @rule(data=st.data())
    def delete_virtual_service(self, data: st.DataObject) -> None:
        self.lab.delete("VirtualService", SERVICE)
        self.model.routes = None
        self.accepted(data)

    @precondition(lambda self: bool(self.model.policies))
    @rule(data=st.data())
    def delete_policy(self, data: st.DataObject) -> None:
        name = data.draw(st.sampled_from(sorted(self.model.policies)), label="policy")
        self.lab.delete("AuthorizationPolicy", name)
        del self.model.policies[name]
        self.accepted(data)

    # refused changes
    @rule(data=st.data(), kind=st.sampled_from(sorted(BREAKERS)), index=st.integers(0, 11))
    def apply_invalid(self, data: st.DataObject, kind: str, index: int) -> None:
        if kind == "VirtualService":
            valid = virtual_service(data.draw(routes(self.model.subsets), label="routes"))
        elif kind == "DestinationRule":
            valid = destination_rule(frozenset(data.draw(st.sets(st.sampled_from(SUBSETS)), label="subsets")))
        else:
            valid = authorization_policy(data.draw(st.sampled_from(POLICY_NAMES), label="name"), data.draw(policies, label="policy"))
        breaker, ways = BREAKERS[kind]
        how = data.draw(st.sampled_from(ways), label="how")
        companions = [authorization_policy("p3", data.draw(policies, label="companion"))] if index % 2 else []
        self.refused(*breaker(valid, how, index), companions)

    @precondition(lambda self: self.model.subsets is not None or bool(self.model.policies))
    @rule()
    def reapply_unchanged(self) -> None:
        """Applying what is stored again changes nothing: no new version, no push. (A
        VirtualService left naming a subset its DestinationRule no longer defines would
        be refused now, so it is left out.)"""
        manifests = [authorization_policy(name, policy) for name, policy in sorted(self.model.policies.items())]
        if self.model.subsets is not None:
            manifests.append(destination_rule(self.model.subsets, self.model.traffic_policy))
            if self.model.routes is not None and not dangling(self.model.routes, self.model.subsets):
                manifests.append(virtual_service(self.model.routes))
        before = (self.lab.health()["version"], self.lab._control().resources(), self.sidecars())
        frame = self.lab.apply(manifests)
        assert not frame.changed.any() and frame.attrs["version"] == before[0], frame
        assert (self.lab.health()["version"], self.lab._control().resources(), self.sidecars()) == before

    @rule(kind=st.sampled_from(sorted(BREAKERS)), name=st.sampled_from((SERVICE, *POLICY_NAMES)))
    def delete_missing(self, kind: str, name: str) -> None:
        """Deleting what is not there is refused and changes nothing either."""
        present = {("DestinationRule", SERVICE): self.model.subsets is not None,
                   ("VirtualService", SERVICE): self.model.routes is not None}
        if present.get((kind, name), kind == "AuthorizationPolicy" and name in self.model.policies):
            return
        before = (self.lab.health()["version"], self.sidecars())
        with pytest.raises(UnknownWorkload, match=name):
            self.lab.delete(kind, name)
        assert (self.lab.health()["version"], self.sidecars()) == before

    def teardown(self) -> None:
        for row in self.lab.get().itertuples():
            self.lab.delete(row.kind, row.name, row.namespace)


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    lab = Lab(home=tmp_path_factory.mktemp("fuzzer")).up()
    try:
        lab.deploy(WORKLOADS, inject=True)
        lab.inject("curl")
        yield lab
    finally:
        lab.down()


FUZZ = settings(derandomize=True, deadline=None, database=None, print_blob=False,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
"""Derandomized, so CI runs the same sequences each time; a failure prints its steps as Python."""


def run(lab: Lab, examples: int, steps: int, shrink: bool) -> None:
    """Shrinking a sequence of real config pushes can take Hypothesis its full five minutes,
    past the main tier's timeout; there the failing sequence is reported as found."""
    phases = (Phase.explicit, Phase.generate, *((Phase.shrink,) if shrink else ()))
    chosen = settings(FUZZ, max_examples=examples, stateful_step_count=steps, phases=phases)

    class OnThisLab(ConfigFuzzer):
        pass

    OnThisLab.lab = lab
    run_state_machine_as_test(OnThisLab, settings=chosen)


def test_random_config_changes_keep_sidecars_in_sync_and_routing_as_modelled(lab: Lab) -> None:
    run(lab, examples=40, steps=12, shrink=False)


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_random_config_changes_at_length(lab: Lab) -> None:
    """About ten minutes of changes, shrunk to a minimal sequence on failure."""
    run(lab, examples=200, steps=25, shrink=True)
