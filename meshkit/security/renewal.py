"""When a sidecar asks for its next certificate.

Istio's agent renews a workload certificate once half of its lifetime has
passed (SECRET_GRACE_PERIOD_RATIO = 0.5) and moves that point by a random
±1% of the lifetime (SECRET_GRACE_PERIOD_RATIO_JITTER = 0.01, added in Istio
1.24 so that proxies started together do not all hit the CA at once,
istio/istio#52102). meshkit uses the same numbers: a 24 h certificate is
renewed 12 h ± 14.4 min after it arrived, a one-minute lab certificate after
30 s ± 0.6 s. Renewing at half-life leaves the other half to retry in while
the control plane is away; linkerd2-proxy renews at 70% for the same reason.

The lifetime is measured from when the sidecar received the certificate, not
from its notBefore: the CA backdates notBefore by a minute for clock skew,
and with one-minute certificates counting from notBefore would renew at once.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from meshkit.security.cert_fields import read_tbs

if TYPE_CHECKING:
    from cryptography import x509

RENEW_AT_FRACTION = 0.5
RENEW_JITTER_FRACTION = 0.01


def renewal_time(
    received_at: datetime,
    not_after: datetime,
    rng: random.Random,
    fraction: float = RENEW_AT_FRACTION,
    jitter: float = RENEW_JITTER_FRACTION,
) -> datetime:
    """The moment to request a new certificate: `fraction` ± `jitter` of the way from receipt to expiry.

    `rng` is injected so a test (or a replayed lab) gets the same schedule from
    the same seed. A certificate already expired when received is renewed at once.
    """
    if jitter < 0 or fraction - jitter <= 0.0 or fraction + jitter >= 1.0:
        raise ValueError(f"renewal fraction {fraction} ± {jitter} must stay strictly between 0 and 1")
    lifetime = not_after - received_at
    if lifetime <= timedelta(0):
        return received_at
    share = fraction + rng.uniform(-jitter, jitter)
    return received_at + lifetime * share


def key_id(certificate: x509.Certificate) -> str | None:
    """A certificate's subject key identifier in hex: how a root is named in the lab's tables.

    Read from its DER by meshkit.security.cert_fields, as a sidecar reads its
    own bundle, so this module does not load `cryptography` into sidecars.
    """
    return read_tbs(certificate.tbs_certificate_bytes).subject_key_id


def issuer_key_id(leaf: x509.Certificate) -> str | None:
    """The key identifier of the root that signed `leaf` (its authority key identifier), in hex."""
    return read_tbs(leaf.tbs_certificate_bytes).authority_key_id


def needs_reissue(leaf: x509.Certificate, roots: Sequence[x509.Certificate]) -> bool:
    """Whether a root rotation has started that `leaf` predates (`predates_signing_root` over their key ids)."""
    return predates_signing_root(issuer_key_id(leaf), [key_id(root) for root in roots])


def predates_signing_root(issuer: str | None, roots: Sequence[str | None]) -> bool:
    """Whether a leaf signed by the root with key id `issuer` must be replaced now, under a bundle of `roots`.

    The trust bundle lists the signing root first (CertificateAuthority.trusted_roots).
    A leaf signed by another root of the bundle still verifies, but only as
    long as the old root is kept: replacing it at once, not at half-life, is
    what lets the rotation finish (Istio's plugged-in CA rotation asks the
    same of every workload before the old root is removed).
    """
    if not roots:
        return False
    signing = roots[0]
    return signing is not None and issuer is not None and issuer != signing
