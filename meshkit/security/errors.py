"""The errors of the security package, one subtree of meshkit's error tree.

    MeshkitError                 (meshkit/errors.py)
    └── SecurityError
        ├── InvalidIdentity      a string that is not a mesh SPIFFE ID
        ├── RequestRefused       a certificate signing request the CA will not sign
        ├── PeerRefused          a peer certificate that is not a mesh workload certificate
        └── CAStoreError         the CA's files are missing a part, damaged or too readable

Each message is one line a learner can act on: what was refused and why.
"""

from __future__ import annotations

from meshkit.errors import MeshkitError


class SecurityError(MeshkitError):
    """Base of the identity, CA and peer-certificate errors."""


class InvalidIdentity(SecurityError, ValueError):
    """The text is not `spiffe://<trust-domain>/ns/<namespace>/sa/<service-account>`."""


class RequestRefused(SecurityError):
    """The CA refuses to sign: the CSR asks for something other than the caller's one identity."""


class PeerRefused(SecurityError):
    """The peer's certificate verified, but it is not a workload certificate of this mesh."""


class CAStoreError(SecurityError):
    """The CA directory cannot be read or written, or what is in it does not fit together."""
