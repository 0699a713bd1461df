"""The sidecar's certificate holder: only its own identity and key, bundles from the snapshot, /certs."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from meshkit.errors import ConfigError
from meshkit.security.ca import create_authority
from meshkit.security.errors import PeerRefused
from meshkit.security.identity import Identity
from meshkit.sidecar.identity import WorkloadIdentity
from tests.unit.test_security_samples import credentials

NOW = datetime.now(timezone.utc)
ME = Identity("cluster.local", "default", "bookinfo-reviews")


def holder() -> WorkloadIdentity:
    return WorkloadIdentity(ME, required=True)


def test_a_certificate_for_this_identity_is_installed_and_described() -> None:
    ca = create_authority(NOW - timedelta(hours=1))
    chain, key, bundle = credentials(ca, ME, NOW)
    h = holder()
    assert h.server_context is None and h.client_context is None
    creds = h.install(chain, key, bundle, NOW, NOW + timedelta(hours=12))
    assert h.credentials is creds and h.server_context is creds.server and h.client_context is creds.client
    doc = h.describe()
    assert doc["identity"] == ME.uri and doc["rotations"] == 0 and doc["certificate"]["serial"] == creds.serial
    h.install(*credentials(ca, ME, NOW), NOW, None)
    assert h.describe()["rotations"] == 1


def test_a_certificate_for_another_identity_or_key_is_refused() -> None:
    ca = create_authority(NOW - timedelta(hours=1))
    other_chain, other_key, bundle = credentials(ca, Identity("cluster.local", "default", "ratings"), NOW)
    with pytest.raises(PeerRefused, match="ratings"):
        holder().install(other_chain, other_key, bundle, NOW, None)
    chain, _, _ = credentials(ca, ME, NOW)
    with pytest.raises(PeerRefused, match="public key"):
        holder().install(chain, other_key, bundle, NOW, None)


def test_the_snapshots_bundle_replaces_the_one_from_the_ca_and_rebuilds_the_contexts() -> None:
    ca, rotated = create_authority(NOW - timedelta(hours=1)), create_authority(NOW - timedelta(hours=1))
    h = holder()
    h.install(*credentials(ca, ME, NOW), NOW, None)
    before = h.credentials
    both = (ca.trust_bundle_pem() + rotated.trust_bundle_pem()).decode()
    h.check_bundle(both)
    h.use_bundle(both)
    assert h.credentials is not before and h.credentials.serial == before.serial
    assert h.describe()["certificate"]["trusted_roots"] == 2
    h.use_bundle(both)  # unchanged: nothing rebuilt
    assert h.describe()["certificate"]["trusted_roots"] == 2
    with pytest.raises(ConfigError):
        h.check_bundle("-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n")
