"""Replacing the mesh's root CA in a running lab under STRICT mTLS, with traffic flowing:
no request fails, every sidecar ends with a certificate from the new root and
trusts only it, and a certificate from the old root is refused afterwards."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from meshkit.lab import CLIENT, Lab
from meshkit.security import ca_store
from tests.integration.mtls_fixtures import MeshCA, get, tls_exchange

MESH_STRICT = """
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: default, namespace: istio-system}
spec: {mtls: {mode: STRICT}}
"""


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    lab = Lab(home=tmp_path_factory.mktemp("rootrotation")).up()
    try:
        lab.deploy("bookinfo", inject=True)
        lab.inject(CLIENT.name)  # under mesh-wide STRICT the load generator's calls need a sidecar too
        lab.apply(MESH_STRICT)
        yield lab
    finally:
        lab.down()


def reviews_inbound(lab: Lab) -> int:
    views = lab._backend.instances()
    return next(v.port for v in views if v.workload == "reviews-v1")


def test_rotating_the_root_under_load_fails_no_request_and_leaves_only_the_new_root(lab: Lab, tmp_path: Path) -> None:
    old = MeshCA(tmp_path, "old", ca=ca_store.load(lab.state_dir / "ca"))
    before = lab.certificates().set_index("instance")
    assert set(before.trusted_roots) == {1} and before.root.nunique() == 1
    old_root = before.root.iloc[0]
    with ThreadPoolExecutor(1) as pool:
        running = pool.submit(lab.load, "productpage", "/productpage", rate=25, duration=4.0)
        time.sleep(1.0)
        after = lab.rotate_root().set_index("instance")
        frame = running.result()
    assert len(frame) >= 90 and (frame.code == 200).all(), Counter(frame.code)
    # Every sidecar holds a new certificate from the new root and trusts that root alone.
    assert set(after.index) == set(before.index)
    assert (after.serial != before.serial.reindex(after.index)).all()
    assert after.root.nunique() == 1 and after.root.iloc[0] != old_root
    assert set(after.trusted_roots) == {1}
    assert (after.rotations >= 1).all()
    # Calls between sidecars are still mutual TLS, now on the new certificates.
    assert lab.call("productpage", "/productpage").status == 200
    edges = lab.security()
    reviews = edges[edges.destination.str.startswith("reviews")]
    assert len(reviews) > 0 and set(reviews.security) == {"mTLS"}
    # The old root is gone from the sidecars' trust: its certificates are refused; the new root's accepted.
    port = reviews_inbound(lab)
    responses, _, _, error = tls_exchange(port, old.context("default", "bookinfo-productpage"), get("/reviews/0", host="reviews"))
    assert responses == [] and error is not None
    new = MeshCA(tmp_path, "new", ca=ca_store.load(lab.state_dir / "ca"))
    responses, _, _, error = tls_exchange(port, new.context("default", "bookinfo-productpage"), get("/reviews/0", host="reviews"))
    assert error is None and responses[0].status == 200
