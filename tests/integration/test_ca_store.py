"""The CA on disk (meshkit.security.ca_store): created once, kept private, reloaded whole."""

from __future__ import annotations

import os
from collections.abc import Callable
import stat
from datetime import timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from meshkit.security.ca import create_authority, rotate
from meshkit.security.ca_store import BUNDLE_FILE, CA_FILE, load, load_or_create, save
from meshkit.security.errors import CAStoreError
from tests.unit.test_security_samples import NOW, REVIEWS, issue_for


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_new_ca_is_created_once_with_its_key_readable_by_the_owner_only(tmp_path: Path) -> None:
    directory = tmp_path / "ca"
    ca = load_or_create(directory, NOW)
    assert mode(directory) == 0o700
    assert mode(directory / CA_FILE) == 0o600
    assert mode(directory / BUNDLE_FILE) == 0o600
    again = load_or_create(directory, NOW + timedelta(days=1))
    assert again.root == ca.root and again.trusted_roots == ca.trusted_roots
    assert again.key.private_numbers() == ca.key.private_numbers()


def test_a_reloaded_ca_takes_the_labs_trust_domain_and_leaf_lifetime(tmp_path: Path) -> None:
    load_or_create(tmp_path, NOW)
    ca = load(tmp_path, "example.org", timedelta(minutes=5))
    assert ca is not None and ca.trust_domain == "example.org" and ca.leaf_lifetime == timedelta(minutes=5)


def test_a_directory_without_a_ca_loads_as_none(tmp_path: Path) -> None:
    assert load(tmp_path / "empty") is None


def test_a_rotation_saved_to_disk_reloads_with_both_roots_the_new_one_signing(tmp_path: Path) -> None:
    ca = load_or_create(tmp_path, NOW)
    rotated = rotate(ca, NOW + timedelta(days=30))
    save(tmp_path, rotated)
    reloaded = load(tmp_path)
    assert reloaded is not None
    assert reloaded.root == rotated.root and reloaded.trusted_roots == (rotated.root, ca.root)
    _, leaf = issue_for(reloaded, REVIEWS)
    leaf.verify_directly_issued_by(rotated.root)


def test_a_key_file_others_can_read_is_refused(tmp_path: Path) -> None:
    load_or_create(tmp_path, NOW)
    os.chmod(tmp_path / CA_FILE, 0o644)
    with pytest.raises(CAStoreError, match="chmod 600"):
        load(tmp_path)


def test_a_key_beside_a_root_it_did_not_make_is_refused(tmp_path: Path) -> None:
    save(tmp_path, create_authority(NOW))
    other = create_authority(NOW)
    key_block = (tmp_path / CA_FILE).read_bytes().split(b"-----BEGIN CERTIFICATE-----")[0]
    (tmp_path / CA_FILE).write_bytes(key_block + other.root.public_bytes(serialization.Encoding.PEM))
    with pytest.raises(CAStoreError, match="do not belong together"):
        load(tmp_path)


def test_a_trust_bundle_that_lost_the_signing_root_is_refused(tmp_path: Path) -> None:
    save(tmp_path, create_authority(NOW))
    (tmp_path / BUNDLE_FILE).write_bytes(create_authority(NOW).trust_bundle_pem())
    with pytest.raises(CAStoreError, match="does not hold the signing root"):
        load(tmp_path)


@pytest.mark.parametrize(
    ("damage", "reason"),
    [
        (lambda d: (d / CA_FILE).write_bytes(b"garbage"), "no readable private key"),
        (lambda d: (d / BUNDLE_FILE).write_bytes(b"garbage"), "no readable certificate"),
        (lambda d: (d / BUNDLE_FILE).unlink(), "cannot read"),
    ],
    ids=["a_garbled_key_file", "a_garbled_bundle", "a_missing_bundle"],
)
def test_a_damaged_ca_directory_is_refused_with_the_file_it_concerns(
    tmp_path: Path, damage: Callable[[Path], object], reason: str
) -> None:
    save(tmp_path, create_authority(NOW))
    damage(tmp_path)
    with pytest.raises(CAStoreError, match=reason):
        load(tmp_path)


def test_an_unwritable_directory_is_reported_as_a_ca_store_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(CAStoreError, match="cannot write"):
        save(blocker / "ca", create_authority(NOW))
