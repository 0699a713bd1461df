"""Live tasks of notebooks 11 and 12: find a failing edge from telemetry; leave a service out of the mesh."""

from __future__ import annotations

import json
import time

from meshkit.lab import Lab
from meshkit.quiz.tasks.base import LiveTask, TaskResult, failed, passed, percent, records_since, resource
from meshkit.quiz.tasks.mesh import bookinfo
from meshkit.quiz.tasks.traffic import virtual_service

# -- 11: the failing edge ---------------------------------------------------------------


def edge_verdict(calls: int, ok: int, flags: dict[str, int], fault_in_config: bool) -> TaskResult:
    if calls == 0:
        return failed("the sidecars reported no productpage -> details calls for the last page loads; is productpage in the mesh?", success_rate=0.0)
    rate = ok / calls
    if ok < calls:
        flagged = ", ".join(f"{n} with {f}" for f, n in sorted(flags.items()) if f) or "no response flag"
        cause = "; the VirtualService 'details' still injects an abort" if fault_in_config else ""
        return failed(f"the productpage -> details edge answered {percent(rate)} of {calls} calls ({flagged}){cause}", success_rate=rate)
    return passed(f"the productpage -> details edge answered all {calls} calls of the last page loads", success_rate=rate)


def check_edge(lab: Lab) -> TaskResult:
    since = time.time()
    lab.load("productpage", "/productpage", rate=50, requests=100)
    records = records_since(lab, since, reporter="source")
    edge = records[(records["source_workload"] == "productpage-v1") & records["destination_service"].str.startswith("details.")] if not records.empty else records
    ok = int((edge["code"] < 400).sum()) if len(edge) else 0
    flags = edge[edge["code"] >= 400]["flags"].fillna("").value_counts().to_dict() if len(edge) else {}
    vs = resource(lab, "VirtualService", "details")
    fault = any(rule.get("fault") for rule in ((vs or {}).get("spec") or {}).get("http") or [])
    return edge_verdict(len(edge), ok, {str(k): int(v) for k, v in flags.items() if k and k != "-"}, fault)


def setup_edge(lab: Lab) -> None:
    bookinfo(lab, inject=True)
    lab.apply(virtual_service("details", [{
        "fault": {"abort": {"percentage": {"value": 20}, "httpStatus": 500}},
        "route": [{"destination": {"host": "details"}}],
    }]))


def solve_edge(lab: Lab) -> None:
    lab.delete("VirtualService", "details")


TASK_11 = LiveTask("11-find-the-failing-edge", setup=setup_edge, check=check_edge, solve=solve_edge)


# -- 12: details out of the mesh -----------------------------------------------------------


def out_verdict(has_sidecar: bool, pages: int, whole: int) -> TaskResult:
    if has_sidecar:
        return failed(f"details-v1 still runs with a sidecar; {whole} of {pages} page loads came back whole", details_sidecar=True, whole=whole)
    if whole < pages:
        return failed(f"details-v1 runs without a sidecar, but only {whole} of {pages} page loads came back whole with their details", details_sidecar=False, whole=whole)
    return passed(f"details-v1 runs without a sidecar and all {pages} page loads came back whole", details_sidecar=False, whole=whole)


def whole_page(text: str) -> bool:
    try:
        page = json.loads(text)
    except ValueError:
        return False
    return isinstance(page, dict) and "error" not in (page.get("details") or {"error": "missing"})


def check_out(lab: Lab) -> TaskResult:
    workloads = lab.workloads()
    row = workloads[workloads["workload"] == "details-v1"]
    has_sidecar = bool(row["sidecar"].iloc[0]) if len(row) else False
    pages = 20
    calls = [lab.call("productpage", "/productpage") for _ in range(pages)]
    whole = sum(1 for c in calls if c.status == 200 and whole_page(c.text))
    return out_verdict(has_sidecar, pages, whole)


TASK_12 = LiveTask(
    "12-leave-details-out",
    setup=lambda lab: bookinfo(lab, inject=True),
    check=check_out,
    solve=lambda lab: (lab.uninject("details-v1"), None)[1],
)

TASKS = (TASK_11, TASK_12)
