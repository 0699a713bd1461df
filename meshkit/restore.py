"""Reading a running lab into a state, and carrying a plan out through the Lab.

The I/O half of meshkit.state: `read_lab` asks the lab what it is (its
workloads, which have sidecars, the stored resources, the certificate
lifetime the control plane runs with), and `bring_to` moves it to a target
state by calling the Lab's public methods one step at a time (deploy,
undeploy, inject, uninject, apply, delete, up, reset), so each step is
journalled as if the learner had typed it and an exported script replays it.
After the last step the lab is read again and compared with the target: a
lab that did not get there is an error naming what still differs, never a
silent success.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from meshkit import state
from meshkit.errors import LabError
from meshkit.files import read_json_or_none

if TYPE_CHECKING:
    from meshkit.lab import Lab

OnStep = Callable[[int, int, str], None]
"""Told before each step: (step number from 1, steps in all, what the step does)."""


def read_lab(lab: Lab) -> dict[str, Any]:
    """The lab's state now, with `running` (is a lab up) and `stopped` (instances whose app or sidecar exited)."""
    if not lab.running():
        return {"running": False, **state.fresh(lab.namespace, state.DEFAULT_CERT_LIFETIME_S), "apps": [], "stopped": []}
    views = lab._backend.instances()
    record = _lab_record(lab)
    specs = {key: rec["spec"] for key, rec in record.get("instances", {}).items()}
    apps: dict[tuple[str, str], dict[str, Any]] = {}
    for view in views:
        entry = apps.setdefault((view.app, view.namespace), {"app": view.app, "namespace": view.namespace})
        if view.app == state.CUSTOM_APP:
            entry.setdefault("specs", {})[view.workload] = specs[view.node]
    for entry in apps.values():
        if "specs" in entry:
            entry["specs"] = list(entry["specs"].values())
    by_workload: dict[str, list[bool]] = {}
    for view in views:
        by_workload.setdefault(f"{view.namespace}/{view.workload}", []).append(view.sidecar)
    lifetime = (record.get("control") or {}).get("cert_lifetime_s") or state.DEFAULT_CERT_LIFETIME_S
    doc = {
        "cert_lifetime_s": lifetime,
        "apps": list(apps.values()),
        "sidecars": [node for node, flags in by_workload.items() if all(flags)],
        "resources": lab._control().resources(),
    }
    found = state.check(doc, "the running lab")
    return {**found, "running": True, "stopped": sorted(v.node for v in views if not v.running)}


def _lab_record(lab: Lab) -> dict[str, Any]:
    """The local backend's record (lab.json): the only place the WorkloadSpecs of
    your own workloads and the control plane's certificate lifetime are kept."""
    record = read_json_or_none(lab.state_dir / "lab.json")
    return record if isinstance(record, dict) else {}


def bring_to(lab: Lab, target: dict[str, Any], what: str, on_step: OnStep | None = None,
             on_plan: Callable[[int], None] | None = None) -> state.Changes:
    """Move the lab to `target` and say what changed; LabError if it did not get there.

    A lab whose control plane died while its workloads are recorded is
    reattached first (`up`), since its config can only be read from a running
    control plane; a lab that is not there at all is started by the plan.
    `on_plan` is told how many steps the plan has before the first runs."""
    before: list[str] = []
    if not lab.running() and lab._backend.instances():
        lab.progress(f"{what}: starting the lab's control plane again")
        lab.up()
        before.append("started the lab's control plane and stopped processes again")
    steps = state.plan(read_lab(lab), target, lab.namespace)
    if on_plan is not None:
        on_plan(len(steps))
    for number, step in enumerate(steps, start=1):
        lab.progress(f"{what}: step {number}/{len(steps)}: {step.doing}")
        if on_step is not None:
            on_step(number, len(steps), step.doing)
        run(lab, step)
    left = state.diff(read_lab(lab), target, here="in the lab", there="in the target state")
    if left:
        raise LabError(f"{what} did not reach its state; still different: {'; '.join(left)}")
    return state.Changes(what, tuple(steps), tuple(before))


def run(lab: Lab, step: state.Step) -> None:
    """One step, as the Lab call it names."""
    args = step.args
    if step.action in ("up", "reset"):
        if args.get("cert_lifetime_s") is not None:
            lab._use_cert_lifetime(float(args["cert_lifetime_s"]))
        if step.action == "up":
            lab.up()
        else:
            lab.reset()
    elif step.action == "undeploy":
        lab.undeploy(args["app"])
    elif step.action == "deploy":
        if args["app"] == state.CUSTOM_APP:
            from meshkit.backends.local import spec_from_dict

            lab.deploy([spec_from_dict(s) for s in args["specs"]], namespace=args["namespace"], inject=args["inject"])
        else:
            lab.deploy(args["app"], namespace=args["namespace"], inject=args["inject"])
    elif step.action == "inject":
        lab.inject(args["target"])
    elif step.action == "uninject":
        lab.uninject(args["target"])
    elif step.action == "delete":
        lab.delete(args["kind"], args["name"], args["namespace"])
    elif step.action == "apply":
        lab.apply(list(args["resources"]))
    else:
        raise LabError(f"a plan step {step.action!r} that meshkit does not know")
