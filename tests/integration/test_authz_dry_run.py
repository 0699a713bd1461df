"""Dry-run AuthorizationPolicies and serviceAccounts through a real sidecar over mTLS.

As Istio's authz-dry-run task: a DENY policy annotated istio.io/dry-run
lets every request through, and the sidecar reports exactly how many it
would have denied, in its access log, in its metric and in the security
report; applied again without the annotation, it denies them. The callers
are real mTLS clients with certificates from the stand-in's CA; the pure
verdict table is tests/unit/test_core_dry_run.py.
"""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from meshkit.security_report import dry_run_frame, security_edges
from meshkit.telemetry import parse_dry_run
from tests.integration.mtls_fixtures import MeshCA, echo_sidecar_boot, get
from tests.integration.sidecar_fixtures import (
    EchoServer,
    SidecarProcess,
    StandInControlPlane,
    admin_headers,
    echo_server,
    get_json,
    running_sidecar,
    snapshot,
    stand_in_control_plane,
    wait_for,
)
from tests.integration.test_authz_sidecar import NODE, TOKEN, AuthzLab

DENY_CURL = """
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata:
  name: deny-curl
  namespace: default
  annotations: {ANNOTATIONS}
spec:
  selector: {matchLabels: {app: echo}}
  action: DENY
  rules:
  - from: [{source: {serviceAccounts: ["curl"]}}]
    to: [{operation: {paths: ["/data/*"]}}]
"""
DRY_RUN = DENY_CURL.replace("{ANNOTATIONS}", '{"istio.io/dry-run": "true"}')
ENFORCED = DENY_CURL.replace("{ANNOTATIONS}", "{}")

READERS_ONLY = """
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: readers-only, namespace: default}
spec:
  selector: {matchLabels: {app: echo}}
  action: ALLOW
  rules:
  - from: [{source: {serviceAccounts: ["default/reader", "ops/reader"]}}]
"""

CURL, READER, WRITER = "default/curl", "default/reader", "default/writer"
ID = "ns[default]-policy[deny-curl]-rule[0]"


class DryRunLab(AuthzLab):
    """The authz lab's echo sidecar, writing an access log."""

    def __init__(self, control: StandInControlPlane, sidecar: SidecarProcess, echo: EchoServer, mesh: MeshCA, access_log: Path) -> None:
        super().__init__(control, sidecar, echo, mesh)
        self.access_log = access_log

    def flush(self) -> None:
        request = urllib.request.Request(f"http://127.0.0.1:{self.sidecar.admin}/telemetry/flush", method="POST", headers=admin_headers())
        with urllib.request.urlopen(request, timeout=10) as answer:
            assert answer.status == 200

    def log_lines(self, marker: str) -> list[dict[str, object]]:
        self.flush()
        lines = [json.loads(line) for line in self.access_log.read_text().splitlines()]
        return [line for line in lines if marker in str(line["path"])]

    def dry_run_counts(self) -> dict[tuple[str, str], int]:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.sidecar.admin}/stats/prometheus", timeout=10) as answer:
            return parse_dry_run(answer.read().decode())

    def records(self, marker: str) -> pd.DataFrame:
        rows = [r for r in get_json(self.sidecar.admin, "/requests?limit=10000") if marker in str(r["path"])]
        return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DryRunLab]:
    workdir: Path = tmp_path_factory.mktemp("dry-run")
    access_log = workdir / "access.log"
    with stand_in_control_plane(TOKEN) as control, echo_server("echo") as echo:
        boot = echo_sidecar_boot(None, echo.port)
        boot["static_snapshot"] = None
        boot["control_plane"] = {"url": control.url, "token": TOKEN}
        boot["telemetry"] = {"access_log": str(access_log), "push": False, "flush_interval_s": 60}
        control.publish(snapshot(NODE, [], version=1))
        with running_sidecar(boot, workdir) as sidecar:
            assert wait_for(lambda: get_json(sidecar.admin, "/certs")["ready"], timeout=15)
            yield DryRunLab(control, sidecar, echo, MeshCA(workdir, ca=control.ca), access_log)


def test_a_dry_run_deny_lets_every_request_through_and_reports_exactly_what_it_would_have_denied(lab: DryRunLab) -> None:
    lab.use(DRY_RUN)
    before = lab.dry_run_counts()
    statuses = [lab.send(CURL, get(f"/data/{i}?case=dry"))[0] for i in range(12)]
    statuses += [lab.send(READER, get(f"/data/{i}?case=dry"))[0] for i in range(5)]
    statuses += [lab.send(CURL, get(f"/other/{i}?case=dry"))[0] for i in range(3)]
    assert statuses == [200] * 20
    assert len(lab.app_paths("case=dry")) == 20

    # The access log, in Envoy's words.
    shadow = [line["dry_run"] for line in lab.log_lines("case=dry")]
    assert shadow.count(f"deny: shadow denied, matched policy {ID}") == 12
    assert shadow.count("deny: shadow allowed, matched policy none") == 8 and len(shadow) == 20

    # The metric, under Istio's labels.
    after = lab.dry_run_counts()
    assert after[("deny", "denied")] - before.get(("deny", "denied"), 0) == 12
    assert after[("deny", "allowed")] - before.get(("deny", "allowed"), 0) == 8

    # The security report: per caller identity, and per policy.
    records = lab.records("case=dry")
    rows = {r.peer_identity.rsplit("/", 1)[-1]: r for r in security_edges(records, {}).itertuples()}
    assert (rows["curl"].requests, rows["curl"].denied, rows["curl"].would_deny) == (15, 0, 12)
    assert rows["curl"].dry_run == "default/deny-curl would deny 12 requests"
    assert (rows["reader"].would_deny, rows["reader"].dry_run) == (0, "")
    (policy,) = dry_run_frame(records[records["dry_run"].str.startswith("deny: shadow denied")]).itertuples()
    assert (policy.policy, policy.would_deny) == ("default/deny-curl", 12)


def test_applied_again_without_the_annotation_it_denies_what_it_reported(lab: DryRunLab) -> None:
    lab.use(ENFORCED)
    denied = [lab.send(CURL, get(f"/data/{i}?case=enforced"))[0] for i in range(12)]
    allowed = [lab.send(READER, get(f"/data/{i}?case=enforced"))[0] for i in range(5)]
    assert (denied, allowed) == ([403] * 12, [200] * 5)
    assert len(lab.app_paths("case=enforced")) == 5
    lines = lab.log_lines("case=enforced")
    assert all(line["dry_run"] is None for line in lines) and len(lines) == 17
    assert sum(line["response_code_details"] == "rbac_access_denied_matched_policy[default/deny-curl]" for line in lines) == 12


def test_service_accounts_allow_one_callers_account_and_deny_anothers_over_mtls(lab: DryRunLab) -> None:
    lab.use(READERS_ONLY)
    assert lab.send(READER, get("/x?case=sa-reader"))[0] == 200
    assert lab.send("ops/reader", get("/x?case=sa-ops"))[0] == 200
    assert lab.send(WRITER, get("/x?case=sa-writer"))[0] == 403
    assert lab.send("shop/reader", get("/x?case=sa-shop"))[0] == 403
    assert lab.send(None, get("/x?case=sa-plain"))[0] == 403
    assert sorted(lab.app_paths("case=sa-")) == ["/x?case=sa-ops", "/x?case=sa-reader"]
