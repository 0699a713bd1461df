"""The inbound port under STRICT, PERMISSIVE and DISABLE, with real clients (HARDENING: mTLS and identity).

Each sidecar stands in front of a recording echo app, with a static snapshot
holding one PeerAuthentication and a certificate from the test's CA. Clients
are `openssl s_client`, `curl` and Python's ssl. "Refused" means: no HTTP
byte came back and the app received nothing.
"""

from __future__ import annotations

import shutil
import ssl
import subprocess
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from meshkit.security.tls import STRICT_FLAGS
from tests.integration.mtls_fixtures import (
    CLIENT_SA,
    ECHO_SA,
    MeshCA,
    echo_sidecar_boot,
    get,
    mode_policy,
    plain_exchange,
    tls_exchange,
)
from tests.integration.sidecar_fixtures import EchoServer, SidecarProcess, echo_server, get_json, running_sidecar, wait_for
from tests.unit.test_security_samples import forge_leaf, pems

OPENSSL = shutil.which("openssl")
CURL = shutil.which("curl")


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("mtls")


@pytest.fixture(scope="module")
def mesh(workdir: Path) -> MeshCA:
    return MeshCA(workdir)


@pytest.fixture(scope="module")
def foreign(workdir: Path) -> MeshCA:
    return MeshCA(workdir, name="foreign")


@pytest.fixture(scope="module")
def echo() -> Iterator[EchoServer]:
    with echo_server("echo") as server:
        yield server


def _sidecar(mesh: MeshCA, echo: EchoServer, workdir: Path, mode: str) -> Iterator[SidecarProcess]:
    with running_sidecar(echo_sidecar_boot(mesh, echo.port, mode_policy(mode)), workdir) as proc:
        assert wait_for(lambda: get_json(proc.admin, "/certs")["ready"])
        yield proc


@pytest.fixture(scope="module")
def strict(mesh: MeshCA, echo: EchoServer, workdir: Path) -> Iterator[SidecarProcess]:
    yield from _sidecar(mesh, echo, workdir, "STRICT")


@pytest.fixture(scope="module")
def permissive(mesh: MeshCA, echo: EchoServer, workdir: Path) -> Iterator[SidecarProcess]:
    yield from _sidecar(mesh, echo, workdir, "PERMISSIVE")


@pytest.fixture(scope="module")
def disable(mesh: MeshCA, echo: EchoServer, workdir: Path) -> Iterator[SidecarProcess]:
    yield from _sidecar(mesh, echo, workdir, "DISABLE")


def app_requests(echo: EchoServer, marker: str) -> int:
    return sum(1 for r in echo.snapshot() if marker in r.path)


# --- openssl s_client and curl against STRICT ---


def s_client(port: int, bundle: Path, cert: tuple[Path, Path] | None, marker: str) -> subprocess.CompletedProcess[bytes]:
    assert OPENSSL is not None
    argv = [OPENSSL, "s_client", "-connect", f"127.0.0.1:{port}", "-tls1_3", "-CAfile", str(bundle), "-verify_return_error", "-quiet"]
    if cert is not None:
        argv += ["-cert", str(cert[0]), "-key", str(cert[1])]
    return subprocess.run(argv, input=get(f"/{marker}"), capture_output=True, timeout=20)


def curl(url: str, bundle: Path | None, cert: tuple[Path, Path] | None) -> subprocess.CompletedProcess[bytes]:
    assert CURL is not None
    # -k: the sidecar's certificate names a SPIFFE ID, not a host name; the
    # chain is still checked by openssl above. What is tested here is what
    # the sidecar accepts from the client.
    argv = [CURL, "-sS", "--max-time", "10", "-H", "Host: echo", url]
    if bundle is not None:
        argv[1:1] = ["-k", "--tlsv1.3"]
    if cert is not None:
        argv[1:1] = ["--cert", str(cert[0]), "--key", str(cert[1])]
    return subprocess.run(argv, capture_output=True, timeout=20)


CLIENT_CERTS = ["none", "foreign-ca", "expired", "not-yet-valid", "mesh"]


def client_cert(kind: str, mesh: MeshCA, foreign: MeshCA) -> tuple[Path, Path] | None:
    if kind == "none":
        return None
    if kind == "foreign-ca":
        return foreign.files("client", "default", CLIENT_SA)
    if kind == "expired":
        return mesh.files("expired", "default", CLIENT_SA, at=datetime.now(timezone.utc) - timedelta(minutes=10), lifetime=timedelta(minutes=1))
    if kind == "not-yet-valid":
        return mesh.files("future", "default", CLIENT_SA, at=datetime.now(timezone.utc) + timedelta(minutes=30))
    return mesh.files("client", "default", CLIENT_SA)


@pytest.mark.skipif(OPENSSL is None, reason="needs the openssl command")
@pytest.mark.parametrize("kind", CLIENT_CERTS)
def test_openssl_s_client_against_strict_is_served_only_with_a_mesh_certificate(
    kind: str, strict: SidecarProcess, mesh: MeshCA, foreign: MeshCA, echo: EchoServer
) -> None:
    marker = f"s-client-{kind}"
    result = s_client(strict.inbound, mesh.bundle_file(), client_cert(kind, mesh, foreign), marker)
    if kind == "mesh":
        assert b"HTTP/1.1 200" in result.stdout, result.stderr
        assert app_requests(echo, marker) == 1
    else:
        assert b"HTTP/" not in result.stdout, result.stdout
        assert app_requests(echo, marker) == 0


@pytest.mark.skipif(CURL is None, reason="needs the curl command")
@pytest.mark.parametrize("kind", CLIENT_CERTS)
def test_curl_against_strict_is_served_only_with_a_mesh_certificate(
    kind: str, strict: SidecarProcess, mesh: MeshCA, foreign: MeshCA, echo: EchoServer
) -> None:
    marker = f"curl-{kind}"
    result = curl(f"https://127.0.0.1:{strict.inbound}/{marker}", mesh.bundle_file(), client_cert(kind, mesh, foreign))
    if kind == "mesh":
        assert result.returncode == 0, result.stderr
        assert b'"path": "/curl-mesh"' in result.stdout
        assert app_requests(echo, marker) == 1
    else:
        assert result.returncode != 0 and result.stdout == b"", (result.returncode, result.stdout)
        assert app_requests(echo, marker) == 0


@pytest.mark.skipif(CURL is None, reason="needs the curl command")
def test_curl_in_plaintext_to_strict_gets_no_http_bytes_and_the_app_sees_nothing(strict: SidecarProcess, echo: EchoServer) -> None:
    before = get_json(strict.admin, "/certs")["tls"]["inbound_plaintext_refused"]
    result = curl(f"http://127.0.0.1:{strict.inbound}/curl-plaintext", None, None)
    assert result.returncode in (52, 56), result  # empty reply / connection reset
    assert result.stdout == b""
    assert app_requests(echo, "curl-plaintext") == 0
    assert get_json(strict.admin, "/certs")["tls"]["inbound_plaintext_refused"] == before + 1


def test_plaintext_to_strict_gets_no_bytes_at_all(strict: SidecarProcess, echo: EchoServer) -> None:
    raw = plain_exchange(strict.inbound, get("/raw-plaintext") + get("/raw-plaintext-2"))
    assert raw == b""
    assert app_requests(echo, "raw-plaintext") == 0


# --- the certificate the sidecar presents ---


def test_the_sidecar_presents_its_workload_spiffe_id_and_it_verifies_with_strict_flags(strict: SidecarProcess, mesh: MeshCA) -> None:
    context = mesh.context("default", CLIENT_SA)
    assert context.verify_flags & STRICT_FLAGS == STRICT_FLAGS and context.verify_mode == ssl.CERT_REQUIRED
    responses, _, der, error = tls_exchange(strict.inbound, context, get("/who"))
    assert error is None and [r.status for r in responses] == [200]
    # The handshake verified the chain strictly; the leaf names exactly the workload.
    assert der is not None
    leaf = x509.load_der_x509_certificate(der)
    uris = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(x509.UniformResourceIdentifier)
    assert uris == [f"spiffe://cluster.local/ns/default/sa/{ECHO_SA}"]
    assert format(leaf.serial_number, "x") == get_json(strict.admin, "/certs")["certificate"]["serial"]


def test_strict_client_context_also_refuses_a_foreign_server(strict: SidecarProcess, foreign: MeshCA) -> None:
    _, raw, _, error = tls_exchange(strict.inbound, foreign.context("default", CLIENT_SA), get("/foreign-server"))
    assert isinstance(error, ssl.SSLError) and raw == b""


# --- certificates HARDENING lists as not workload certificates ---


@pytest.mark.parametrize(
    "forgery",
    [
        {"is_ca": True},
        {"uris": ("spiffe://cluster.local/ns/default/sa/a", "spiffe://cluster.local/ns/default/sa/b")},
        {"uris": ("https://cluster.local/ns/default/sa/a",)},
        {"uris": ("spiffe://other.domain/ns/default/sa/a",)},
        {"authority_key_id": False},
        {"dns_names": ("echo.default.svc",)},
    ],
    ids=["ca-flagged-leaf", "two-uri-sans", "other-scheme", "other-trust-domain", "no-authority-key-id", "extra-dns-san"],
)
def test_leaves_that_are_not_mesh_workload_certificates_are_refused(strict: SidecarProcess, mesh: MeshCA, echo: EchoServer, forgery: dict) -> None:
    from meshkit.security.tls import client_context

    now = datetime.now(timezone.utc)
    key, certificate = forge_leaf(mesh.ca, not_before=now - timedelta(minutes=1), not_after=now + timedelta(hours=1), **forgery)
    chain, key_pem, bundle = pems(mesh.ca, key, certificate)
    marker = "forged-" + next(iter(forgery))
    responses, raw, _, _ = tls_exchange(strict.inbound, client_context(chain, key_pem, bundle), get(f"/{marker}"))
    assert responses == [] and b"HTTP/" not in raw
    assert app_requests(echo, marker) == 0


# --- PERMISSIVE and DISABLE ---


def test_permissive_serves_plaintext_and_mtls_and_marks_which(permissive: SidecarProcess, mesh: MeshCA, echo: EchoServer) -> None:
    plain = plain_exchange(permissive.inbound, get("/permissive-plain"))
    assert plain.startswith(b"HTTP/1.1 200")
    responses, _, _, error = tls_exchange(permissive.inbound, mesh.context("default", CLIENT_SA), get("/permissive-mtls"))
    assert error is None and [r.status for r in responses] == [200]
    assert app_requests(echo, "permissive-") == 2
    records = {r["path"]: r for r in get_json(permissive.admin, "/requests")}
    assert records["/permissive-plain"]["connection_security_policy"] == "none"
    assert records["/permissive-plain"]["source_principal"] == ""
    assert records["/permissive-mtls"]["connection_security_policy"] == "mutual_tls"
    assert records["/permissive-mtls"]["source_principal"] == f"spiffe://cluster.local/ns/default/sa/{CLIENT_SA}"
    assert records["/permissive-mtls"]["destination_principal"] == f"spiffe://cluster.local/ns/default/sa/{ECHO_SA}"
    certs = get_json(permissive.admin, "/certs")
    assert certs["inbound_mode"] == {"mode": "PERMISSIVE", "policy": "default/default"}


def test_disable_serves_plaintext_and_refuses_tls(disable: SidecarProcess, mesh: MeshCA, echo: EchoServer) -> None:
    assert plain_exchange(disable.inbound, get("/disable-plain")).startswith(b"HTTP/1.1 200")
    responses, raw, _, error = tls_exchange(disable.inbound, mesh.context("default", CLIENT_SA), get("/disable-mtls"))
    assert responses == [] and error is not None and raw == b""
    assert app_requests(echo, "disable-mtls") == 0
    assert get_json(disable.admin, "/certs")["tls"]["inbound_tls_refused"] >= 1


# --- x-forwarded-client-cert ---


def test_xfcc_is_built_from_the_verified_peer_and_a_client_supplied_one_is_stripped(
    permissive: SidecarProcess, mesh: MeshCA, echo: EchoServer
) -> None:
    import hashlib

    from meshkit.security.tls import client_context

    spoof = {"x-forwarded-client-cert": "By=spiffe://cluster.local/ns/default/sa/echo;URI=spiffe://cluster.local/ns/kube-system/sa/admin"}
    chain, key, bundle = mesh.issue("default", CLIENT_SA)
    client_der = x509.load_pem_x509_certificate(chain).public_bytes(serialization.Encoding.DER)
    responses, _, _, error = tls_exchange(permissive.inbound, client_context(chain, key, bundle), get("/xfcc-mtls", headers=spoof))
    assert error is None and responses[0].status == 200
    assert plain_exchange(permissive.inbound, get("/xfcc-plain", headers=spoof)).startswith(b"HTTP/1.1 200")
    seen = {r.path: r.header_all("x-forwarded-client-cert") for r in echo.snapshot() if r.path.startswith("/xfcc-")}
    assert seen["/xfcc-plain"] == []
    [xfcc] = seen["/xfcc-mtls"]
    fields = dict(part.split("=", 1) for part in xfcc.split(";"))
    assert fields["By"] == f"spiffe://cluster.local/ns/default/sa/{ECHO_SA}"
    assert fields["URI"] == f"spiffe://cluster.local/ns/default/sa/{CLIENT_SA}"
    # Envoy's Hash: the SHA-256 of the certificate this client presented.
    assert fields["Hash"] == hashlib.sha256(client_der).hexdigest()
    assert set(fields) == {"By", "Hash", "URI"}


# --- steady traffic reuses the handshake ---


def test_one_kept_alive_mtls_connection_carries_many_requests_with_one_handshake(permissive: SidecarProcess, mesh: MeshCA) -> None:
    before = get_json(permissive.admin, "/certs")["tls"]["inbound_handshakes"]
    pipeline = b"".join(get(f"/keepalive-{i}").replace(b"Connection: close\r\n", b"") for i in range(49)) + get("/keepalive-last")
    responses, _, _, error = tls_exchange(permissive.inbound, mesh.context("default", CLIENT_SA), pipeline)
    assert error is None and [r.status for r in responses] == [200] * 50
    assert get_json(permissive.admin, "/certs")["tls"]["inbound_handshakes"] == before + 1


# --- the trust bundle travels in the snapshot (root rotation) ---


@pytest.mark.parametrize(("bundle", "accepted"), [("foreign", {"foreign"}), ("both", {"mesh", "foreign"})])
def test_peers_are_verified_against_the_snapshots_trust_bundle(
    bundle: str, accepted: set[str], mesh: MeshCA, foreign: MeshCA, echo: EchoServer, workdir: Path
) -> None:
    """A rotation distributes old and new roots in the snapshot: the sidecar trusts exactly those."""
    boot = echo_sidecar_boot(mesh, echo.port, mode_policy("STRICT"))
    roots = foreign.bundle_pem + (mesh.bundle_pem if bundle == "both" else b"")
    boot["static_snapshot"]["trust_bundle"] = roots.decode()
    with running_sidecar(boot, workdir) as proc:
        assert get_json(proc.admin, "/certs")["certificate"]["trusted_roots"] == (2 if bundle == "both" else 1)
        served = set()
        for name, ca in (("mesh", mesh), ("foreign", foreign)):
            # The client trusts the sidecar's own root, and presents a certificate from `ca`.
            from meshkit.security.tls import client_context

            chain, key, _ = ca.issue("default", CLIENT_SA)
            context = client_context(chain, key, mesh.bundle_pem)
            responses, _, _, _ = tls_exchange(proc.inbound, context, get(f"/bundle-{bundle}-{name}"))
            if responses and responses[0].status == 200:
                served.add(name)
    assert served == accepted
