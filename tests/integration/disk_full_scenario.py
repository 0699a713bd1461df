"""A lab whose control-plane store sits on a nearly full filesystem (run by test_store_disk_full.py).

Run as `python -m tests.integration.disk_full_scenario HOME` inside a mount
namespace where HOME is a small tmpfs (its subdirectories bound to a big
disk), so the store's write fails with a real ENOSPC from the kernel. It
prints one JSON document of what it saw; the test judges it.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

from meshkit.demo.apps import Latency, WorkloadSpec
from meshkit.errors import MeshkitError
from meshkit.lab import Lab

APP = (WorkloadSpec(name="hello-v1", service="hello", version="v1", service_account="hello", latency=Latency(1.0, 2.0),
                    paths=("/hello",)),)  # fmt: skip
# Room left on the filesystem after the filler: the store as it is fits, the big change does not.
ROOM_BYTES = 24 * 1024


def virtual_service(name: str, routes: int) -> dict[str, Any]:
    """A VirtualService for hello with `routes` header-matched rules (the size of the change)."""
    rules = [{"name": f"rule-{i:04d}", "match": [{"headers": {"x-variant": {"exact": f"variant-{i:04d}-" + "x" * 40}}}],
              "route": [{"destination": {"host": "hello"}}]} for i in range(routes)]
    rules.append({"name": "default", "route": [{"destination": {"host": "hello"}}]})
    return {"apiVersion": "networking.istio.io/v1", "kind": "VirtualService", "metadata": {"name": name},
            "spec": {"hosts": ["hello"], "http": rules}}


def fill(home: Path, room: int) -> Path:
    """Take all but `room` bytes of the filesystem holding `home`."""
    stat = os.statvfs(home)
    free = stat.f_bavail * stat.f_frsize
    filler = home / "filler"
    with open(filler, "wb") as out:
        out.write(b"\0" * max(0, free - room))
    return filler


def main(home: Path) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    lab = Lab(home=home).up()
    try:
        lab.deploy(APP)
        lab.inject("default")
        lab.apply(virtual_service("small", 1))
        seen["version_before"] = int(lab.health()["version"])
        seen["call_before"] = lab.call("hello", "/hello").status
        filler = fill(home, ROOM_BYTES)
        big = virtual_service("big", 400)
        try:
            lab.apply(big)
            seen["error"] = None
        except MeshkitError as exc:
            seen["error"] = f"{type(exc).__name__}: {exc}"
        seen["version_after_failure"] = int(lab.health()["version"])
        seen["names_after_failure"] = sorted(lab.get("VirtualService")["name"])
        seen["leftover_temp_files"] = sorted(p.name for p in home.iterdir() if p.name.endswith(".tmp"))
        seen["calls_after_failure"] = [lab.call("hello", "/hello").status for _ in range(5)]
        filler.unlink()
        lab.apply(big)
        seen["version_after_retry"] = int(lab.health()["version"])
        seen["names_after_retry"] = sorted(lab.get("VirtualService")["name"])
        seen["acked_after_retry"] = sorted(set(lab.proxy_status()["acked"]))
        seen["call_after_retry"] = lab.call("hello", "/hello").status
    finally:
        lab.down()
    return seen


if __name__ == "__main__":
    print(json.dumps(main(Path(sys.argv[1]))))
