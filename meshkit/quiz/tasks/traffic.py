"""Live tasks of notebooks 04, 05 and 13: weighted splits, header routes, a rollback."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from meshkit.lab import Lab
from meshkit.quiz.tasks.base import LiveTask, TaskResult, describe_weights, failed, passed, percent, resource, route_weights, shares
from meshkit.quiz.tasks.mesh import REVIEWS_SUBSETS, bookinfo


def virtual_service(host: str, http: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "apiVersion": "networking.istio.io/v1",
        "kind": "VirtualService",
        "metadata": {"name": host, "namespace": "default"},
        "spec": {"hosts": [host], "http": http},
    }


def weighted(host: str, weights: Mapping[str, int]) -> list[dict[str, Any]]:
    return [{"destination": {"host": host, "subset": subset}, "weight": weight} for subset, weight in weights.items()]


# -- 04: 25% to v3 ---------------------------------------------------------------------

LOW, HIGH = 0.20, 0.30


def shift_verdict(weights: Mapping[str, int], observed: Mapping[str, float], sent: int) -> TaskResult:
    v3 = observed.get("v3", 0.0)
    v2 = observed.get("v2", 0.0)
    config = f"your VirtualService 'reviews' gives {describe_weights(weights)}" if weights else "no VirtualService splits reviews"
    if not LOW <= v3 <= HIGH:
        return failed(f"{percent(v3)} of the last {sent} requests reached v3; the task asks for 20-30%; {config}", v3_share=v3)
    if v2 > 0:
        return failed(f"v3 got {percent(v3)} as asked, but {percent(v2)} of the last {sent} requests reached v2, which should get none; {config}", v3_share=v3)
    return passed(f"{percent(v3)} of the last {sent} requests reached v3 and the rest v1; {config}", v3_share=v3)


def check_shift(lab: Lab) -> TaskResult:
    sent = 200
    frame = lab.load("reviews", "/reviews/0", rate=100, requests=sent)
    return shift_verdict(route_weights(resource(lab, "VirtualService", "reviews")), shares(frame), sent)


def solve_shift(lab: Lab) -> None:
    lab.apply([REVIEWS_SUBSETS, virtual_service("reviews", [{"route": weighted("reviews", {"v1": 75, "v3": 25})}])])


def setup_shift(lab: Lab) -> None:
    bookinfo(lab, inject=True)
    lab.apply(REVIEWS_SUBSETS)


TASK_04 = LiveTask("04-shift-25-to-v3", setup=setup_shift, check=check_shift, solve=solve_shift)


# -- 05: jason to v2 ---------------------------------------------------------------------


def jason_verdict(jason: Mapping[str, float], others: Mapping[str, float], sent: int) -> TaskResult:
    to_v2 = jason.get("v2", 0.0)
    others_v1 = others.get("v1", 0.0)
    if to_v2 < 1.0:
        return failed(f"{percent(to_v2)} of {sent} requests as jason reached reviews v2; the task asks for all of them", jason_v2=to_v2, others_v1=others_v1)
    if others_v1 < 1.0:
        return failed(f"jason reaches v2, but only {percent(others_v1)} of {sent} requests from other users reached v1 ({_mix(others)})", jason_v2=to_v2, others_v1=others_v1)
    return passed(f"all {sent} requests as jason reached v2 and all {sent} from other users reached v1", jason_v2=to_v2, others_v1=others_v1)


def _mix(observed: Mapping[str, float]) -> str:
    return ", ".join(f"{v} {percent(s)}" for v, s in sorted(observed.items()))


def check_jason(lab: Lab) -> TaskResult:
    sent = 20
    jason = shares(lab.load("reviews", "/reviews/0", rate=50, requests=sent, headers={"end-user": "jason"}))
    others = shares(lab.load("reviews", "/reviews/0", rate=50, requests=sent, headers={"end-user": "kim"}))
    return jason_verdict(jason, others, sent)


def solve_jason(lab: Lab) -> None:
    lab.apply([REVIEWS_SUBSETS, virtual_service("reviews", [
        {"match": [{"headers": {"end-user": {"exact": "jason"}}}], "route": [{"destination": {"host": "reviews", "subset": "v2"}}]},
        {"route": [{"destination": {"host": "reviews", "subset": "v1"}}]},
    ])])


TASK_05 = LiveTask("05-jason-to-v2", setup=setup_shift, check=check_jason, solve=solve_jason)


# -- 13: roll the canary back ------------------------------------------------------------

CATALOG_SUBSETS = {
    "apiVersion": "networking.istio.io/v1",
    "kind": "DestinationRule",
    "metadata": {"name": "catalog", "namespace": "default"},
    "spec": {"host": "catalog", "subsets": [{"name": v, "labels": {"version": v}} for v in ("v1", "v2")]},
}


def rollback_verdict(weights: Mapping[str, int], catalog: Mapping[str, float], sent: int, shop_success: float, pages: int) -> TaskResult:
    v1 = catalog.get("v1", 0.0)
    config = f"the VirtualService 'catalog' gives {describe_weights(weights)}" if weights else "no VirtualService routes catalog"
    if v1 < 1.0:
        others = ", ".join(f"{v} {percent(share)}" for v, share in sorted(catalog.items()) if v != "v1")
        return failed(f"{percent(1 - v1)} of {sent} fresh catalog requests did not reach v1 ({others}); {config}", catalog_v1=v1, shop_success=shop_success)
    if shop_success < 0.98:
        return failed(f"catalog is on v1, but only {percent(shop_success)} of {pages} shop page loads succeeded", catalog_v1=v1, shop_success=shop_success)
    return passed(f"all {sent} catalog requests reached v1 and {percent(shop_success)} of {pages} shop page loads succeeded", catalog_v1=v1, shop_success=shop_success)


def check_rollback(lab: Lab) -> TaskResult:
    sent, pages = 100, 50
    catalog = shares(lab.load("catalog", "/catalog", rate=100, requests=sent))
    shop = lab.load("frontend", "/", rate=40, requests=pages)
    return rollback_verdict(route_weights(resource(lab, "VirtualService", "catalog")), catalog, sent, float((shop["code"] == 200).mean()), pages)


def route_catalog(lab: Lab, v2_weight: int) -> None:
    lab.apply([CATALOG_SUBSETS, virtual_service("catalog", [{"route": weighted("catalog", {"v1": 100 - v2_weight, "v2": v2_weight})}])])


def setup_rollback(lab: Lab) -> None:
    lab.reset()
    lab.deploy("shop", inject=True)
    lab.inject("curl")
    route_catalog(lab, 50)


TASK_13 = LiveTask("13-roll-back", setup=setup_rollback, check=check_rollback, solve=lambda lab: route_catalog(lab, 0))

TASKS = (TASK_04, TASK_05, TASK_13)
