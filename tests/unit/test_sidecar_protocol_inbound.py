"""The inbound listener's protocol objects over in-memory transports: forward to the app, or refuse.

A plaintext caller (no mTLS: the mode is PERMISSIVE without a
PeerAuthentication) is labelled, checked (meshkit.sidecar.admission: path
normalisation, AuthorizationPolicy) and forwarded to the app's port, which
the test plays. Real-process versions: tests/integration/test_authz_sidecar.py
and test_mtls_inbound.py.
"""

from __future__ import annotations

from tests.unit.sidecar_memory import Upstreams, connect, endpoint, run, settle, sidecar, snapshot

APP_PORT = 9100
DENY_ADMIN = """
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: deny-admin, namespace: default}
spec:
  action: DENY
  rules:
  - to: [{operation: {paths: ["/admin"]}}]
"""


def test_a_plaintext_request_reaches_the_app_and_the_answer_carries_the_version() -> None:
    async def test(up: Upstreams) -> None:
        car = sidecar(snapshot([endpoint(9001)]), app_port=APP_PORT)
        client, wire = connect(car, "inbound")
        client.data_received(b"GET /items?q=1 HTTP/1.1\r\nhost: client\r\nx-meshkit-peer: w=web;n=default;v=v2;sa=web\r\n\r\n")
        await settle()
        assert [conn[0] for conn in up.conns] == [("127.0.0.1", APP_PORT)]
        sent = up.sent(0)
        assert sent.startswith(b"GET /items?q=1 HTTP/1.1\r\n") and b"x-meshkit-peer" not in sent.lower()
        up.answer(0, b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
        answer = wire.take()
        assert answer.startswith(b"HTTP/1.1 200 OK\r\n") and b"x-meshkit-version: v1\r\n" in answer
        record = car.telemetry.recent(1)[0]
        # A plaintext caller's x-meshkit-peer is a claim nobody verified: the caller is unknown.
        assert (record["code"], record["source_workload"], record["connection_security_policy"]) == (200, "unknown", "none")
        assert (record["source_version"], record["source_principal"]) == ("unknown", "")

    run(test)


def test_a_denied_path_is_403_even_spelled_with_dot_segments_and_never_reaches_the_app() -> None:
    async def test(up: Upstreams) -> None:
        car = sidecar(snapshot([endpoint(9001)], DENY_ADMIN), app_port=APP_PORT)
        client, wire = connect(car, "inbound")
        client.data_received(b"GET /public/../admin HTTP/1.1\r\nhost: client\r\n\r\n")
        await settle()
        answer = wire.take()
        assert answer.startswith(b"HTTP/1.1 403 ") and answer.endswith(b"RBAC: access denied")
        assert up.conns == []
        assert car.telemetry.recent(1)[0]["response_code_details"] == "rbac_access_denied_matched_policy[default/deny-admin]"
        client.data_received(b"GET /public/../ok HTTP/1.1\r\nhost: client\r\n\r\n")
        await settle()
        assert up.sent(0).startswith(b"GET /ok HTTP/1.1\r\n")  # what the policy judged is what the app gets

    run(test)


def test_a_path_with_parameters_is_refused_400_before_any_policy() -> None:
    async def test(up: Upstreams) -> None:
        car = sidecar(snapshot([endpoint(9001)]), app_port=APP_PORT)
        client, wire = connect(car, "inbound")
        client.data_received(b"GET /admin;x=1 HTTP/1.1\r\nhost: client\r\n\r\n")
        await settle()
        answer = wire.take()
        assert answer.startswith(b"HTTP/1.1 400 ") and b"x-meshkit-response-flags: DPE\r\n" in answer and up.conns == []

    run(test)


DRY_RUN_DENY_ADMIN = DENY_ADMIN.replace("metadata: {name: deny-admin, namespace: default}",
                                        'metadata: {name: deny-admin, namespace: default, annotations: {"istio.io/dry-run": "true"}}')


def test_a_dry_run_deny_lets_the_request_through_and_records_what_it_would_have_done() -> None:
    async def test(up: Upstreams) -> None:
        car = sidecar(snapshot([endpoint(9001)], DRY_RUN_DENY_ADMIN), app_port=APP_PORT)
        client, wire = connect(car, "inbound")
        client.data_received(b"GET /public/../admin HTTP/1.1\r\nhost: client\r\n\r\n")
        await settle()
        assert up.sent(0).startswith(b"GET /admin HTTP/1.1\r\n")
        up.answer(0, b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
        assert wire.take().startswith(b"HTTP/1.1 200 OK\r\n")
        record = car.telemetry.recent(1)[0]
        assert record["dry_run"] == "deny: shadow denied, matched policy ns[default]-policy[deny-admin]-rule[0]"
        assert record["response_code_details"] == ""
        client.data_received(b"GET /public HTTP/1.1\r\nhost: client\r\n\r\n")
        await settle()
        up.answer(0, b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
        assert car.telemetry.recent(1)[0]["dry_run"] == "deny: shadow allowed, matched policy none"
        exposition = car.telemetry.prometheus(1)
        assert 'meshkit_http_inbound_rbac{authz_dry_run_action="deny",authz_dry_run_result="denied"} 1\n' in exposition
        assert 'meshkit_http_inbound_rbac{authz_dry_run_action="deny",authz_dry_run_result="allowed"} 1\n' in exposition

    run(test)
