"""The client side of mTLS: auto mTLS, DestinationRule tls.mode, the server's identity, pooled handshakes, failing closed.

A client sidecar calls the echo app's sidecar through its outbound port.
Both have certificates from the test's CA unless a test says otherwise.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.mtls_fixtures import CLIENT_SA, ECHO_SA, MeshCA, echo_sidecar_boot, mode_policy, security_keys
from tests.integration.sidecar_fixtures import (
    Client,
    EchoServer,
    SidecarProcess,
    StandInControlPlane,
    bootstrap,
    echo_server,
    endpoint,
    get_json,
    running_sidecar,
    service,
    snapshot,
    stand_in_control_plane,
    wait_for,
)

CLIENT_NODE = "default/client-0"
DR_DISABLE = """
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: echo, namespace: default}
spec: {host: echo, trafficPolicy: {tls: {mode: DISABLE}}}
"""
DR_MUTUAL = DR_DISABLE.replace("DISABLE", "ISTIO_MUTUAL")


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("mtls-out")


@pytest.fixture(scope="module")
def mesh(workdir: Path) -> MeshCA:
    return MeshCA(workdir)


@pytest.fixture(scope="module")
def echo() -> Iterator[EchoServer]:
    with echo_server("echo") as server:
        yield server


@pytest.fixture(scope="module")
def server(mesh: MeshCA, echo: EchoServer, workdir: Path) -> Iterator[SidecarProcess]:
    with running_sidecar(echo_sidecar_boot(mesh, echo.port), workdir) as proc:
        yield proc


def echo_endpoint(port: int, sidecar: bool = True, service_account: str | None = ECHO_SA) -> dict[str, Any]:
    ep = endpoint(port, "echo-v1", "v1", instance="echo-v1-0")
    ep.update(sidecar=sidecar, labels={"app": "echo", "version": "v1"})
    if service_account is not None:
        ep["service_account"] = service_account
    return ep


def client_boot(mesh: MeshCA | None, server_port: int, *policies: str, **endpoint_args: Any) -> dict[str, Any]:
    static = snapshot(CLIENT_NODE, [service("echo", [echo_endpoint(server_port, **endpoint_args)])], **security_keys(*policies))
    boot = bootstrap(node=CLIENT_NODE, static=static)
    if mesh is not None:
        boot["static_identity"] = mesh.static_identity("default", CLIENT_SA)
    return boot


def call(proxy: SidecarProcess, path: str, count: int = 1) -> list[Any]:
    with Client(proxy.outbound) as client:
        return [client.request("GET", f"http://echo{path}") for _ in range(count)]


def record(proc: SidecarProcess, path: str) -> dict[str, Any]:
    return next(r for r in reversed(get_json(proc.admin, "/requests?limit=1000")) if r["path"] == path)


def seen(echo: EchoServer, path: str) -> int:
    return sum(1 for r in echo.snapshot() if r.path == path)


def test_auto_mtls_to_a_sidecar_endpoint_verifies_both_ends_and_labels_both_records(
    mesh: MeshCA, server: SidecarProcess, echo: EchoServer, workdir: Path
) -> None:
    with running_sidecar(client_boot(mesh, server.inbound), workdir) as client:
        [response] = call(client, "/auto")
        assert response.status == 200
        out, inbound = record(client, "/auto"), record(server, "/auto")
    client_id, echo_id = f"spiffe://cluster.local/ns/default/sa/{CLIENT_SA}", f"spiffe://cluster.local/ns/default/sa/{ECHO_SA}"
    for rec in (out, inbound):
        assert rec["connection_security_policy"] == "mutual_tls"
        assert (rec["source_principal"], rec["destination_principal"]) == (client_id, echo_id)
    assert [r.header("x-forwarded-client-cert") for r in echo.snapshot() if r.path == "/auto"][0].endswith(f"URI={client_id}")


def test_steady_traffic_reuses_one_pooled_mtls_connection_and_opens_no_new_handshake(
    mesh: MeshCA, server: SidecarProcess, workdir: Path
) -> None:
    with running_sidecar(client_boot(mesh, server.inbound), workdir) as client:
        assert [r.status for r in call(client, "/warm")] == [200]
        before_client = get_json(client.admin, "/certs")["tls"]
        before_server = get_json(server.admin, "/certs")["tls"]
        # 200 requests, each on a new client connection to the sidecar: the sidecar-to-sidecar hop is pooled.
        statuses = [call(client, f"/steady-{i % 5}")[0].status for i in range(200)]
        after_client = get_json(client.admin, "/certs")["tls"]
        after_server = get_json(server.admin, "/certs")["tls"]
        clusters = get_json(client.admin, "/clusters")
    assert statuses == [200] * 200
    assert before_client["outbound_handshakes"] == 1
    assert after_client["outbound_handshakes"] == before_client["outbound_handshakes"]
    assert after_server["inbound_handshakes"] == before_server["inbound_handshakes"]
    [cluster] = clusters
    assert cluster["endpoints"][0]["mtls"] is True
    assert cluster["endpoints"][0]["identity"] == f"spiffe://cluster.local/ns/default/sa/{ECHO_SA}"


def test_a_server_proving_another_identity_is_refused_before_the_request_is_written(
    mesh: MeshCA, server: SidecarProcess, echo: EchoServer, workdir: Path
) -> None:
    with running_sidecar(client_boot(mesh, server.inbound, service_account="bookinfo-ratings"), workdir) as client:
        [response] = call(client, "/impostor")
        tls = get_json(client.admin, "/certs")["tls"]
    # UF, and URX: Istio's default retries (connect-failure) met the same refusal.
    assert response.status == 503 and response.header("x-meshkit-response-flags") in ("UF", "UF,URX")
    assert b"spiffe://cluster.local/ns/default/sa/echo" in response.body and b"bookinfo-ratings" in response.body
    assert tls["outbound_identity_refused"] >= 1
    assert seen(echo, "/impostor") == 0


@pytest.mark.parametrize(
    ("policies", "expected"),
    [
        ((DR_DISABLE,), "none"),
        ((DR_MUTUAL,), "mutual_tls"),
        ((mode_policy("DISABLE"),), "none"),
        ((mode_policy("STRICT", "istio-system"),), "mutual_tls"),
    ],
    ids=["dr-disable", "dr-istio-mutual", "destination-disable-auto", "mesh-strict-auto"],
)
def test_destination_rule_tls_mode_and_auto_mtls_decide_how_the_endpoint_is_dialled(
    policies: tuple[str, ...], expected: str, mesh: MeshCA, server: SidecarProcess, workdir: Path
) -> None:
    path = f"/mode-{expected}-{len(policies[0]) % 1000}"
    with running_sidecar(client_boot(mesh, server.inbound, *policies), workdir) as client:
        [response] = call(client, path)
        assert response.status == 200
        assert record(client, path)["connection_security_policy"] == expected
    assert record(server, path)["connection_security_policy"] == expected


def test_auto_mtls_to_an_endpoint_without_sidecar_is_plaintext(mesh: MeshCA, echo: EchoServer, workdir: Path) -> None:
    with running_sidecar(client_boot(mesh, echo.port, sidecar=False), workdir) as client:
        [response] = call(client, "/no-sidecar")
        assert response.status == 200 and record(client, "/no-sidecar")["connection_security_policy"] == "none"


def test_plaintext_forced_by_destination_rule_into_a_strict_sidecar_never_reaches_the_app(
    mesh: MeshCA, echo: EchoServer, workdir: Path
) -> None:
    with running_sidecar(echo_sidecar_boot(mesh, echo.port, mode_policy("STRICT")), workdir) as strict:
        with running_sidecar(client_boot(mesh, strict.inbound, DR_DISABLE), workdir) as client:
            [response] = call(client, "/forced-plaintext")
        refused = get_json(strict.admin, "/certs")["tls"]["inbound_plaintext_refused"]
    assert response.status == 503 and refused >= 1
    assert seen(echo, "/forced-plaintext") == 0


def test_a_sidecar_without_certificate_never_sends_plaintext_where_mtls_is_required(
    server: SidecarProcess, echo: EchoServer, workdir: Path
) -> None:
    with running_sidecar(client_boot(None, server.inbound), workdir) as client:
        [response] = call(client, "/no-cert")
        tls = get_json(client.admin, "/certs")["tls"]
    assert response.status == 503 and response.header("x-meshkit-response-flags") in ("UF", "UF,URX")
    assert b"no workload certificate" in response.body
    assert tls["outbound_no_certificate"] >= 1 and tls["outbound_handshakes"] == 0
    assert seen(echo, "/no-cert") == 0


def test_until_the_ca_answers_the_sidecar_is_not_ready_refuses_tls_and_sends_nothing_in_plaintext(
    mesh: MeshCA, server: SidecarProcess, echo: EchoServer, workdir: Path
) -> None:
    from tests.integration.mtls_fixtures import get, tls_exchange

    control: StandInControlPlane
    with stand_in_control_plane("node-token") as control:
        control.refuse_certificates = True
        control.publish(snapshot("default/echo-v1-0", [service("echo", [echo_endpoint(server.inbound)])]))
        boot = echo_sidecar_boot(None, echo.port)
        boot["static_snapshot"] = None
        boot["control_plane"] = {"url": control.url, "token": "node-token"}
        with running_sidecar(boot, workdir) as proc:
            assert proc.wait_log(r"could not get a workload certificate", timeout=10)
            assert wait_for(lambda: get_json(proc.admin, "/config_dump")["version"] == 1)
            with Client(proc.admin) as admin:
                ready = admin.request("GET", "/ready", {"host": "admin"})
            assert ready.status == 503 and b"no workload certificate yet" in ready.body
            [response] = call(proc, "/before-cert")
            assert response.status == 503 and seen(echo, "/before-cert") == 0
            responses, raw, _, _ = tls_exchange(proc.inbound, mesh.context("default", CLIENT_SA), get("/tls-before-cert"))
            assert responses == [] and raw == b"" and seen(echo, "/tls-before-cert") == 0
            # The CA comes back: retried with backoff, then ready and serving.
            control.refuse_certificates = False
            assert wait_for(lambda: get_json(proc.admin, "/certs")["ready"], timeout=15)
            certs = get_json(proc.admin, "/certs")
            assert certs["identity"] == f"spiffe://cluster.local/ns/default/sa/{ECHO_SA}" and certs["certificate"]["serial"]
            assert certs["certificate"]["renew_at"] is not None


def test_bursts_are_served_with_few_handshakes_and_the_pool_settles_at_the_peak_concurrency(
    mesh: MeshCA, server: SidecarProcess, workdir: Path
) -> None:
    from concurrent.futures import ThreadPoolExecutor

    def one(i: int) -> int:
        with Client(client.outbound) as c:
            return c.request("GET", f"http://echo/burst-{i % 7}", {"x-echo-delay-ms": "20"}).status

    counts = []
    with running_sidecar(client_boot(mesh, server.inbound), workdir) as client, ThreadPoolExecutor(16) as pool:
        for _ in range(4):
            assert list(pool.map(one, range(48))) == [200] * 48
            counts.append(get_json(client.admin, "/certs")["tls"]["outbound_handshakes"])
    # Never more connections than requests at once (16), opened at most two at a time;
    # once the pool holds the peak concurrency, the same bursts need no new handshake.
    assert 1 <= counts[0] <= counts[-1] <= 16, counts
    assert counts[-1] - counts[-2] <= 1, counts
