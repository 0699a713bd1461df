"""meshkit.state.plan: the Lab calls, in order, from one lab state to another."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from meshkit import checkpoints, state
from meshkit.errors import LabError
from tests.unit.test_state_diff import SLOW_200, SLOW_800, STRICT, SUBSETS, lab, split

BOOKINFO = ["details-v1", "productpage-v1", "ratings-v1", "reviews-v1", "reviews-v2", "reviews-v3"]
ALL = ("curl", *BOOKINFO)
PICK = {"name": "pick-v1", "service": "pick", "version": "v1", "service_account": "pick"}


def calls(steps: list[state.Step]) -> list[tuple[str, Any]]:
    """Each step as (action, its main argument), the way a reader checks a plan."""
    main = {"up": None, "reset": "cert_lifetime_s", "undeploy": "app", "inject": "target", "uninject": "target"}
    found: list[tuple[str, Any]] = []
    for step in steps:
        a = step.args
        if step.action == "deploy":
            found.append(("deploy", (a["app"], a["namespace"], a["inject"], [s["name"] for s in a.get("specs", [])])))
        elif step.action == "delete":
            found.append(("delete", f"{a['kind']} {a['namespace']}/{a['name']}"))
        elif step.action == "apply":
            found.append(("apply", [f"{r['kind']} {r['metadata']['name']}" for r in a["resources"]]))
        else:
            key = main[step.action]
            found.append((step.action, a.get(key) if key else None))
    return found


DOWN = {"running": False, **state.fresh("default", 86400), "apps": [], "stopped": []}

CASES = [
    ("nothing to do", lab(sidecars=ALL), lab(sidecars=ALL), []),
    ("from nothing to notebook 04", DOWN, lab(sidecars=ALL),
     [("up", None), ("deploy", ("bookinfo", "default", True, [])), ("inject", "default/curl")]),
    ("a whole namespace is injected in one call", lab(), lab(sidecars=ALL), [("inject", "default")]),
    ("a whole namespace is uninjected in one call", lab(sidecars=ALL), lab(), [("uninject", "default")]),
    ("single workloads one by one", lab(sidecars=("curl", "ratings-v1")), lab(sidecars=("curl", "productpage-v1")),
     [("uninject", "default/ratings-v1"), ("inject", "default/productpage-v1")]),
    ("a resource added since is deleted, referrers first", lab(resources=(SUBSETS, split(80, 20), STRICT)), lab(),
     [("delete", "VirtualService default/reviews"), ("delete", "PeerAuthentication istio-system/default"),
      ("delete", "DestinationRule default/reviews")]),
    ("missing and changed resources are applied together", lab(resources=(SUBSETS, split(60, 40))),
     lab(resources=(SUBSETS, split(80, 20), STRICT)), [("apply", ["PeerAuthentication default", "VirtualService reviews"])]),
    ("an app added since is undeployed", lab(apps=("lab", "bookinfo", "shop")), lab(), [("undeploy", "shop")]),
    ("a changed workload of your own is deployed again", lab(apps=("lab",), custom=[SLOW_200, PICK]),
     lab(apps=("lab",), custom=[SLOW_800, PICK]),
     [("undeploy", "custom"), ("deploy", ("custom", "default", False, ["pick-v1", "slow-v1"]))]),
    ("a workload of your own that is missing is added to the others", lab(apps=("lab",), custom=[PICK], sidecars=("pick-v1",)),
     lab(apps=("lab",), custom=[SLOW_800, PICK], sidecars=("pick-v1", "slow-v1")),
     [("deploy", ("custom", "default", True, ["slow-v1"]))]),
    ("resources wait for the hosts they name", lab(apps=("lab",)), lab(resources=(SUBSETS,)),
     [("deploy", ("bookinfo", "default", False, [])), ("apply", ["DestinationRule reviews"])]),
    ("another lifetime resets first, then rebuilds", lab(sidecars=ALL, resources=(SUBSETS,)), lab(sidecars=ALL, resources=(SUBSETS,), lifetime=300),
     [("reset", 300.0), ("deploy", ("bookinfo", "default", True, [])), ("inject", "default/curl"), ("apply", ["DestinationRule reviews"])]),
    ("stopped instances are restarted first", {**lab(), "running": True, "stopped": ["default/reviews-v2-0"]}, lab(), [("up", None)]),
    ("a lab without its client gets it back from up", lab(apps=("bookinfo",)), lab(), [("up", None)]),
]


@pytest.mark.parametrize(("current", "target", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_plan(current: dict[str, Any], target: dict[str, Any], expected: list[tuple[str, Any]]) -> None:
    assert calls(state.plan(current, target)) == expected


def test_a_plan_from_nothing_starts_the_lab_under_the_target_lifetime() -> None:
    steps = state.plan(DOWN, lab(lifetime=120))
    assert steps[0].action == "up" and steps[0].args == {"cert_lifetime_s": 120.0}


def test_a_client_in_another_namespace_than_the_labs_is_refused_in_one_line() -> None:
    target = state.check({"apps": [{"app": "lab", "namespace": "team-a"}]}, "t")
    with pytest.raises(LabError, match="use Lab\\(namespace='team-a'\\)"):
        state.plan(DOWN, target, namespace="default")


def test_changes_say_what_was_done_in_one_line() -> None:
    steps = state.plan(lab(apps=("lab", "shop"), resources=(SUBSETS, split(80, 20))), lab(sidecars=ALL))
    changes = state.Changes("catch-up 04", tuple(steps))
    assert str(changes) == ("catch-up 04: deleted VirtualService reviews, DestinationRule reviews; undeployed shop; "
                            "deployed bookinfo with sidecars; injected curl")
    assert str(state.Changes("restore x")) == "restore x: nothing to change, the lab was already in that state"


NOTEBOOKS = checkpoints.notebooks()


@pytest.mark.parametrize(("a", "b"), list(itertools.permutations(NOTEBOOKS, 2))[::7])
def test_between_start_states_only_what_differs_is_touched(a: str, b: str) -> None:
    """No step between two start states resets the lab (they share a lifetime) or deletes
    config (they have none), and the lab's client is never undeployed."""
    steps = state.plan(checkpoints.start_state(a), checkpoints.start_state(b))
    assert {s.action for s in steps} <= {"undeploy", "deploy", "inject", "uninject"}
    assert all(s.args.get("app") != "lab" for s in steps)
    assert bool(steps) == bool(state.diff(checkpoints.start_state(a), checkpoints.start_state(b)))
