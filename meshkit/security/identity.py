"""Workload identities: SPIFFE IDs of the form spiffe://<trust-domain>/ns/<namespace>/sa/<service-account>.

An identity is what a workload certificate asserts (its one URI SAN) and what
AuthorizationPolicy principals name, so it is parsed strictly: text that two
programs could read differently must never become an identity. The rules are
the SPIFFE ID specification's
(https://github.com/spiffe/spiffe/blob/main/standards/SPIFFE-ID.md), plus the
path shape Istio gives Kubernetes workloads (ns/<namespace>/sa/<account>):

- scheme: exactly `spiffe`, lower case (SPIFFE-ID 2: "the scheme ... spiffe");
- trust domain: lower-case letters, digits, `.`, `-` and `_` only, so no
  userinfo, no port, no upper case; at most 255 bytes (SPIFFE-ID 2.1, 2.3);
- path segments: letters, digits, `.`, `-` and `_`; never empty, never `.`
  or `..`, no percent-encoding, no trailing `/` (SPIFFE-ID 2.2);
- no query and no fragment (SPIFFE-ID 2);
- at most 2048 bytes in all (SPIFFE-ID 2.3).

Any byte outside printable ASCII (CR, LF, NUL, DEL, space, anything
non-ASCII) is refused before anything else is looked at, so a forged
`.../ns/victim\\x00evil` can never be read as `victim` (HARDENING: headers
the mesh owns).

Istio writes principals without the scheme (`cluster.local/ns/default/sa/sleep`,
https://istio.io/latest/docs/reference/config/security/authorization-policy/#Source);
`Identity.principal` is that form.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from meshkit.security.errors import InvalidIdentity

# The mesh's trust domain unless a CA is made with another; Istio's default.
# Here, not in ca.py, so a sidecar can name it without loading `cryptography`.
DEFAULT_TRUST_DOMAIN = "cluster.local"
SCHEME = "spiffe://"
MAX_ID_BYTES = 2048
MAX_TRUST_DOMAIN_BYTES = 255

_PRINTABLE = re.compile(r"[\x21-\x7e]*")
_TRUST_DOMAIN = re.compile(r"[a-z0-9._-]+")
_SEGMENT = re.compile(r"[A-Za-z0-9._-]+")


@dataclass(frozen=True, slots=True)
class Identity:
    """One workload identity; constructing one checks every part, so an Identity is always valid."""

    trust_domain: str
    namespace: str
    service_account: str

    def __post_init__(self) -> None:
        trust_domain_problem = _trust_domain_problem(self.trust_domain)
        if trust_domain_problem:
            raise InvalidIdentity(trust_domain_problem)
        for what, segment in (("namespace", self.namespace), ("service account", self.service_account)):
            if problem := _segment_problem(segment):
                raise InvalidIdentity(f"{what} {problem}")
        if len(self.uri.encode()) > MAX_ID_BYTES:
            raise InvalidIdentity(f"a SPIFFE ID is at most {MAX_ID_BYTES} bytes")

    @property
    def uri(self) -> str:
        """The SPIFFE ID, as it stands in a certificate's URI SAN."""
        return f"{SCHEME}{self.trust_domain}/ns/{self.namespace}/sa/{self.service_account}"

    @property
    def principal(self) -> str:
        """The ID without its scheme, as Istio's AuthorizationPolicy writes principals."""
        return self.uri[len(SCHEME):]

    def __str__(self) -> str:
        return self.uri


def parse_spiffe_id(text: str) -> Identity:
    """The identity `text` names, or InvalidIdentity saying which rule it breaks."""
    if not isinstance(text, str):
        raise InvalidIdentity(f"a SPIFFE ID is a string, got {type(text).__name__}")
    if not _PRINTABLE.fullmatch(text):
        raise InvalidIdentity(f"{_show(text)} contains a control, space or non-ASCII character")
    if len(text) > MAX_ID_BYTES:
        raise InvalidIdentity(f"a SPIFFE ID is at most {MAX_ID_BYTES} bytes, got {len(text)}")
    if not text.startswith(SCHEME):
        raise InvalidIdentity(f"{_show(text)} does not start with {SCHEME!r} (lower case)")
    for char, what in (("%", "percent-encoding"), ("?", "a query"), ("#", "a fragment")):
        if char in text:
            raise InvalidIdentity(f"{_show(text)}: a SPIFFE ID has no {what}")
    trust_domain, slash, path = text[len(SCHEME):].partition("/")
    if problem := _trust_domain_problem(trust_domain):
        raise InvalidIdentity(f"{_show(text)}: {problem}")
    segments = path.split("/") if slash else []
    for segment in segments:
        if problem := _segment_problem(segment):
            raise InvalidIdentity(f"{_show(text)}: path segment {problem}")
    if len(segments) != 4 or segments[0] != "ns" or segments[2] != "sa":
        raise InvalidIdentity(f"{_show(text)}: a workload identity's path is /ns/<namespace>/sa/<service-account>")
    return Identity(trust_domain, segments[1], segments[3])


def check_trust_domain(name: str) -> str:
    """`name` when it is a valid trust domain (SPIFFE-ID 2.1), else InvalidIdentity."""
    if problem := _trust_domain_problem(name):
        raise InvalidIdentity(problem)
    return name


def _trust_domain_problem(name: object) -> str | None:
    if not isinstance(name, str) or not name:
        return "the trust domain is empty"
    if len(name) > MAX_TRUST_DOMAIN_BYTES:
        return f"the trust domain is longer than {MAX_TRUST_DOMAIN_BYTES} bytes"
    if not _TRUST_DOMAIN.fullmatch(name):
        return f"trust domain {_show(name)} may hold only lower-case letters, digits, '.', '-' and '_'"
    return None


def _segment_problem(segment: object) -> str | None:
    if not isinstance(segment, str) or not segment:
        return "is empty"
    if segment in (".", ".."):
        return f"{segment!r} is a dot segment"
    if not _SEGMENT.fullmatch(segment):
        return f"{_show(segment)} may hold only letters, digits, '.', '-' and '_'"
    return None


def _show(text: str) -> str:
    """`text` quoted with every unprintable character escaped, so a message cannot carry one."""
    return repr(text[:80]).encode("ascii", "backslashreplace").decode("ascii")
