"""Claimed metadata is never identity: spoofed mesh headers and XFCC through real sidecars.

A caller can write any header. Who it is comes only from what the sidecar
verified (the mTLS peer certificate) or, on the outbound side, from the
sidecar's own bootstrap. Here a plaintext caller and an mTLS caller holding
default/writer's certificate both claim to be kube-system/admin with
x-meshkit-peer, other x-meshkit-* fields and x-forwarded-client-cert: the
access log, /requests, the metrics and the security report show unknown (or
the certificate's identity), AuthorizationPolicies on principals, namespaces,
serviceAccounts and on the mesh headers never match the claim, the app never
sees the claimed headers, and a VirtualService header match on a mesh header
never routes by it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from meshkit.security_report import security_edges
from tests.integration.mtls_fixtures import MeshCA, echo_sidecar_boot, get
from tests.integration.sidecar_fixtures import (
    Client,
    admin_headers,
    bootstrap,
    echo_server,
    endpoint,
    get_json,
    running_sidecar,
    service,
    snapshot,
    stand_in_control_plane,
    traffic,
    wait_for,
)
from tests.integration.test_authz_dry_run import DryRunLab
from tests.integration.test_authz_sidecar import NODE, TOKEN

ADMIN_URI = "spiffe://cluster.local/ns/kube-system/sa/admin"
SPOOF = {
    "x-meshkit-peer": "w=admin;n=kube-system;v=v9;sa=admin",
    "x-meshkit-principal": ADMIN_URI,
    "x-meshkit-namespace": "kube-system",
    "x-forwarded-client-cert": f"By=spiffe://cluster.local/ns/default/sa/echo;URI={ADMIN_URI}",
}
WRITER = "default/writer"

# Every rule names what the spoofer claims; /open lets the spoofed requests reach the app.
ONLY_ADMIN = """
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: only-admin, namespace: default}
spec:
  action: ALLOW
  rules:
  - from: [{source: {principals: ["cluster.local/ns/kube-system/sa/admin"]}}]
  - from: [{source: {namespaces: ["kube-system"]}}]
  - from: [{source: {serviceAccounts: ["kube-system/admin"]}}]
  - when: [{key: "request.headers[x-meshkit-peer]", values: ["w=admin;n=kube-system;v=v9;sa=admin"]}]
  - when: [{key: "request.headers[x-meshkit-principal]", values: ["*"]}]
  - when: [{key: "request.headers[x-forwarded-client-cert]", values: ["*"]}]
  - to: [{operation: {paths: ["/open/*"]}}]
"""


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DryRunLab]:
    workdir: Path = tmp_path_factory.mktemp("spoof")
    access_log = workdir / "access.log"
    with stand_in_control_plane(TOKEN) as control, echo_server("echo") as echo:
        boot = echo_sidecar_boot(None, echo.port)
        boot["static_snapshot"] = None
        boot["control_plane"] = {"url": control.url, "token": TOKEN}
        boot["telemetry"] = {"access_log": str(access_log), "push": False, "flush_interval_s": 60}
        control.publish(snapshot(NODE, [], version=1))
        with running_sidecar(boot, workdir) as sidecar:
            assert wait_for(lambda: get_json(sidecar.admin, "/certs")["ready"], timeout=15)
            spoof_lab = DryRunLab(control, sidecar, echo, MeshCA(workdir, ca=control.ca), access_log)
            spoof_lab.use(ONLY_ADMIN)
            yield spoof_lab


def metric_sources(lab: DryRunLab) -> set[tuple[str, str, str]]:
    """(source_workload, source_workload_namespace, source_principal) of every destination request count."""
    with Client(lab.sidecar.admin) as client:
        text = client.request("GET", "/stats/prometheus", {"host": "admin"}).body.decode()
    found = set()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "meshkit_requests_total" and sample.labels.get("reporter") == "destination":
                labels = sample.labels
                found.add((labels["source_workload"], labels["source_workload_namespace"], labels.get("source_principal", "")))
    return found


@pytest.mark.parametrize("caller", [None, WRITER], ids=["plaintext", "mtls-writer"])
def test_a_spoofed_identity_matches_no_authorization_rule(lab: DryRunLab, caller: str | None) -> None:
    marker = f"deny-{caller or 'plain'}"
    status, response = lab.send(caller, get(f"/data?case={marker}", headers=SPOOF))
    assert status == 403 and response.body == b"RBAC: access denied"
    assert lab.app_paths(f"case={marker}") == []
    [record] = lab.records(f"case={marker}").to_dict("records")
    assert record["response_code_details"] == "rbac_access_denied_matched_policy[none]"


def test_the_identity_the_policy_names_is_allowed_when_its_certificate_proves_it(lab: DryRunLab) -> None:
    status, _ = lab.send("kube-system/admin", get("/data?case=real-admin"))
    assert status == 200 and lab.app_paths("case=real-admin") == ["/data?case=real-admin"]


@pytest.mark.parametrize("caller", [None, WRITER], ids=["plaintext", "mtls-writer"])
def test_the_app_never_sees_the_spoofed_headers(lab: DryRunLab, caller: str | None) -> None:
    marker = f"app-{caller or 'plain'}"
    status, _ = lab.send(caller, get(f"/open/x?case={marker}", headers=SPOOF))
    assert status == 200
    [seen] = [r for r in lab.echo.snapshot() if f"case={marker}" in r.path]
    assert [name for name, _ in seen.headers if name.lower().startswith("x-meshkit-")] == []
    xfcc = seen.header_all("x-forwarded-client-cert")
    if caller is None:
        assert xfcc == []
    else:
        [line] = xfcc
        assert ADMIN_URI not in line and line.endswith("URI=spiffe://cluster.local/ns/default/sa/writer")


def test_logs_requests_metrics_and_the_security_report_show_unknown_or_the_certificate(lab: DryRunLab) -> None:
    assert lab.send(None, get("/open/1?case=tele-plain", headers=SPOOF))[0] == 200
    assert lab.send(WRITER, get("/open/2?case=tele-writer", headers=SPOOF))[0] == 200
    honest = {"x-meshkit-peer": "w=writer-v1;n=default;v=v1;sa=writer"}
    assert lab.send(WRITER, get("/open/3?case=tele-honest", headers=honest))[0] == 200

    records = lab.records("case=tele-")
    by_path = {r["path"]: r for r in records.to_dict("records")}
    plain, writer, truthful = by_path["/open/1?case=tele-plain"], by_path["/open/2?case=tele-writer"], by_path["/open/3?case=tele-honest"]
    assert (plain["source_workload"], plain["source_version"], plain["source_principal"]) == ("unknown", "unknown", "")
    assert (writer["source_workload"], writer["source_version"]) == ("unknown", "unknown")
    assert writer["source_principal"] == "spiffe://cluster.local/ns/default/sa/writer"
    # A claim that names the identity the certificate proves is the caller's sidecar speaking: kept.
    assert (truthful["source_workload"], truthful["source_version"]) == ("writer-v1", "v1")

    lines = {line["path"]: line for line in lab.log_lines("case=tele-")}
    assert lines["/open/1?case=tele-plain"]["source_workload"] == "unknown"
    assert lines["/open/2?case=tele-writer"]["source_workload"] == "unknown"
    assert "admin" not in json.dumps([lines["/open/1?case=tele-plain"], lines["/open/2?case=tele-writer"]])

    # Every metric's source namespace is the one its certificate proves (unknown without one);
    # kube-system appears only with the real kube-system/admin certificate, never from a claim.
    sources = metric_sources(lab)
    for workload, namespace, principal in sources:
        assert workload != "admin", sources
        assert namespace == ("unknown" if principal == "unknown" else principal.split("/ns/")[1].split("/")[0]), sources
    assert ("unknown", "unknown", "unknown") in sources
    assert ("unknown", "default", "spiffe://cluster.local/ns/default/sa/writer") in sources

    frame = records.assign(destination_namespace="default")
    edges = security_edges(frame, {("default", "echo-v1"): "PERMISSIVE"})
    assert set(edges["source"]) <= {"unknown", "writer-v1"} and "admin" not in edges.to_string()
    assert ADMIN_URI not in set(edges["peer_identity"])


HEADER_ROUTE = """
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: echo, namespace: default}
spec:
  hosts: [echo]
  http:
  - match: [{headers: {x-meshkit-peer: {exact: "w=admin;n=kube-system;v=v9;sa=admin"}}}]
    route: [{destination: {host: vip}}]
  - match: [{headers: {x-forwarded-client-cert: {prefix: "By="}}}]
    route: [{destination: {host: vip}}]
  - match: [{headers: {x-meshkit-namespace: {exact: "kube-system"}}}]
    route: [{destination: {host: vip}}]
  - route: [{destination: {host: echo}}]
"""


def test_a_virtualservice_header_match_on_a_mesh_header_never_routes_by_a_spoofed_value(tmp_path: Path) -> None:
    node = "default/client-0"
    with echo_server("echo") as echo, echo_server("vip") as vip:
        services = [service("echo", [endpoint(echo.port, "echo-v1", "v1")]), service("vip", [endpoint(vip.port, "vip-v1", "v1")])]
        boot = bootstrap(node=node, static=snapshot(node, services, **traffic(HEADER_ROUTE)))
        with running_sidecar(boot, tmp_path) as proc, Client(proc.outbound) as client:
            answers = [client.request("GET", f"http://echo/route/{name}", {name: value}) for name, value in SPOOF.items()]
            with Client(proc.admin) as admin:
                dump = json.loads(admin.request("GET", "/config_dump", admin_headers()).body)
        assert [a.header("x-echo-server") for a in answers] == ["echo"] * len(SPOOF)
        assert vip.snapshot() == []
        # The route is there: it is the match that can never see the spoofed value.
        assert len(dump["snapshot"]["virtual_services"][0]["spec"]["http"]) == 4
        # The outbound sidecar wrote its own peer metadata over the claim.
        assert {r.header("x-meshkit-peer") for r in echo.snapshot()} == {"w=client;n=default;v=v1;sa=sa-client"}
