"""AuthorizationPolicy through a real sidecar: who may call, what, and the path and host bypasses.

One echo sidecar gets its policies from a stand-in control plane (each
policy set is pushed and ACKed before its cases run) and its certificate
from the stand-in's CA, which also issues the callers' certificates: each
case is a real mTLS (or plaintext) request from a caller with a given
identity. The pure decision table is unit-tested (tests/unit/test_core_authz.py);
this is a representative subset, plus everything HARDENING lists for
authorization, held by the running sidecar.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.mtls_fixtures import MeshCA, echo_sidecar_boot, get, plain_exchange, security_keys, tls_exchange
from tests.integration.sidecar_fixtures import (
    EchoServer,
    SidecarProcess,
    StandInControlPlane,
    echo_server,
    endpoint,
    get_json,
    parse_responses,
    running_sidecar,
    service,
    snapshot,
    stand_in_control_plane,
    wait_for,
)

NODE = "default/echo-v1-0"
TOKEN = "node-token"

MATRIX = """
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: allow-reader, namespace: default}
spec:
  selector: {matchLabels: {app: echo}}
  action: ALLOW
  rules:
  - from: [{source: {principals: ["cluster.local/ns/default/sa/reader"]}}]
    to: [{operation: {methods: ["GET"], paths: ["/data/*"]}}]
  - from: [{source: {namespaces: ["ops"]}}]
    to: [{operation: {methods: ["GET", "POST"], ports: ["80"]}}]
  - to: [{operation: {paths: ["/team"]}}]
    when: [{key: "request.headers[x-team]", values: ["blue"]}]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: deny-admin, namespace: default}
spec:
  action: DENY
  rules:
  - from: [{source: {notNamespaces: ["ops"]}}]
    to: [{operation: {paths: ["/admin*"]}}]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: other-workload, namespace: default}
spec:
  selector: {matchLabels: {app: ratings}}
  action: DENY
  rules: [{}]
"""

BYPASS = """
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: deny-admin, namespace: default}
spec:
  action: DENY
  rules: [{to: [{operation: {paths: ["/admin*"]}}]}]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: allow-public, namespace: default}
spec:
  action: ALLOW
  rules: [{to: [{operation: {paths: ["/public*"]}}]}]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: deny-admin-host, namespace: default}
spec:
  action: DENY
  rules: [{to: [{operation: {hosts: ["admin.default.svc.cluster.local"]}}]}]
"""

REQUIRE_MTLS = """
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: require-mtls, namespace: istio-system}
spec:
  action: DENY
  rules: [{from: [{source: {notPrincipals: ["*"]}}]}]
"""


class AuthzLab:
    """The echo sidecar, its stand-in control plane, and callers with certificates from its CA."""

    def __init__(self, control: StandInControlPlane, sidecar: SidecarProcess, echo: EchoServer, mesh: MeshCA) -> None:
        self.control = control
        self.sidecar = sidecar
        self.echo = echo
        self.mesh = mesh
        self.version = 1
        self.policies: tuple[str, ...] | None = None

    def use(self, *policies: str) -> None:
        if policies == self.policies:
            return
        self.version += 1
        own = endpoint(self.sidecar.inbound, "echo-v1", "v1", instance="echo-v1-0")
        doc = snapshot(NODE, [service("echo", [own])], version=self.version, **security_keys(*policies))
        self.control.publish(doc)
        version = self.version
        assert wait_for(lambda: any(a["version"] == version and a["status"] == "ACK" for a in self.control.acks), timeout=10)
        self.policies = policies

    def send(self, caller: str | None, request: bytes) -> tuple[int | None, Any]:
        """(status or None when refused, the response) for a caller "namespace/sa" over mTLS, or plaintext (None)."""
        if caller is None:
            raw = plain_exchange(self.sidecar.inbound, request)
            responses = parse_responses(raw) if raw else []
        else:
            namespace, sa = caller.split("/")
            responses, _, _, _ = tls_exchange(self.sidecar.inbound, self.mesh.context(namespace, sa), request)
        return (responses[0].status, responses[0]) if responses else (None, None)

    def app_paths(self, marker: str) -> list[str]:
        return [r.path for r in self.echo.snapshot() if marker in r.path]


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AuthzLab]:
    workdir: Path = tmp_path_factory.mktemp("authz")
    with stand_in_control_plane(TOKEN) as control, echo_server("echo") as echo:
        boot = echo_sidecar_boot(None, echo.port)
        boot["static_snapshot"] = None
        boot["control_plane"] = {"url": control.url, "token": TOKEN}
        control.publish(snapshot(NODE, [], version=1))
        with running_sidecar(boot, workdir) as sidecar:
            assert wait_for(lambda: get_json(sidecar.admin, "/certs")["ready"], timeout=15)
            yield AuthzLab(control, sidecar, echo, MeshCA(workdir, ca=control.ca))


READER, WRITER, OPS = "default/reader", "default/writer", "ops/deployer"

MATRIX_CASES = [
    # (caller, method, path, headers, expected status, deciding policy for a 403)
    (READER, "GET", "/data/1", {}, 200, None),
    (READER, "POST", "/data/1", {}, 403, "none"),
    (READER, "GET", "/other", {}, 403, "none"),
    (WRITER, "GET", "/data/1", {}, 403, "none"),
    ("shop/reader", "GET", "/data/1", {}, 403, "none"),
    (OPS, "POST", "/anything", {}, 200, None),
    (OPS, "DELETE", "/anything", {}, 403, "none"),
    (OPS, "GET", "/admin/users", {}, 200, None),
    (READER, "GET", "/admin/users", {}, 403, "default/deny-admin"),
    (None, "GET", "/data/1", {}, 403, "none"),
    (None, "GET", "/admin", {}, 403, "default/deny-admin"),
    (WRITER, "GET", "/team", {"x-team": "blue"}, 200, None),
    (None, "GET", "/team", {"x-team": "blue"}, 200, None),
    (WRITER, "GET", "/team", {"x-team": "red"}, 403, "none"),
]


@pytest.mark.parametrize("index", range(len(MATRIX_CASES)), ids=[f"{c[0] or 'plaintext'}-{c[1]}-{c[2]}-{c[4]}" for c in MATRIX_CASES])
def test_allow_deny_matrix_over_principals_namespaces_methods_and_paths(lab: AuthzLab, index: int) -> None:
    caller, method, path, headers, status, policy = MATRIX_CASES[index]
    lab.use(MATRIX)
    target = f"{path}?case=m{index}"
    marker = f"m{index}"
    got, response = lab.send(caller, get(target, headers=headers, method=method))
    assert got == status, (caller, method, path, response)
    reached = lab.app_paths(f"case={marker}")
    if status == 403:
        assert reached == []
        assert response.body == b"RBAC: access denied"
        assert response.header("x-meshkit-response-flags") == "RBAC"
        [rec] = [r for r in get_json(lab.sidecar.admin, "/requests?limit=1000") if r["path"] == target]
        assert rec["code"] == 403 and rec["flags"] == "RBAC"
        assert rec["response_code_details"] == f"rbac_access_denied_matched_policy[{policy}]"
    else:
        assert reached == [target]


def test_identity_rules_never_match_plaintext_callers_and_require_mtls_denies_them(lab: AuthzLab) -> None:
    lab.use(REQUIRE_MTLS)
    plain, _ = lab.send(None, get("/any?case=require-plain"))
    mtls, _ = lab.send(WRITER, get("/any?case=require-mtls"))
    assert (plain, mtls) == (403, 200)
    assert lab.app_paths("case=require-") == ["/any?case=require-mtls"]


def raw_request(target: bytes, host: bytes = b"echo") -> bytes:
    return b"GET " + target + b" HTTP/1.1\r\nHost: " + host + b"\r\nConnection: close\r\n\r\n"


BYPASS_TARGETS = [
    b"//admin", b"/./admin", b"/public/../admin", b"/public/%2e%2e/admin", b"/public/%2E%2E/admin",
    b"/%2fadmin", b"/%2Fadmin", b"/%61dmin", b"\\admin", b"/admin;x=1", b"/admin#x", b"/public/..%2fadmin",
    b"/public/%2e%2e%2fadmin", b"/ADMIN/../admin", b"/admin/", b"/admin?x=/public",
]  # fmt: skip


@pytest.mark.parametrize("target", BYPASS_TARGETS, ids=[t.decode() for t in BYPASS_TARGETS])
@pytest.mark.parametrize("caller", [None, WRITER], ids=["plaintext", "mtls"])
def test_path_bypasses_of_a_deny_on_admin_and_an_allow_on_public_are_403_or_400_and_never_reach_the_app(
    lab: AuthzLab, caller: str | None, target: bytes
) -> None:
    lab.use(BYPASS)
    before = len(lab.echo.snapshot())
    status, response = lab.send(caller, raw_request(target))
    assert status in (400, 403), (target, response)
    assert len(lab.echo.snapshot()) == before, "the app received a request it must not see"


@pytest.mark.parametrize(
    ("target", "judged"),
    [
        (b"/public/a/../b", "/public/b"),
        (b"//public///a", "/public/a"),
        (b"/public/%2e/%61%62c?q=%2e%2e", "/public/abc?q=%2e%2e"),
        (b"/%70ublic/x", "/public/x"),
        (b"/public/%7Euser/%2fx", "/public/~user/x"),
    ],
)
def test_the_app_receives_the_path_the_policy_judged(lab: AuthzLab, target: bytes, judged: str) -> None:
    lab.use(BYPASS)
    status, _ = lab.send(WRITER, raw_request(target))
    assert status == 200
    assert lab.echo.snapshot()[-1].path == judged


@pytest.mark.parametrize(
    "host",
    [b"admin.default.svc.cluster.local", b"ADMIN.Default.svc.cluster.local", b"admin.default.svc.cluster.local.",
     b"admin.default.svc.cluster.local:80", b"Admin.default.svc.cluster.local.:9080"],
)  # fmt: skip
def test_host_rules_hold_across_case_port_and_trailing_dot(lab: AuthzLab, host: bytes) -> None:
    lab.use(BYPASS)
    status, _ = lab.send(WRITER, raw_request(b"/public/host-check", host))
    assert status == 403
    ok, _ = lab.send(WRITER, raw_request(b"/public/host-check", b"echo.default.svc.cluster.local"))
    assert ok == 200


def test_policies_for_other_workloads_do_not_apply_and_a_policy_meshkit_cannot_enforce_is_nacked(lab: AuthzLab) -> None:
    lab.use(MATRIX)
    certs = get_json(lab.sidecar.admin, "/certs")
    assert certs["authorization_policies"] == 2  # other-workload selects app=ratings
    acks_before = len(lab.control.acks)
    lab.version += 1
    doc = snapshot(NODE, [], version=lab.version)
    doc["authorization_policies"] = [
        {"kind": "AuthorizationPolicy", "namespace": "default", "name": "jwt", "spec": {"selector": None, "action": "ALLOW",
         "rules": [{"from": [], "to": [], "when": [{"key": "request.auth.claims[iss]", "values": ["x"], "not_values": []}]}]}}
    ]  # fmt: skip
    lab.control.publish(doc)
    assert wait_for(lambda: len(lab.control.acks) > acks_before, timeout=10)
    nack = lab.control.acks[-1]
    assert nack["status"] == "NACK" and "request.auth.claims" in nack["reason"]
    # The last good policies still hold.
    status, _ = lab.send(READER, get("/admin?case=after-nack"))
    assert status == 403
    lab.policies = None  # the control plane's current document is the rejected one; the next use() republishes
