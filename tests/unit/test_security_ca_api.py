"""POST /v1/certificates as a function (meshkit.control.ca_api): the node token proves the identity."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from meshkit.control import store as ops
from meshkit.control.asgi import HttpError
from meshkit.control.ca_api import node_identity, parse_certificate_request, sign_certificate
from meshkit.control.store import State
from meshkit.errors import ConfigError
from meshkit.security.ca import CertificateAuthority, create_authority
from meshkit.security.csr import build_csr, new_private_key
from meshkit.security.identity import Identity
from meshkit.security.peer_cert import peer_identity
from tests.unit.test_security_samples import NOW

REVIEWS_NODE = "default/reviews-v1-0"
RATINGS_NODE = "default/ratings-v1-0"
REVIEWS = Identity("cluster.local", "default", "bookinfo-reviews")


def record(instance: str, service: str, account: str, sidecar: bool = True) -> dict[str, Any]:
    return {
        "instance": instance, "namespace": "default", "workload": f"{service}-v1", "service": service,
        "service_port": 9080, "version": "v1", "service_account": account, "labels": {"app": service},
        "address": "127.0.0.1", "port": 41000, "sidecar": sidecar,
    }


@pytest.fixture(scope="module")
def ca() -> CertificateAuthority:
    return create_authority(NOW, leaf_lifetime=timedelta(minutes=5))


@pytest.fixture
def state() -> State:
    state = ops.put_instance(State(), record("reviews-v1-0", "reviews", "bookinfo-reviews"), "reviews-token")
    state = ops.put_instance(state, record("ratings-v1-0", "ratings", "bookinfo-ratings"), "ratings-token")
    return ops.put_instance(state, record("plain-v1-0", "plain", "plain", sidecar=False), "plain-token")


def csr_for(identity: Identity) -> str:
    return build_csr(identity, new_private_key()).decode("ascii")


def test_a_node_with_its_own_token_gets_a_certificate_for_its_registered_identity(
    state: State, ca: CertificateAuthority
) -> None:
    answer = sign_certificate(state, REVIEWS_NODE, "reviews-token", csr_for(REVIEWS), ca, NOW)
    assert set(answer) == {"certificate_chain", "trust_bundle", "not_after", "serial", "identity"}
    [leaf] = x509.load_pem_x509_certificates(answer["certificate_chain"].encode())
    assert peer_identity(leaf.public_bytes(serialization.Encoding.DER), "cluster.local") == REVIEWS
    assert answer["identity"] == REVIEWS.uri
    assert answer["serial"] == format(leaf.serial_number, "x")
    assert answer["not_after"] == int((NOW + timedelta(minutes=5)).timestamp())
    assert x509.load_pem_x509_certificates(answer["trust_bundle"].encode()) == [ca.root]


@pytest.mark.parametrize(
    ("node", "token"),
    [
        (REVIEWS_NODE, "ratings-token"),
        (REVIEWS_NODE, "wrong"),
        (REVIEWS_NODE, None),
        (REVIEWS_NODE, ""),
        ("default/unknown-0", "reviews-token"),
        (REVIEWS_NODE, "reviews-token\x00"),
    ],
    ids=[
        "another_nodes_token",
        "a_made_up_token",
        "no_token",
        "an_empty_token",
        "a_node_that_is_not_registered",
        "the_right_token_with_a_nul_appended",
    ],
)
def test_a_token_that_is_not_the_named_nodes_own_gets_401(
    state: State, ca: CertificateAuthority, node: str, token: str | None
) -> None:
    with pytest.raises(HttpError) as caught:
        sign_certificate(state, node, token, csr_for(REVIEWS), ca, NOW)
    assert caught.value.status == 401


def test_a_node_registered_without_a_sidecar_gets_403(state: State, ca: CertificateAuthority) -> None:
    plain = Identity("cluster.local", "default", "plain")
    with pytest.raises(HttpError) as caught:
        sign_certificate(state, "default/plain-v1-0", "plain-token", csr_for(plain), ca, NOW)
    assert caught.value.status == 403


@pytest.mark.parametrize(
    ("csr", "reason"),
    [
        (lambda: csr_for(Identity("cluster.local", "default", "bookinfo-ratings")), "may only be"),
        (lambda: csr_for(Identity("cluster.local", "kube-system", "bookinfo-reviews")), "may only be"),
        (lambda: csr_for(Identity("evil.example", "default", "bookinfo-reviews")), "trust domain"),
        (lambda: "-----BEGIN CERTIFICATE REQUEST-----\nnope\n-----END CERTIFICATE REQUEST-----\n", "not a PEM"),
    ],
    ids=["another_service_account", "another_namespace", "another_trust_domain", "a_broken_pem"],
)
def test_a_csr_for_anything_but_the_nodes_identity_is_a_422_naming_the_csr(
    state: State, ca: CertificateAuthority, csr: Any, reason: str
) -> None:
    with pytest.raises(ConfigError, match=reason) as caught:
        sign_certificate(state, REVIEWS_NODE, "reviews-token", csr(), ca, NOW)
    assert (caught.value.kind, caught.value.name, caught.value.path) == ("CertificateSigningRequest", REVIEWS_NODE, "csr")


def test_the_identity_follows_the_record_so_a_changed_service_account_changes_what_may_be_signed(
    state: State, ca: CertificateAuthority
) -> None:
    moved = ops.put_instance(state, record("reviews-v1-0", "reviews", "reviews-v2-account"), "unused")
    with pytest.raises(ConfigError):
        sign_certificate(moved, REVIEWS_NODE, "reviews-token", csr_for(REVIEWS), ca, NOW)
    answer = sign_certificate(
        moved, REVIEWS_NODE, "reviews-token", csr_for(Identity("cluster.local", "default", "reviews-v2-account")), ca, NOW
    )
    assert answer["identity"] == "spiffe://cluster.local/ns/default/sa/reviews-v2-account"


def test_the_identity_uses_the_cas_trust_domain(state: State) -> None:
    assert node_identity(state.instances[RATINGS_NODE], "example.org") == Identity("example.org", "default", "bookinfo-ratings")


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ([], "JSON object"),
        ({"csr": "x"}, "'node'"),
        ({"node": "", "csr": "x"}, "'node'"),
        ({"node": REVIEWS_NODE}, "'csr'"),
        ({"node": REVIEWS_NODE, "csr": 5}, "'csr'"),
        ({"node": REVIEWS_NODE, "csr": "x", "identity": "spiffe://cluster.local/ns/a/sa/b"}, "unknown field 'identity'"),
    ],
    ids=["not_an_object", "no_node", "an_empty_node", "no_csr", "a_csr_that_is_not_text", "an_identity_field_asking_for_more"],
)
def test_a_body_that_is_not_node_and_csr_is_a_400(body: Any, message: str) -> None:
    with pytest.raises(HttpError, match=message) as caught:
        parse_certificate_request(body)
    assert caught.value.status == 400


def test_a_well_formed_body_yields_its_node_and_csr() -> None:
    assert parse_certificate_request({"node": REVIEWS_NODE, "csr": "PEM"}) == (REVIEWS_NODE, "PEM")
