"""A sidecar's key and CSR come from a `python -m meshkit.security.keygen` child, so the sidecar never loads `cryptography`."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys

import pytest
from cryptography.hazmat.primitives import serialization

from meshkit.security.csr import check_request, load_csr
from meshkit.security.errors import RequestRefused
from meshkit.security.identity import Identity
from meshkit.sidecar.identity import KEYGEN, new_key_and_csr
from tests.unit.test_security_samples import PRODUCTPAGE, REVIEWS


def public_der(key_pem: bytes) -> bytes:
    key = serialization.load_pem_private_key(key_pem, password=None)
    return key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def csr_public_der(csr: str) -> bytes:
    return load_csr(csr).public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def test_the_sidecar_gets_a_fresh_key_and_a_csr_the_ca_accepts_for_its_identity() -> None:
    async def twice() -> list[tuple[bytes, str]]:
        return [await new_key_and_csr(REVIEWS), await new_key_and_csr(REVIEWS)]

    made = asyncio.run(twice())
    for key_pem, csr in made:
        check_request(load_csr(csr), REVIEWS)
        assert public_der(key_pem) == csr_public_der(csr)  # the CSR is signed for the key the sidecar keeps
        with pytest.raises(RequestRefused):
            check_request(load_csr(csr), PRODUCTPAGE)
    assert made[0][0] != made[1][0]  # a new key each time, as at every renewal


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        ([], "usage"),
        (["spiffe://cluster.local/ns/default/sa/a", "extra"], "usage"),
        (["spiffe://cluster.local/workload/reviews"], "meshkit keygen:"),
        (["https://cluster.local/ns/default/sa/a"], "meshkit keygen:"),
    ],
)
def test_anything_but_one_workload_identity_exits_2_saying_why(argv: list[str], says: str) -> None:
    done = subprocess.run([sys.executable, "-m", KEYGEN, *argv], capture_output=True, text=True, timeout=60)
    assert (done.returncode, done.stdout) == (2, "")
    assert says in done.stderr


def test_the_child_writes_one_json_object_with_the_key_and_the_csr() -> None:
    identity = Identity("cluster.local", "shop", "cart")
    done = subprocess.run([sys.executable, "-m", KEYGEN, identity.uri], capture_output=True, text=True, timeout=60, check=True)
    made = json.loads(done.stdout)
    assert sorted(made) == ["csr", "private_key"]
    check_request(load_csr(made["csr"]), identity)
