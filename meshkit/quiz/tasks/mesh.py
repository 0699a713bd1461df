"""Live tasks of notebooks 00-03: sidecars, injection, pushed config, load balancing."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence

import pandas as pd

from meshkit.lab import Lab
from meshkit.quiz.tasks.base import LiveTask, TaskResult, failed, passed, records_since, resource, route_weights

REVIEWS_SUBSETS = {
    "apiVersion": "networking.istio.io/v1",
    "kind": "DestinationRule",
    "metadata": {"name": "reviews", "namespace": "default"},
    "spec": {"host": "reviews", "subsets": [{"name": v, "labels": {"version": v}} for v in ("v1", "v2", "v3")]},
}


def bookinfo(lab: Lab, inject: bool) -> None:
    """Bookinfo, with or without sidecars, and the lab's client in the mesh when it has them."""
    lab.reset()
    lab.deploy("bookinfo", inject=inject)
    if inject:
        lab.inject("curl")


# -- 00: every workload gets a sidecar -------------------------------------------------


def inject_all_verdict(without: Sequence[str], edge_requests: int, edge_security: Sequence[str], sent: int) -> TaskResult:
    if without:
        return failed(
            f"{len(without)} workload{'s' if len(without) > 1 else ''} of the default namespace "
            f"still run{'s' if len(without) == 1 else ''} without a sidecar ({', '.join(sorted(without))}); "
            f"the sidecars saw {edge_requests} of the {sent} productpage -> reviews calls",
            without_sidecar=len(without), seen=edge_requests,
        )
    if edge_requests < sent:
        return failed(f"every workload has a sidecar, but the sidecars saw only {edge_requests} of the {sent} productpage -> reviews calls", seen=edge_requests)
    security = sorted(set(edge_security))
    return passed(f"every workload has a sidecar; they saw all {sent} productpage -> reviews calls, secured as {', '.join(security)}", seen=edge_requests)


def check_inject_all(lab: Lab) -> TaskResult:
    workloads = lab.workloads()
    mine = workloads[(workloads["namespace"] == lab.namespace) & (workloads["workload"] != "curl")]
    without = list(mine[~mine["sidecar"].astype(bool)]["workload"])
    since = time.time()
    sent = 20
    lab.load("productpage", "/productpage", rate=40, requests=sent)
    records = records_since(lab, since, reporter="source")
    edge = records[(records["source_workload"] == "productpage-v1") & records["destination_service"].str.startswith("reviews.")]
    return inject_all_verdict(without, len(edge), list(edge["connection_security_policy"]), sent)


TASK_00 = LiveTask(
    "00-inject-all",
    setup=lambda lab: bookinfo(lab, inject=False),
    check=check_inject_all,
    solve=lambda lab: (lab.inject("default"), None)[1],
)


# -- 01: see productpage's calls to details ------------------------------------------


def seen_verdict(seen: int, sent: int, edge: str) -> TaskResult:
    if seen >= sent:
        return passed(f"the sidecars reported all {sent} {edge} calls of the last {sent} page loads", seen=seen)
    return failed(f"the sidecars reported {seen} of the {sent} {edge} calls the last {sent} page loads made", seen=seen)


def check_see_details(lab: Lab) -> TaskResult:
    since = time.time()
    sent = 10
    lab.load("productpage", "/productpage", rate=20, requests=sent)
    seen = 0
    for reporter in ("source", "destination"):
        records = records_since(lab, since, reporter=reporter)
        edge = records[(records["source_workload"] == "productpage-v1") & records["destination_service"].str.startswith("details.")]
        seen = max(seen, len(edge))
    return seen_verdict(seen, sent, "productpage -> details")


def solve_see_details(lab: Lab) -> None:
    lab.inject("productpage-v1")
    lab.inject("details-v1")


TASK_01 = LiveTask("01-see-details-calls", setup=lambda lab: bookinfo(lab, inject=False), check=check_see_details, solve=solve_see_details)


# -- 02: pin reviews to v1 by config alone ---------------------------------------------


def pin_verdict(weights: Mapping[str, int], versions: pd.Series, stale: Sequence[str]) -> TaskResult:
    counts = versions.value_counts().to_dict()
    total = int(sum(counts.values()))
    on_v1 = int(counts.get("v1", 0))
    if on_v1 < total:
        others = ", ".join(f"{v} {n}" for v, n in sorted(counts.items()) if v != "v1")
        route = f"the VirtualService 'reviews' routes {dict(weights)}" if weights else "no VirtualService routes reviews"
        return failed(f"{on_v1} of {total} fresh requests reached reviews v1 ({others}); {route}", on_v1=on_v1, total=total)
    if stale:
        return failed(f"all {total} requests reached v1, but {len(stale)} sidecar(s) have not ACKed the latest config: {', '.join(stale)}", stale=len(stale))
    return passed(f"all {total} fresh requests reached reviews v1, and every sidecar ACKed the config", on_v1=on_v1, total=total)


def check_pin(lab: Lab) -> TaskResult:
    vs = resource(lab, "VirtualService", "reviews")
    frame = lab.load("reviews", "/reviews/0", rate=60, requests=30)
    status = lab.proxy_status()
    latest = int(lab.health().get("version", 0))
    stale = [str(n) for n, acked in zip(status["node"], status["acked"], strict=True) if (acked or 0) < latest]
    return pin_verdict(route_weights(vs), frame["version"], stale)


def solve_pin(lab: Lab) -> None:
    lab.apply([REVIEWS_SUBSETS, {
        "apiVersion": "networking.istio.io/v1",
        "kind": "VirtualService",
        "metadata": {"name": "reviews", "namespace": "default"},
        "spec": {"hosts": ["reviews"], "http": [{"route": [{"destination": {"host": "reviews", "subset": "v1"}}]}]},
    }])


def setup_pin(lab: Lab) -> None:
    bookinfo(lab, inject=True)


TASK_02 = LiveTask("02-pin-reviews-v1", setup=setup_pin, check=check_pin, solve=solve_pin)


# -- 03: sticky users -------------------------------------------------------------------

USERS = ("jason", "kim", "ana", "li", "sam", "noor")


def sticky_verdict(per_user: Mapping[str, Sequence[str]], hash_header: str | None) -> TaskResult:
    spread = sorted(u for u, versions in per_user.items() if len(set(versions)) > 1)
    calls = sum(len(v) for v in per_user.values())
    if spread:
        how = f"the DestinationRule 'reviews' hashes on {hash_header!r}" if hash_header else "no DestinationRule hashes reviews' requests by user"
        return failed(
            f"{len(spread)} of {len(per_user)} users reached more than one version of reviews "
            f"(e.g. {spread[0]}: {', '.join(sorted(set(per_user[spread[0]])))}); {how}",
            users_spread=len(spread),
        )
    return passed(f"each of {len(per_user)} users stayed on one version over {calls} calls", users_spread=0)


def hash_header(dr: Mapping[str, object] | None) -> str | None:
    policy = ((dr or {}).get("spec") or {}).get("trafficPolicy") or {}  # type: ignore[union-attr]
    consistent = (policy.get("loadBalancer") or {}).get("consistentHash") or {}
    return consistent.get("httpHeaderName")


def check_sticky(lab: Lab) -> TaskResult:
    per_user = {
        user: list(lab.load("reviews", "/reviews/0", rate=50, requests=5, headers={"end-user": user})["version"])
        for user in USERS
    }
    return sticky_verdict(per_user, hash_header(resource(lab, "DestinationRule", "reviews")))


def solve_sticky(lab: Lab) -> None:
    lab.apply({
        "apiVersion": "networking.istio.io/v1",
        "kind": "DestinationRule",
        "metadata": {"name": "reviews", "namespace": "default"},
        "spec": {"host": "reviews", "trafficPolicy": {"loadBalancer": {"consistentHash": {"httpHeaderName": "end-user"}}}},
    })


TASK_03 = LiveTask("03-sticky-users", setup=lambda lab: bookinfo(lab, inject=True), check=check_sticky, solve=solve_sticky)

TASKS = (TASK_00, TASK_01, TASK_02, TASK_03)
