"""`python -m meshkit.security.keygen SPIFFE-ID`: a new key and a CSR for that identity, as JSON on stdout.

A sidecar with a control plane needs a new key and CSR at start and at each
renewal, and only `cryptography` makes them: about 10 MB resident that the
sidecar would otherwise carry for its whole life to use for milliseconds at
a time. So the sidecar runs this module as a short-lived child
(meshkit.sidecar.identity.new_key_and_csr) and reads
`{"private_key": PEM, "csr": PEM}` from its standard output. The key goes
over the pipe, never to disk, and the child exits at once. Istio draws the
same line: its agent (pilot-agent) makes the key and the CSR, and Envoy,
the proxy, never links the code that does.

Exit status: 0 with the JSON, 2 (and a line on stderr) when the argument is
not one workload identity.
"""

from __future__ import annotations

import json
import sys

from meshkit.security.csr import build_csr, new_private_key, private_key_pem
from meshkit.security.errors import InvalidIdentity
from meshkit.security.identity import parse_spiffe_id


def new_key_and_csr(uri: str) -> dict[str, str]:
    """A fresh key and a CSR naming `uri` (InvalidIdentity when it is not a workload identity)."""
    identity = parse_spiffe_id(uri)
    key = new_private_key()
    return {"private_key": private_key_pem(key).decode("ascii"), "csr": build_csr(identity, key).decode("ascii")}


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m meshkit.security.keygen SPIFFE-ID", file=sys.stderr)
        return 2
    try:
        made = new_key_and_csr(args[0])
    except InvalidIdentity as exc:
        print(f"meshkit keygen: {exc}", file=sys.stderr)
        return 2
    sys.stdout.write(json.dumps(made))
    return 0


if __name__ == "__main__":
    sys.exit(main())
