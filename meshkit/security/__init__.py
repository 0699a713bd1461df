"""The mesh's identities and certificates: what mTLS between sidecars rests on.

    identity.py     Identity and parse_spiffe_id: spiffe://<td>/ns/<ns>/sa/<sa>, strictly
    csr.py          the sidecar's key and CSR; the CA's check that a CSR asks for one identity
    keygen.py       `python -m meshkit.security.keygen`: the child that makes a sidecar's key and CSR
    ca.py           CertificateAuthority: root, leaf issuance, root rotation (pure)
    ca_store.py     the CA on disk: load or create, 0600 key file
    cert_fields.py  the fields meshkit reads from a certificate, with the standard library
    peer_cert.py    peer_identity: the identity in a verified peer certificate, or a refusal
    tls.py          ssl contexts for mutual TLS 1.3 with strict X.509 checks
    renewal.py      renewal_time: half-life plus or minus jitter; whether a root rotation
                    means renewing now
    errors.py       SecurityError and its subclasses

Only ca.py, ca_store.py, csr.py and keygen.py import `cryptography` (about
10 MB resident): the control plane's CA, and the short-lived child that
makes a sidecar's key and CSR. The rest is what sidecars import.

docs/security.md explains the choices and where they come from.
"""
