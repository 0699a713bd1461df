"""The control plane's CA over HTTP: a node's token buys a certificate for its own identity only."""

from __future__ import annotations

import httpx
from cryptography import x509

from meshkit.security.csr import build_csr, new_private_key
from meshkit.security.identity import Identity
from tests.integration.control_fixtures import ControlProcess, control, instance  # noqa: F401


def request(control: ControlProcess, token: str, node: str, identity: Identity) -> httpx.Response:
    csr = build_csr(identity, new_private_key()).decode()
    with control.http(token) as http:
        return http.post("/v1/certificates", json={"node": node, "csr": csr})


def test_a_sidecar_gets_a_certificate_for_its_own_spiffe_identity(control: ControlProcess) -> None:
    with control.client() as client:
        token = client.put_instance(instance("reviews-v1-0", 41000, service_account="bookinfo-reviews"))["node_token"]
    mine = Identity("cluster.local", "default", "bookinfo-reviews")
    answer = request(control, token, "default/reviews-v1-0", mine)
    assert answer.status_code == 200, answer.text
    leaf = x509.load_pem_x509_certificates(answer.json()["certificate_chain"].encode())[0]
    uris = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(
        x509.UniformResourceIdentifier
    )
    assert uris == ["spiffe://cluster.local/ns/default/sa/bookinfo-reviews"]
    assert "BEGIN CERTIFICATE" in answer.json()["trust_bundle"]


def test_another_identity_another_node_and_the_admin_token_are_refused(control: ControlProcess) -> None:
    with control.client() as client:
        token = client.put_instance(instance("reviews-v1-0", 41000, service_account="bookinfo-reviews"))["node_token"]
        client.put_instance(instance("ratings-v1-0", 41001, service="ratings", service_account="bookinfo-ratings"))
    other = Identity("cluster.local", "default", "bookinfo-ratings")
    refused = request(control, token, "default/reviews-v1-0", other)
    assert refused.status_code == 422 and "bookinfo-ratings" in refused.text
    assert request(control, token, "default/ratings-v1-0", other).status_code == 401
    mine = Identity("cluster.local", "default", "bookinfo-reviews")
    assert request(control, control.token, "default/reviews-v1-0", mine).status_code == 401
