"""meshkit.state.diff: how two lab states differ, in the words a learner reads."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from meshkit import state

SUBSETS = {"apiVersion": "networking.istio.io/v1", "kind": "DestinationRule", "metadata": {"name": "reviews"},
           "spec": {"host": "reviews", "subsets": [{"name": v, "labels": {"version": v}} for v in ("v1", "v2", "v3")]}}


def split(v1: int, v3: int) -> dict[str, Any]:
    return {"apiVersion": "networking.istio.io/v1", "kind": "VirtualService", "metadata": {"name": "reviews"},
            "spec": {"hosts": ["reviews"], "http": [{"route": [
                {"destination": {"host": "reviews", "subset": "v1"}, "weight": v1},
                {"destination": {"host": "reviews", "subset": "v3"}, "weight": v3}]}]}}


STRICT = {"apiVersion": "security.istio.io/v1", "kind": "PeerAuthentication",
          "metadata": {"name": "default", "namespace": "istio-system"}, "spec": {"mtls": {"mode": "STRICT"}}}
BOOKINFO = ["curl", "details-v1", "productpage-v1", "ratings-v1", "reviews-v1", "reviews-v2", "reviews-v3"]


def lab(apps: tuple[str, ...] = ("lab", "bookinfo"), sidecars: tuple[str, ...] = (), resources: tuple[dict[str, Any], ...] = (),
        lifetime: float = 86400, custom: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    entries: list[dict[str, Any]] = [{"app": a, "namespace": "default"} for a in apps]
    if custom is not None:
        entries.append({"app": "custom", "namespace": "default", "specs": custom})
    return state.check({"apps": entries, "sidecars": [f"default/{w}" for w in sidecars],
                        "resources": copy.deepcopy(list(resources)), "cert_lifetime_s": lifetime}, "test")


SLOW_800 = {"name": "slow-v1", "service": "slow", "version": "v1", "service_account": "slow", "latency": {"p50_ms": 800.0, "p99_ms": 1200.0}}
SLOW_200 = {**SLOW_800, "latency": {"p50_ms": 200.0, "p99_ms": 250.0}}

CASES = [
    ("same state", lab(), lab(), []),
    ("a weight moved", lab(resources=(SUBSETS, split(60, 40))), lab(resources=(SUBSETS, split(80, 20))),
     ["VirtualService reviews: spec.http[0].route[0].weight (to v1) 60 here, 80 in the checkpoint; "
      "spec.http[0].route[1].weight (to v3) 40 here, 20 in the checkpoint"]),
    ("a resource added since", lab(resources=(SUBSETS, STRICT)), lab(resources=(SUBSETS,)),
     ["PeerAuthentication default in namespace istio-system is here, not in the checkpoint"]),
    ("a resource deleted since", lab(), lab(resources=(SUBSETS,)),
     ["DestinationRule reviews is not here, but is in the checkpoint"]),
    ("one sidecar removed", lab(sidecars=("curl",)), lab(sidecars=("curl", "productpage-v1")),
     ["productpage-v1 has no sidecar here, but has one in the checkpoint"]),
    ("one sidecar added", lab(sidecars=("curl", "ratings-v1")), lab(sidecars=("curl",)),
     ["ratings-v1 has a sidecar here, but none in the checkpoint"]),
    ("many sidecars said as one list", lab(), lab(sidecars=tuple(BOOKINFO)),
     ["7 workloads have no sidecar here, but have one in the checkpoint: " + ", ".join(BOOKINFO)]),
    ("an app added", lab(apps=("lab", "bookinfo", "shop")), lab(), ["shop is deployed here, not in the checkpoint"]),
    ("an app missing", lab(apps=("lab",)), lab(), ["bookinfo is not deployed here, but is in the checkpoint"]),
    ("your workload changed", lab(apps=("lab",), custom=[SLOW_200]), lab(apps=("lab",), custom=[SLOW_800]),
     ["your workload slow-v1: latency.p50_ms 200.0 here, 800.0 in the checkpoint; latency.p99_ms 250.0 here, 1200.0 in the checkpoint"]),
    ("your workload missing", lab(apps=("lab",)), lab(apps=("lab",), custom=[SLOW_800]),
     ["your workload slow-v1 is not deployed here, but is in the checkpoint"]),
    ("certificate lifetime", lab(lifetime=120), lab(),
     ["certificate lifetime: 2 min here, 1 d in the checkpoint (restoring it resets the lab: the CA keeps the lifetime "
      "it started with, and certificates keep theirs)"]),
]


@pytest.mark.parametrize(("a", "b", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_diff_says_each_difference_in_plain_words(a: dict[str, Any], b: dict[str, Any], expected: list[str]) -> None:
    assert state.diff(a, b) == expected


def test_the_two_sides_are_named_as_the_caller_says() -> None:
    found = state.diff(lab(sidecars=("curl",)), lab(), here="in the notebook", there="in the start state")
    assert found == ["curl has a sidecar in the notebook, but none in the start state"]


def test_a_lab_that_is_not_running_is_said_in_one_line_with_what_the_checkpoint_has() -> None:
    down = {"running": False, **state.fresh("default", 86400), "apps": [], "stopped": []}
    assert state.diff(down, lab(resources=(SUBSETS,))) == [
        "no lab is running here; in the checkpoint it has the lab's client (curl), bookinfo, 0 sidecar(s) and 1 resource(s)"
    ]


def test_stopped_instances_are_named_first() -> None:
    broken = {**lab(), "running": True, "stopped": ["default/reviews-v2-0"]}
    assert state.diff(broken, lab()) == ["default/reviews-v2-0 is not running here (its app or sidecar exited)"]


def test_field_differences_name_each_leaf_and_a_missing_side() -> None:
    a = {"spec": {"mtls": {"mode": "STRICT"}, "portLevelMtls": {"8080": {"mode": "DISABLE"}}}}
    b = {"spec": {"mtls": {"mode": "PERMISSIVE"}}}
    assert state.field_differences(a, b) == [
        ("spec.mtls.mode", "STRICT", "PERMISSIVE"),
        ("spec.portLevelMtls", {"8080": {"mode": "DISABLE"}}, state.MISSING),
    ]


def test_a_route_added_is_named_whole_with_its_subset() -> None:
    one = split(100, 0)
    one["spec"]["http"][0]["route"].pop()
    found = state.diff(lab(resources=(SUBSETS, split(50, 50))), lab(resources=(SUBSETS, one)))
    assert found == ["VirtualService reviews: spec.http[0].route[0].weight (to v1) 50 here, 100 in the checkpoint; "
                     'spec.http[0].route[1] (to v3) {"destination": {"host": "reviews", "subset": "v3"}, "weight": 50} here, '
                     "absent in the checkpoint"]


def test_a_long_value_is_cut_and_many_fields_are_counted() -> None:
    a = {"note": "x" * 200, "spec": {f"f{i}": i for i in range(1, 12)}}
    b = {"note": "y", "spec": {f"f{i}": -i for i in range(1, 12)}}
    sentence = state._field_sentence(a, b, "here", "there")
    assert sentence.endswith("; spec.f7 7 here, -7 there; and 4 more field(s)")
    assert sentence.startswith("note " + "x" * 67 + "... here, y there; spec.f1 1 here, -1 there")
