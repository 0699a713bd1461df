"""A sidecar imports only what it uses, so it stays small (issue 12: at most 32 MB resident per sidecar).

Every sidecar of a lab is its own process, so a module it imports for
nothing is paid once per pod. `cryptography` alone is about 10 MB resident:
a plaintext sidecar never touches a certificate, and one with a static
certificate (the benchmarks' mTLS pair) reads certificates with the
standard library (meshkit.security.cert_fields) and Python's ssl, and one
with a control plane has its key and CSR made by a short-lived child
(meshkit.security.keygen).

Each check runs in a fresh interpreter, since this one has imported
everything the other tests use.
"""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import datetime, timezone

from meshkit.security.ca import certificates_pem, create_authority
from meshkit.security.csr import private_key_pem
from meshkit.security.identity import Identity
from tests.unit.test_security_samples import issue_for

# The packages outside the standard library a sidecar runs on: the HTTP parser and the event loop,
# and the Cython runtime both are compiled with (`cython_runtime`, `_cython_3_0_11`, ...).
SIDECAR_PACKAGES = {"httptools", "uvloop", "cython_runtime"}
CYTHON_RUNTIME_PREFIX = "_cython_"
# The parts of meshkit a sidecar is made of. Not the CA (ca, ca_store, csr: `cryptography`), the
# config checker, the control plane or the lab, which bring pydantic-sized imports with them.
SIDECAR_MESHKIT = ("meshkit.sidecar", "meshkit.core", "meshkit.security")
SIDECAR_MESHKIT_MODULES = {"meshkit", "meshkit.errors", "meshkit.names"}
CA_MODULES = {"meshkit.security.ca", "meshkit.security.ca_store", "meshkit.security.csr"}
# Standard-library modules only a sidecar that loads a certificate needs.
CERTIFICATE_ONLY = {"tempfile"}


def modules_loaded(code: str, stdin: str = "") -> set[str]:
    """sys.modules of a fresh interpreter after `code`, less those the interpreter starts with."""
    report = "import json as _j, sys as _s; print(_j.dumps(sorted(_s.modules)))"
    baseline = subprocess.run([sys.executable, "-c", report], capture_output=True, text=True, check=True, timeout=60)
    done = subprocess.run([sys.executable, "-c", f"{code}\n{report}"], input=stdin, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return set(json.loads(done.stdout.splitlines()[-1])) - set(json.loads(baseline.stdout))


def unwanted(modules: set[str]) -> list[str]:
    """The modules a sidecar should not have: packages it does not run on, meshkit outside the sidecar's parts."""
    found = []
    for name in sorted(modules):
        top = name.split(".")[0]
        if top == "meshkit":
            if name in CA_MODULES or not (name in SIDECAR_MESHKIT_MODULES or name.startswith(SIDECAR_MESHKIT)):
                found.append(name)
        elif top not in sys.stdlib_module_names and top not in SIDECAR_PACKAGES and not top.startswith(CYTHON_RUNTIME_PREFIX):
            found.append(name)
    return found


def test_a_plaintext_sidecar_imports_nothing_it_does_not_use() -> None:
    modules = modules_loaded("import meshkit.sidecar.__main__, uvloop")
    assert unwanted(modules) == []
    assert modules & CERTIFICATE_ONLY == set()
    assert modules & {"argparse", "gettext"} == set(), "one option needs no argparse"
    # The entry module did load the sidecar, so the checks above looked at something.
    assert {"meshkit.sidecar.runtime", "meshkit.sidecar.exchange", "httptools"} <= modules


STATIC_MTLS = """
import asyncio, json, ssl, sys
from meshkit.sidecar.bootstrap import parse_bootstrap
from meshkit.sidecar.identity import new_key_and_csr
from meshkit.sidecar.peer_check import PeerCheck
from meshkit.sidecar.runtime import Sidecar

class Handshaken(asyncio.Transport):
    def __init__(self, ssl_object):
        super().__init__()
        self.ssl_object = ssl_object
    def get_extra_info(self, name, default=None):
        return self.ssl_object if name == "ssl_object" else default

def handshake(client_context, server_context):
    client_in, client_out, server_in, server_out = (ssl.MemoryBIO() for _ in range(4))
    client = client_context.wrap_bio(client_in, client_out)
    server = server_context.wrap_bio(server_in, server_out, server_side=True)
    for _ in range(10):
        for end in (client, server):
            try:
                end.do_handshake()
            except ssl.SSLWantReadError:
                pass
        server_in.write(client_out.read())
        client_in.write(server_out.read())
    return server

async def main():
    sidecar = Sidecar(parse_bootstrap(json.loads(sys.stdin.read())))
    sidecar.install_static_identity()
    identity = sidecar.identity
    accepted, peer = PeerCheck(identity)(Handshaken(handshake(identity.client_context, identity.server_context)))
    described = identity.describe()["certificate"]
    assert accepted and peer.uri == identity.uri, (accepted, peer)
    assert described["root"] == described["trusted_root_ids"][0] is not None, described
    key_pem, csr = await new_key_and_csr(identity.identity)  # what a sidecar with a control plane does next
    assert b"PRIVATE KEY" in key_pem and "CERTIFICATE REQUEST" in csr

asyncio.run(main())
"""


def test_a_sidecar_installs_a_certificate_checks_a_peer_and_makes_a_key_without_cryptography() -> None:
    now = datetime.now(timezone.utc)
    ca = create_authority(now)
    key, leaf = issue_for(ca, Identity("cluster.local", "default", "sa-client"), now)
    bootstrap = {
        "node": "default/client-0",
        "workload": {"name": "client", "namespace": "default", "service": "client", "version": "v1",
                     "service_account": "sa-client", "labels": {"app": "client", "version": "v1"}},
        "host": "127.0.0.1",
        "inbound": None,
        "outbound": {"port": 0},
        "admin": {"port": 0},
        "control_plane": None,
        "static_snapshot": {"version": 1, "node": "default/client-0", "services": {}},
        "static_identity": {
            "certificate_chain": certificates_pem([leaf]).decode(),
            "private_key": private_key_pem(key).decode(),
            "trust_bundle": ca.trust_bundle_pem().decode(),
        },
    }  # fmt: skip
    modules = modules_loaded(STATIC_MTLS, json.dumps(bootstrap))
    assert unwanted(modules) == []
    assert "meshkit.security.cert_fields" in modules


def test_unwanted_names_what_a_sidecar_should_not_import() -> None:
    assert unwanted({"cryptography.x509", "pydantic", "meshkit.security.csr", "meshkit.config", "meshkit.lab"}) == [
        "cryptography.x509", "meshkit.config", "meshkit.lab", "meshkit.security.csr", "pydantic",
    ]  # fmt: skip
    assert unwanted({"ssl", "_ssl", "httptools.parser", "uvloop", "meshkit.sidecar.exchange", "meshkit.names"}) == []
