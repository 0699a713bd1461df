"""A long control-plane outage under load (issue 14; HARDENING.md, "Control plane").

Bookinfo under 20 requests per second while the control plane is dead for
ten minutes (SIGKILL, started again after OUTAGE_S): the sidecars serve on
their last snapshot, including to a destination nothing called before minute
nine, and when the control plane returns they reconnect at moments spread by
their backoff's jitter (meshkit.core.backoff) and ACK the current version.

In the slow tier (`make test-slow`): it takes about twelve minutes on purpose.
"""

from __future__ import annotations

import datetime
import json
import os
import re
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from meshkit.core.backoff import CAP_S
from meshkit.demo.apps import Latency, WorkloadSpec
from meshkit.lab import Lab

# How long the control plane stays dead: the ten minutes.
OUTAGE_S = 600.0
# When the destination nothing called before gets its first calls (minute nine).
FIRST_CALL_AT_S = 540.0
# Load runs this long before the kill and after the restart, so the kill and
# the reconnects both happen under load.
LEAD_S = 10.0
TAIL_S = 40.0
RATE = 20.0
# The late destination: deployed with a sidecar before the kill, called by no
# one until FIRST_CALL_AT_S. Its endpoints exist only in the snapshot the
# sidecars held when the control plane died.
LATE = WorkloadSpec(name="late-v1", service="late", version="v1", service_account="late", latency=Latency(1.0, 4.0))
LATE_CALLS = 20

# The suite's 300 s timeout (pyproject.toml) would stop it halfway: the lab's start,
# the outage and the load after it, with room for a slow machine.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(int(OUTAGE_S + LEAD_S + TAIL_S + 300))]

# A sidecar's own log: "<asctime> sidecar <node>: <message>" (meshkit.sidecar.__main__).
LOG_LINE = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) sidecar (\S+): (.*)$")


def control_pid(home: Path) -> int:
    return int(json.loads((home / "lab.json").read_text())["control"]["proc"]["pid"])


def log_events(text: str, message: str) -> dict[str, list[float]]:
    """Per node, the times (epoch seconds) of the sidecar log lines starting with `message`."""
    found: dict[str, list[float]] = {}
    for line in text.splitlines():
        match = LOG_LINE.match(line)
        if match and match.group(3).startswith(message):
            when = datetime.datetime.strptime(match.group(1), "%Y-%m-%d %H:%M:%S,%f").timestamp()  # local time, as logged
            found.setdefault(match.group(2), []).append(when)
    return found


def proxy_logs(lab: Lab) -> str:
    """Every proxy's own log: the sidecars' and the ingress gateway's (which lab.logs does not name)."""
    return "\n".join(path.read_text(errors="replace") for path in sorted(lab._home.log_dir.glob("*.sidecar.log")))


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Lab]:
    lab = Lab(home=tmp_path / "lab").up()
    try:
        yield lab
    finally:
        lab.down()


def test_ten_minutes_without_a_control_plane_under_load(lab: Lab) -> None:
    lab.deploy("bookinfo", inject=True)
    lab.deploy(LATE, inject=True)
    lab.inject("default")  # the lab's curl workload too: every call below goes through a sidecar
    version = lab.health()["version"]
    nodes = sorted(lab.proxy_status().node)  # Bookinfo's six, its ingress gateway, curl, late
    assert {"default/curl-0", "default/late-v1-0", "default/productpage-v1-0"} <= set(nodes), nodes
    lab._control().wait_acked(version, nodes=nodes, timeout=30)
    assert "late" in set(lab.endpoints("curl").service)  # in curl's last snapshot before the kill

    loads: list[pd.DataFrame] = []
    worker = threading.Thread(
        target=lambda: loads.append(lab.load("productpage", "/productpage", rate=RATE, duration=LEAD_S + OUTAGE_S + TAIL_S))
    )
    worker.start()
    time.sleep(LEAD_S)
    killed_at = time.time()
    os.kill(control_pid(lab.state_dir), signal.SIGKILL)
    time.sleep(FIRST_CALL_AT_S)
    assert not lab.running()
    late = [lab.call("late", "/late") for _ in range(LATE_CALLS)]
    time.sleep(max(0.0, killed_at + OUTAGE_S - time.time()))
    restarted_at = time.time()
    lab.up()  # the control plane again, on its old port, from its store
    control = lab._control()
    assert lab.health()["version"] == version
    acks = control.wait_acked(version, nodes=nodes, timeout=60)
    assert sorted(acks) == nodes
    # A change made after the restart reaches every sidecar: they poll again, not merely reconnected once.
    answer = control.put_resource({
        "apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
        "metadata": {"name": "details", "namespace": "default"},
        "spec": {"hosts": ["details"], "http": [{"route": [{"destination": {"host": "details"}}], "timeout": "9s"}]},
    })  # fmt: skip
    assert sorted(control.wait_acked(answer["version"], nodes=nodes, timeout=60)) == nodes
    status = lab.proxy_status()
    assert status.connected.all() and (status.status == "SYNCED").all(), status
    worker.join()

    frame = loads[0]
    assert len(frame) >= RATE * (LEAD_S + OUTAGE_S + TAIL_S) * 0.95
    assert (frame.code == 200).all(), frame[frame.code != 200].head(20)
    assert [c.status for c in late] == [200] * LATE_CALLS, [c.error or c.status for c in late if c.status != 200]
    assert {c.json()["service"] for c in late} == {"late"}

    logs = proxy_logs(lab)
    lost = log_events(logs, "control plane lost")
    regained = log_events(logs, "control plane regained")
    # Each sidecar said once that it lost the control plane (a log line per change of state, not per retry) ...
    assert sorted(lost) == nodes and all(len(times) == 1 for times in lost.values()), lost
    assert all(killed_at - 1 <= times[0] <= restarted_at for times in lost.values()), (killed_at, lost)
    # ... and once that it had it back, after the restart, at moments the jitter spread.
    back = {node: [t for t in times if t >= restarted_at - 1] for node, times in regained.items()}
    assert sorted(n for n, times in back.items() if len(times) == 1) == nodes, regained
    moments = sorted(times[0] for times in back.values())
    spread = moments[-1] - moments[0]
    print(f"\nlong outage: {len(frame)} productpage requests, all 200; {LATE_CALLS} first calls to late at minute "
          f"{FIRST_CALL_AT_S / 60:.1f}, all 200; reconnects {', '.join(f'{m - restarted_at:+.2f}' for m in moments)} s "
          f"after the restart began, spread {spread:.2f} s (backoff cap {CAP_S:g} s)")
    # Nine proxies whose waits are uniform over [0, CAP_S] all landing within 0.1 s of each other
    # has a probability of about 9 * (0.1 / 5) ** 8: it would mean no jitter.
    assert spread > 0.1, moments
