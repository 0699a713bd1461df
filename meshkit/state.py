"""A lab's desired state as data, how two states differ, and the steps from one to another.

A checkpoint (`lab.checkpoint(name)`) and a notebook's start state
(meshkit/start_states/NN.yaml, what `lab.catch_up(NN)` reaches) are the same
document: the lab as a learner set it up, not the processes that happen to
run it. Four things make it up, and nothing else, so two labs with equal
states behave alike:

    cert_lifetime_s: 86400           the workload certificate lifetime (Lab(cert_lifetime=...))
    apps:                            deployed apps, one entry per (app, namespace)
    - {app: lab, namespace: default}         the lab's own client, `curl`
    - {app: bookinfo, namespace: default}    a demo app by name (bookinfo, shop)
    - app: custom                            your own WorkloadSpecs, kept whole
      namespace: default                     so they can be deployed again
      specs: [{name: slow-v1, service: slow, version: v1, ...}]
    sidecars: [default/curl, default/productpage-v1]   workloads with a sidecar
    resources: [...]                 every config resource, as the control plane stores it

Everything here is a pure function of such dicts: `check` reads a document
(one clear line for what is wrong with it), `diff` says in plain words how
two states differ (field paths with both values for resources), and `plan`
lists the Lab calls that turn one into the other. meshkit.restore reads a
running lab into a state and carries a plan out through the Lab's public
methods, so every step lands in the journal.

The certificate lifetime is a setting of the control plane's CA, fixed when
the control plane starts; certificates already issued keep the lifetime they
were issued with. Restarting only the control plane would leave a lab whose
sidecars hold certificates of the old lifetime for hours, which is not the
state asked for, so a plan to a different lifetime starts with a reset: the
lab is started afresh under that lifetime and then rebuilt. `diff` says so.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from meshkit import config
from meshkit.backends.local import spec_from_dict, spec_to_dict
from meshkit.demo.apps import APPS
from meshkit.errors import ConfigError, LabError
from meshkit.lab import CLIENT, CLIENT_APP, CUSTOM_APP
from meshkit.names import dns_label_problem
from meshkit.security.ca import DEFAULT_LEAF_LIFETIME, MAX_LEAF_LIFETIME, MIN_LEAF_LIFETIME
from meshkit.tables import human_duration

FORMAT = 1
"""The value of `meshkit_state` in a state file; a file of another format is refused by name."""

DEFAULT_CERT_LIFETIME_S = DEFAULT_LEAF_LIFETIME.total_seconds()
DESIRED_KEYS = ("cert_lifetime_s", "apps", "sidecars", "resources")
KNOWN_APPS = (CLIENT_APP, *sorted(APPS), CUSTOM_APP)

DELETE_ORDER = ("VirtualService", "AuthorizationPolicy", "LocalRateLimit", "PeerAuthentication", "DestinationRule")
"""Resources are deleted referrers first: a VirtualService routes to a DestinationRule's subsets."""

MAX_FIELDS = 8
"""Field differences named per resource before the rest are counted: a diff is read, not scanned."""
MAX_VALUE_CHARS = 70
MAX_NAMED = 3
"""Workloads whose sidecar differs named one sentence each up to this many, then as one list."""

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,62}")


# -- reading a document ------------------------------------------------------------------


def check_name(name: object) -> str:
    """A checkpoint name: letters, digits, '-', '_' and '.', starting with a letter or digit, at most 63."""
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise LabError(
            f"checkpoint name {name!r} is not valid: use letters, digits, '-', '_' and '.', "
            "starting with a letter or digit, at most 63 characters (such as 'before-strict')"
        )
    return name


def check(doc: object, source: str) -> dict[str, Any]:
    """The desired state in `doc` in its normal form (sorted, specs and resources
    complete), or LabError naming `source`, the field and what is wrong with it."""
    if not isinstance(doc, Mapping):
        raise LabError(f"{source}: not a lab state (a mapping with apps, sidecars, resources, cert_lifetime_s)")
    if doc.get("meshkit_state", FORMAT) != FORMAT:
        raise LabError(f"{source}: meshkit_state {doc.get('meshkit_state')!r} is not a format this meshkit reads ({FORMAT})")
    unknown = sorted(set(doc) - {*DESIRED_KEYS, "meshkit_state", "name", "saved_at", "notebook"})
    if unknown:
        raise LabError(f"{source}: unknown field {unknown[0]!r} (a state has {', '.join(DESIRED_KEYS)})")
    lifetime = doc.get("cert_lifetime_s", DEFAULT_CERT_LIFETIME_S)
    if isinstance(lifetime, bool) or not isinstance(lifetime, int | float) \
            or not MIN_LEAF_LIFETIME.total_seconds() <= lifetime <= MAX_LEAF_LIFETIME.total_seconds():
        raise LabError(f"{source}: cert_lifetime_s must be seconds from 60 to 7776000 (90 days), got {lifetime!r}")
    apps = _check_apps(doc.get("apps", []), source)
    workloads = {(ns, w) for ns, w, _app in workload_names({"apps": apps})}
    sidecars = doc.get("sidecars", [])
    if not isinstance(sidecars, list):
        raise LabError(f"{source}: sidecars must be a list of 'namespace/workload'")
    for index, item in enumerate(sidecars):
        namespace, sep, workload = item.partition("/") if isinstance(item, str) else ("", "", "")
        if not sep or (namespace, workload) not in workloads:
            raise LabError(f"{source}: sidecars[{index}]: {item!r} is not 'namespace/workload' of a workload of the apps listed")
    resources = doc.get("resources", [])
    if not isinstance(resources, list):
        raise LabError(f"{source}: resources must be a list of resources")
    try:
        manifests = [config.to_manifest(r) for r in config.load(resources)] if resources else []
    except ConfigError as exc:
        raise LabError(f"{source}: resources: {exc}") from None
    return {
        "cert_lifetime_s": float(lifetime),
        "apps": apps,
        "sidecars": sorted(set(sidecars)),
        "resources": sorted(_plain(manifests), key=resource_key),
    }


def _check_apps(apps: object, source: str) -> list[dict[str, Any]]:
    if not isinstance(apps, list):
        raise LabError(f"{source}: apps must be a list of {{app, namespace}}")
    found: dict[tuple[str, str], dict[str, Any]] = {}
    for index, item in enumerate(apps):
        where = f"{source}: apps[{index}]"
        if not isinstance(item, Mapping) or set(item) - {"app", "namespace", "specs"}:
            raise LabError(f"{where}: must be {{app, namespace}} (and specs for {CUSTOM_APP!r})")
        app, namespace = item.get("app"), item.get("namespace", "default")
        if app not in KNOWN_APPS:
            raise LabError(f"{where}: unknown app {app!r}; apps are {', '.join(KNOWN_APPS)}")
        problem = dns_label_problem(namespace) if isinstance(namespace, str) else "must be text"
        if problem:
            raise LabError(f"{where}: namespace {namespace!r} {problem}")
        if (app, namespace) in found:
            raise LabError(f"{where}: {app} in {namespace} is listed twice")
        entry: dict[str, Any] = {"app": app, "namespace": namespace}
        if app == CUSTOM_APP:
            entry["specs"] = _check_specs(item.get("specs"), where)
        elif "specs" in item:
            raise LabError(f"{where}: only {CUSTOM_APP!r} takes specs; {app!r} is deployed by name")
        found[(app, namespace)] = entry
    return [found[key] for key in sorted(found, key=lambda k: (k[1], KNOWN_APPS.index(k[0])))]


def _check_specs(specs: object, where: str) -> list[dict[str, Any]]:
    if not isinstance(specs, list) or not specs:
        raise LabError(f"{where}: specs must list the WorkloadSpecs deployed (at least one)")
    found: dict[str, dict[str, Any]] = {}
    for index, data in enumerate(specs):
        if not isinstance(data, Mapping):
            raise LabError(f"{where}.specs[{index}]: must be a WorkloadSpec's fields")
        full = {"latency": DEFAULT_LATENCY, "calls": [], **data}
        try:
            spec = spec_from_dict(full)
        except ConfigError as exc:
            raise LabError(f"{where}.specs[{index}]: {exc}") from None
        except (TypeError, KeyError, ValueError) as exc:
            raise LabError(f"{where}.specs[{index}]: not a WorkloadSpec ({exc})") from None
        if spec.name in found:
            raise LabError(f"{where}.specs[{index}]: workload {spec.name!r} is listed twice")
        found[spec.name] = _plain(spec_to_dict(spec))
    return [found[name] for name in sorted(found)]


DEFAULT_LATENCY = {"p50_ms": 2.0, "p99_ms": 8.0}
"""WorkloadSpec's own default latency, for a hand-written spec that leaves it out."""


def _plain(value: Any) -> Any:
    """JSON's types only (tuples become lists), so a state compares and serialises as written."""
    return json.loads(json.dumps(value))


def resource_key(resource: Mapping[str, Any]) -> tuple[str, str, str]:
    meta = resource.get("metadata", {})
    return str(resource.get("kind")), str(meta.get("namespace", "default")), str(meta.get("name"))


def desired(state: Mapping[str, Any]) -> dict[str, Any]:
    """Only what a state asks of a lab (a lab read live also says what is not running)."""
    return {key: state[key] for key in DESIRED_KEYS}


def fresh(namespace: str, cert_lifetime_s: float) -> dict[str, Any]:
    """A lab just started (or reset): its client without a sidecar, no config."""
    return {"cert_lifetime_s": float(cert_lifetime_s), "apps": [{"app": CLIENT_APP, "namespace": namespace}],
            "sidecars": [], "resources": []}


def specs_of(entry: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The WorkloadSpecs (as dicts) an apps entry deploys."""
    if entry["app"] == CUSTOM_APP:
        return list(entry["specs"])
    if entry["app"] == CLIENT_APP:
        return [_plain(spec_to_dict(CLIENT))]
    return [_plain(spec_to_dict(s)) for s in APPS[entry["app"]]]


def workload_names(state: Mapping[str, Any]) -> list[tuple[str, str, str]]:
    """(namespace, workload, app) of every workload the state's apps deploy."""
    return sorted((e["namespace"], s["name"], e["app"]) for e in state["apps"] for s in specs_of(e))


def expected_workloads(state: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The rows lab.workloads() shows for a lab in this state (namespace, workload, app, sidecar)."""
    sidecars = set(state["sidecars"])
    return [{"namespace": ns, "workload": w, "app": app, "sidecar": f"{ns}/{w}" in sidecars}
            for ns, w, app in workload_names(state)]


# -- how two states differ ---------------------------------------------------------------------


class _Missing:
    def __repr__(self) -> str:
        return "absent"


MISSING: Any = _Missing()


def diff(a: Mapping[str, Any], b: Mapping[str, Any], here: str = "here", there: str = "in the checkpoint") -> list[str]:
    """How lab state `a` differs from `b`, one plain sentence per difference; [] when they are the same.

    `here` and `there` name the two sides in the sentences ("here", "in the
    checkpoint"; "in the notebook", "in the start state"). A state read from a
    lab may say the lab is not running, or which instances have stopped."""
    if not a.get("running", True):
        return [f"no lab is running {here}; {there} it has {_overview(b)}"]
    lines = [f"{node} is not running {here} (its app or sidecar exited)" for node in a.get("stopped", [])]
    if a["cert_lifetime_s"] != b["cert_lifetime_s"]:
        lines.append(
            f"certificate lifetime: {human_duration(a['cert_lifetime_s'])} {here}, {human_duration(b['cert_lifetime_s'])} {there} "
            "(restoring it resets the lab: the CA keeps the lifetime it started with, and certificates keep theirs)"
        )
    lines += _app_lines(a, b, here, there)
    lines += _sidecar_lines(a, b, here, there)
    lines += _resource_lines(a, b, here, there)
    return lines


def _overview(state: Mapping[str, Any]) -> str:
    apps = ", ".join(_app_thing(e["app"], e["namespace"]) for e in state["apps"]) or "no apps"
    return f"{apps}, {len(state['sidecars'])} sidecar(s) and {len(state['resources'])} resource(s)"


def _in_ns(name: str, namespace: str) -> str:
    return name if namespace == "default" else f"{name} in namespace {namespace}"


def _app_thing(app: str, namespace: str) -> str:
    return _in_ns(f"the lab's client ({CLIENT.name})" if app == CLIENT_APP else app, namespace)


def _app_lines(a: Mapping[str, Any], b: Mapping[str, Any], here: str, there: str) -> list[str]:
    lines = []
    ours = {(e["app"], e["namespace"]) for e in a["apps"] if e["app"] != CUSTOM_APP}
    theirs = {(e["app"], e["namespace"]) for e in b["apps"] if e["app"] != CUSTOM_APP}
    for app, ns in sorted(ours - theirs, key=lambda k: (k[1], k[0])):
        lines.append(f"{_app_thing(app, ns)} is deployed {here}, not {there}")
    for app, ns in sorted(theirs - ours, key=lambda k: (k[1], k[0])):
        lines.append(f"{_app_thing(app, ns)} is not deployed {here}, but is {there}")
    mine, other = _custom_specs(a), _custom_specs(b)
    for key in sorted(set(mine) | set(other)):
        thing = _in_ns(f"your workload {key[1]}", key[0])
        if key not in other:
            lines.append(f"{thing} is deployed {here}, not {there}")
        elif key not in mine:
            lines.append(f"{thing} is not deployed {here}, but is {there}")
        elif mine[key] != other[key]:
            lines.append(f"{thing}: " + _field_sentence(mine[key], other[key], here, there))
    return lines


def _custom_specs(state: Mapping[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(e["namespace"], s["name"]): s for e in state["apps"] if e["app"] == CUSTOM_APP for s in e["specs"]}


def _sidecar_lines(a: Mapping[str, Any], b: Mapping[str, Any], here: str, there: str) -> list[str]:
    both = {(ns, w) for ns, w, _ in workload_names(a)} & {(ns, w) for ns, w, _ in workload_names(b)}
    ours, theirs = set(a["sidecars"]), set(b["sidecars"])
    lacking = [(ns, w) for ns, w in sorted(both) if f"{ns}/{w}" in theirs - ours]
    extra = [(ns, w) for ns, w in sorted(both) if f"{ns}/{w}" in ours - theirs]
    lines = []
    for found, alone, many in ((lacking, "{w} has no sidecar {here}, but has one {there}",
                                "{n} workloads have no sidecar {here}, but have one {there}: {ws}"),
                               (extra, "{w} has a sidecar {here}, but none {there}",
                                "{n} workloads have a sidecar {here}, but none {there}: {ws}")):
        names = [_in_ns(w, ns) for ns, w in found]
        if len(names) > MAX_NAMED:
            lines.append(many.format(n=len(names), here=here, there=there, ws=", ".join(names)))
        else:
            lines += [alone.format(w=name, here=here, there=there) for name in names]
    return lines


def _resource_lines(a: Mapping[str, Any], b: Mapping[str, Any], here: str, there: str) -> list[str]:
    ours = {resource_key(r): r for r in a["resources"]}
    theirs = {resource_key(r): r for r in b["resources"]}
    lines = []
    for key in sorted(set(ours) | set(theirs)):
        kind, ns, name = key
        thing = _in_ns(f"{kind} {name}", ns)
        if key not in theirs:
            lines.append(f"{thing} is {here}, not {there}")
        elif key not in ours:
            lines.append(f"{thing} is not {here}, but is {there}")
        elif ours[key] != theirs[key]:
            lines.append(f"{thing}: " + _field_sentence(ours[key], theirs[key], here, there))
    return lines


def _field_sentence(a: Any, b: Any, here: str, there: str) -> str:
    found = field_differences(a, b)
    parts = [f"{path} {_show(x)} {here}, {_show(y)} {there}" for path, x, y in found[:MAX_FIELDS]]
    if len(found) > MAX_FIELDS:
        parts.append(f"and {len(found) - MAX_FIELDS} more field(s)")
    return "; ".join(parts)


def field_differences(a: Any, b: Any, path: str = "", hint: str = "") -> list[tuple[str, Any, Any]]:
    """(field path, value in a, value in b) for every leaf where a and b differ;
    MISSING where one side lacks the field. A list item that routes to a subset
    or has a name carries it in the path ("spec.http[0].route[2].weight (to v3)")."""
    shown = f"{path} ({hint})" if hint else path
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        found = []
        for key in [*a, *(k for k in b if k not in a)]:
            found += field_differences(a.get(key, MISSING), b.get(key, MISSING), f"{path}.{key}" if path else str(key), hint)
        return found
    if isinstance(a, list) and isinstance(b, list):
        found = []
        for index in range(max(len(a), len(b))):
            x = a[index] if index < len(a) else MISSING
            y = b[index] if index < len(b) else MISSING
            found += field_differences(x, y, f"{path}[{index}]", _item_hint(x, y) or hint)
        return found
    return [] if a == b else [(shown or "(the whole value)", a, b)]


def _item_hint(*items: Any) -> str:
    for item in items:
        if isinstance(item, Mapping):
            destination = item.get("destination")
            if isinstance(destination, Mapping) and destination.get("subset"):
                return f"to {destination['subset']}"
            if isinstance(item.get("name"), str):
                return str(item["name"])
    return ""


def _show(value: Any) -> str:
    if value is MISSING:
        return "absent"
    text = value if isinstance(value, str) else json.dumps(value, separators=(", ", ": "))
    return text if len(text) <= MAX_VALUE_CHARS else text[: MAX_VALUE_CHARS - 3] + "..."


# -- from one state to another ---------------------------------------------------------------------


@dataclass(frozen=True)
class Step:
    """One Lab call of a plan: `action` is the Lab method, `args` its arguments,
    `doing` the progress line while it runs and `done` what it changed, in the past tense."""

    action: str
    args: Mapping[str, Any]
    doing: str
    done: str


def plan(current: Mapping[str, Any], target: Mapping[str, Any], namespace: str = "default") -> list[Step]:
    """The Lab calls, in order, that bring a lab in state `current` to `target`.

    `namespace` is the Lab's own, where up() and reset() start its client.
    Order: start or repair the lab (a reset first when the certificate
    lifetime differs), delete resources the target lacks (referrers first),
    undeploy apps the target lacks or whose workloads differ (undeploy takes
    a whole app), deploy what is missing (with sidecars when all of it has
    them in the target), uninject and inject, then apply every missing or
    changed resource at once, after the workloads its hosts name exist."""
    want = desired(target)
    steps: list[Step] = []
    if not current.get("running", True):
        steps.append(Step("up", {"cert_lifetime_s": want["cert_lifetime_s"]}, "starting the lab", "started the lab"))
        now = fresh(namespace, want["cert_lifetime_s"])
    else:
        now = desired(current)
        stopped = list(current.get("stopped", []))
        if stopped:
            steps.append(Step("up", {}, f"restarting {len(stopped)} stopped instance(s)",
                              f"restarted {', '.join(stopped)}"))
        if now["cert_lifetime_s"] != want["cert_lifetime_s"]:
            steps.append(Step(
                "reset", {"cert_lifetime_s": want["cert_lifetime_s"]},
                f"resetting the lab for a certificate lifetime of {human_duration(want['cert_lifetime_s'])}",
                f"reset the lab (certificate lifetime {human_duration(now['cert_lifetime_s'])} -> "
                f"{human_duration(want['cert_lifetime_s'])})",
            ))
            now = fresh(namespace, want["cert_lifetime_s"])
    steps += _resource_deletes(now, want)
    undeploys, now = _undeploys(now, want)
    deploys, now = _deploys(now, want, namespace)
    steps += undeploys + deploys + _sidecar_steps(now, want)
    steps += _resource_applies(now, want)
    return steps


def _resource_deletes(now: Mapping[str, Any], want: Mapping[str, Any]) -> list[Step]:
    wanted = {resource_key(r) for r in want["resources"]}
    extra = [resource_key(r) for r in now["resources"] if resource_key(r) not in wanted]
    order = {kind: index for index, kind in enumerate(DELETE_ORDER)}
    extra.sort(key=lambda k: (order.get(k[0], len(order)), k[1], k[2]))
    return [Step("delete", {"kind": kind, "name": name, "namespace": ns}, f"deleting {kind} {name}",
                 f"deleted {_in_ns(f'{kind} {name}', ns)}") for kind, ns, name in extra]


def _resource_applies(now: Mapping[str, Any], want: Mapping[str, Any]) -> list[Step]:
    have = {resource_key(r): r for r in now["resources"]}
    changed = [r for r in want["resources"] if have.get(resource_key(r)) != r]
    if not changed:
        return []
    names = ", ".join(_in_ns(f"{k} {n}", ns) for k, ns, n in map(resource_key, changed))
    return [Step("apply", {"resources": changed}, f"applying {len(changed)} resource(s)", f"applied {names}")]


def _entries(state: Mapping[str, Any]) -> dict[tuple[str, str], Mapping[str, Any]]:
    return {(e["app"], e["namespace"]): e for e in state["apps"]}


def _undeploys(now: dict[str, Any], want: Mapping[str, Any]) -> tuple[list[Step], dict[str, Any]]:
    have, wanted = _entries(now), _entries(want)
    leaving = set()
    for app, ns in have:
        if (app, ns) not in wanted:
            leaving.add(app)
        elif app == CUSTOM_APP:
            mine = {s["name"]: s for s in have[(app, ns)]["specs"]}
            theirs = {s["name"]: s for s in wanted[(app, ns)]["specs"]}
            if any(theirs.get(name) != spec for name, spec in mine.items()):
                leaving.add(app)
    steps = [Step("undeploy", {"app": app}, f"undeploying {app}", f"undeployed {app}") for app in sorted(leaving)]
    apps = [e for e in now["apps"] if e["app"] not in leaving]
    kept = {f"{ns}/{w}" for ns, w, _ in workload_names({"apps": apps})}
    return steps, {**now, "apps": apps, "sidecars": [s for s in now["sidecars"] if s in kept]}


def _deploys(now: dict[str, Any], want: Mapping[str, Any], namespace: str) -> tuple[list[Step], dict[str, Any]]:
    have = _entries(now)
    sidecars = set(want["sidecars"])
    steps: list[Step] = []
    apps = list(now["apps"])
    added: set[str] = set()
    for entry in want["apps"]:
        app, ns = entry["app"], entry["namespace"]
        present = {s["name"] for s in specs_of(have[(app, ns)])} if (app, ns) in have else set()
        missing = [s for s in specs_of(entry) if s["name"] not in present]
        if not missing:
            continue
        if app == CLIENT_APP:
            if ns != namespace:
                raise LabError(f"the lab's client is in namespace {ns!r} there, and a Lab starts it in its own namespace "
                               f"({namespace!r}): use Lab(namespace={ns!r})")
            steps.append(Step("up", {}, f"starting the lab's client {CLIENT.name}", f"deployed the lab's client {CLIENT.name}"))
        else:
            inject = all(f"{ns}/{s['name']}" in sidecars for s in missing)
            args: dict[str, Any] = {"app": app, "namespace": ns, "inject": inject}
            what = _app_thing(app, ns)
            if app == CUSTOM_APP:
                args["specs"] = missing
                what = _in_ns(", ".join(s["name"] for s in missing), ns)
            steps.append(Step("deploy", args, f"deploying {what}", f"deployed {what}" + (" with sidecars" if inject else "")))
            if inject:
                added |= {f"{ns}/{s['name']}" for s in missing}
        if (app, ns) in have and app == CUSTOM_APP:
            apps = [e for e in apps if (e["app"], e["namespace"]) != (app, ns)]
        apps.append(entry if app != CUSTOM_APP else {**entry, "specs": [*have.get((app, ns), {}).get("specs", []), *missing]})
    return steps, {**now, "apps": apps, "sidecars": sorted(set(now["sidecars"]) | added)}


def _sidecar_steps(now: Mapping[str, Any], want: Mapping[str, Any]) -> list[Step]:
    by_ns: dict[str, list[str]] = {}
    for ns, w, _app in workload_names(now):
        by_ns.setdefault(ns, []).append(w)
    have, wanted = set(now["sidecars"]), set(want["sidecars"])
    removing: list[Step] = []
    adding: list[Step] = []
    for ns, workloads in sorted(by_ns.items()):
        nodes = [f"{ns}/{w}" for w in workloads]
        for steps, todo, everyone, verb, doing in (
            (removing, [n for n in nodes if n in have - wanted], not any(n in wanted for n in nodes), "uninject", "removing sidecars"),
            (adding, [n for n in nodes if n in wanted - have], all(n in wanted for n in nodes), "inject", "injecting sidecars"),
        ):
            past = "injected" if verb == "inject" else "uninjected"
            if len(todo) > 1 and everyone:
                where = "" if ns == "default" else f" in namespace {ns}"
                steps.append(Step(verb, {"target": ns}, f"{doing} in namespace {ns}", f"{past} {len(todo)} workloads{where}"))
            else:
                steps += [Step(verb, {"target": node}, f"{doing}: {node}", f"{past} {_in_ns(node.split('/', 1)[1], ns)}") for node in todo]
    return removing + adding


# -- the result -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Changes:
    """What a restore or a catch-up changed: the steps it took, said in one line."""

    what: str
    steps: tuple[Step, ...] = ()
    before: tuple[str, ...] = field(default=())
    """Repairs made before the lab could be read (a control plane started again)."""

    @property
    def lines(self) -> list[str]:
        return [*self.before, *summarise(self.steps)]

    def __str__(self) -> str:
        if not self.lines:
            return f"{self.what}: nothing to change, the lab was already in that state"
        return f"{self.what}: " + "; ".join(self.lines)

    __repr__ = __str__

    def __bool__(self) -> bool:
        return bool(self.lines)


def summarise(steps: Iterable[Step]) -> list[str]:
    """Each step's `done`, with runs of deletes said as one ("deleted VirtualService reviews, DestinationRule reviews")."""
    lines: list[str] = []
    previous = ""
    for step in steps:
        if step.action == "delete" and previous == "delete":
            lines[-1] += ", " + step.done.removeprefix("deleted ")
        else:
            lines.append(step.done)
        previous = step.action
    return lines


def overview(state: Mapping[str, Any]) -> dict[str, Any]:
    """A state in a few words, for a table of checkpoints: apps, sidecars, resources, lifetime."""
    return {
        "apps": ", ".join(_in_ns(e["app"], e["namespace"]) for e in state["apps"]),
        "sidecars": len(state["sidecars"]),
        "resources": len(state["resources"]),
        "cert_lifetime": human_duration(state["cert_lifetime_s"]),
    }


def states_equal(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    """Equal desired states: what `diff` finds no difference in."""
    return not diff(a, b)


@dataclass(frozen=True)
class Differences:
    """How a lab differs from a saved state, one sentence per difference (none: the same)."""

    against: str
    lines: tuple[str, ...] = ()

    def __str__(self) -> str:
        if not self.lines:
            return f"no differences: the lab is as {self.against} has it"
        return f"the lab differs from {self.against}:\n" + "\n".join(f"- {line}" for line in self.lines)

    __repr__ = __str__

    def __bool__(self) -> bool:
        return bool(self.lines)

    def __len__(self) -> int:
        return len(self.lines)
