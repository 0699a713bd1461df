"""The control plane's CA over HTTP: a node's token buys a certificate for its own identity only."""

from __future__ import annotations

import httpx
from cryptography import x509

from meshkit.security.csr import build_csr, new_private_key
from meshkit.security.identity import Identity
from meshkit.security.renewal import issuer_key_id, key_id
from tests.integration.control_fixtures import ControlProcess, control, instance, start  # noqa: F401


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


def issuer(answer: httpx.Response) -> str | None:
    return issuer_key_id(x509.load_pem_x509_certificates(answer.json()["certificate_chain"].encode())[0])


def test_a_root_rotation_trusts_both_roots_until_every_sidecar_renewed_then_only_the_new_one(control: ControlProcess) -> None:
    reviews = Identity("cluster.local", "default", "bookinfo-reviews")
    ratings = Identity("cluster.local", "default", "bookinfo-ratings")
    with control.client() as client:
        reviews_token = client.put_instance(instance("reviews-v1-0", 41000, service_account="bookinfo-reviews"))["node_token"]
        ratings_token = client.put_instance(instance("ratings-v1-0", 41001, service="ratings", service_account="bookinfo-ratings"))["node_token"]
        client.put_instance(instance("plain-v1-0", 41002, service="plain", sidecar=False))  # no sidecar: no certificate to wait for
        old = request(control, reviews_token, "default/reviews-v1-0", reviews)
        request(control, ratings_token, "default/ratings-v1-0", ratings)
        before = client.ca()
        version_before = int(client.healthz()["version"])
        assert before["previous_roots"] == [] and before["pending"] == []
        assert set(before["nodes"]) == {"default/reviews-v1-0", "default/ratings-v1-0"}

        started = client.rotate_root()
        new_root, old_root = started["signing_root"]["key_id"], before["signing_root"]["key_id"]
        assert new_root != old_root and [r["key_id"] for r in started["previous_roots"]] == [old_root]
        assert started["pending"] == ["default/ratings-v1-0", "default/reviews-v1-0"]
        # The rotation reaches sidecars as a new version whose bundle holds the new root first, then the old.
        snapshot = client.snapshot("default", "reviews-v1-0")
        assert started["version"] == version_before + 1
        roots = x509.load_pem_x509_certificates(snapshot["trust_bundle"].encode())
        assert [key_id(r) for r in roots] == [new_root, old_root]
        assert issuer(old) == old_root

        renewed = request(control, reviews_token, "default/reviews-v1-0", reviews)
        assert renewed.status_code == 200 and issuer(renewed) == new_root
        with control.http(control.token) as http:
            refused = http.post("/v1/ca/retire")
        assert refused.status_code == 409 and "default/ratings-v1-0" in refused.json()["error"]
        assert "default/reviews-v1-0" not in refused.json()["error"]
        assert len(x509.load_pem_x509_certificates(client.snapshot("default", "reviews-v1-0")["trust_bundle"].encode())) == 2

        request(control, ratings_token, "default/ratings-v1-0", ratings)
        retired = client.retire_roots()
        assert retired["changed"] and retired["previous_roots"] == [] and retired["pending"] == []
        assert retired["version"] == started["version"] + 1
        roots = x509.load_pem_x509_certificates(client.snapshot("default", "reviews-v1-0")["trust_bundle"].encode())
        assert [key_id(r) for r in roots] == [new_root]
        again = client.retire_roots()
        assert not again["changed"] and again["version"] == retired["version"]
    # The rotated CA is what a restarted control plane signs with.
    control.stop()
    restarted = start(control.home)
    try:
        with restarted.client() as client:
            state = client.ca()
            assert state["signing_root"]["key_id"] == new_root and state["previous_roots"] == []
            # A restarted control plane has issued nothing yet: it cannot tell who renewed, so it waits.
            assert state["pending"] == ["default/ratings-v1-0", "default/reviews-v1-0"]
    finally:
        restarted.stop()

