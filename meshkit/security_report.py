"""What the lab shows about security: each observed edge's protection, each workload's certificate.

Two tables, each a pure function of what the sidecars report, so they can
be tested without a mesh:

- `security_edges(requests, modes)`: one row per observed (source,
  destination, security, peer identity), from the request records the
  sidecars keep (`lab.requests()`, or each sidecar's /requests), with the
  destination's effective PeerAuthentication mode beside it, the requests
  an AuthorizationPolicy denied and the ones a dry-run policy would have
  denied ("default/deny-curl would deny 12 requests"). As for Kiali's
  edges, the destination's sidecar is the better witness (it saw how the
  connection arrived and verified the caller), so its records are used
  where it has any; the caller's stand in for destinations without sidecar.
- `dry_run_frame(requests)`: one row per dry-run policy and destination,
  what it would have decided: would deny, would allow.
- `certificates_frame(docs)`: one row per sidecar from its /certs page,
  like `istioctl proxy-config secret`.

`fetch_json` is the one piece of I/O: GET one admin page from many sidecars.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping, Sequence
from typing import Any

import httpx
import pandas as pd

from meshkit.core import dry_run

SECURITY_COLUMNS = [
    "source", "destination", "security", "peer_identity", "mode", "requests", "denied", "would_deny", "dry_run", "reporter",
]  # fmt: skip
DRY_RUN_COLUMNS = ["destination", "policy", "would_deny", "would_allow"]
CERTIFICATE_COLUMNS = [
    "workload", "namespace", "instance", "identity", "serial", "not_before", "not_after",
    "time_to_renewal", "time_to_expiry", "rotations", "expired", "root", "trusted_roots",
]  # fmt: skip
NO_SIDECAR = "no sidecar"
UNKNOWN = "unknown"


async def fetch_json(urls: Sequence[str], path: str, token: str | None = None, timeout_s: float = 5.0) -> list[Any]:
    """The JSON each admin URL answers for `path`, in order; None for a sidecar that did not answer.

    `token` is the lab's admin token: every page but /ready and
    /stats/prometheus refuses a request without it (meshkit.sidecar.admin).
    """
    headers = {} if token is None else {"authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(timeout=timeout_s, trust_env=False, headers=headers) as http:
        answers = await asyncio.gather(*(http.get(f"{url}{path}") for url in urls), return_exceptions=True)
    found: list[Any] = []
    for answer in answers:
        try:
            found.append(answer.json() if isinstance(answer, httpx.Response) and answer.status_code == 200 else None)
        except ValueError:
            found.append(None)
    return found


def _word(policy: Any) -> str:
    return "mTLS" if policy == "mutual_tls" else "plaintext"


def security_edges(requests: pd.DataFrame, modes: Mapping[tuple[str, str], str]) -> pd.DataFrame:
    """One row per observed edge and way of securing it.

    `requests` has the columns of `lab.requests()` (reporter, source_workload,
    destination_service, destination_workload, destination_namespace,
    connection_security_policy, source_principal, destination_principal,
    code, flags). `modes` maps (namespace, workload) of every sidecar to its
    effective mode ("STRICT (istio-system/default)"); a destination workload
    not in it has no sidecar. `peer_identity` is the caller's SPIFFE ID as
    the destination verified it (or, reported by the caller, the identity
    the destination proved); "-" for plaintext.
    """
    if requests.empty:
        return pd.DataFrame(columns=SECURITY_COLUMNS)
    frame = requests.fillna({"source_principal": "", "destination_principal": "", "flags": ""})
    if "dry_run" not in frame.columns:
        frame = frame.assign(dry_run=None)
    witnessed = set(zip(frame.loc[frame["reporter"] == "destination", "source_workload"],
                        frame.loc[frame["reporter"] == "destination", "destination_service"]))  # fmt: skip
    rows: dict[tuple[str, str, str, str, str], dict[str, Any]] = {}
    for record in frame.itertuples(index=False):
        reporter = record.reporter
        if reporter == "source" and (record.source_workload, record.destination_service) in witnessed:
            continue
        secured = record.connection_security_policy == "mutual_tls"
        if secured:
            peer = record.source_principal if reporter == "destination" else record.destination_principal
        else:
            peer = "-"
        key = (record.source_workload, record.destination_service, _word(record.connection_security_policy), peer or UNKNOWN, reporter)
        row = rows.get(key)
        if row is None:
            row = rows[key] = {
                "source": key[0], "destination": key[1], "security": key[2], "peer_identity": key[3],
                "workloads": set(), "requests": 0, "denied": 0, "would_deny": 0, "policies": {}, "reporter": reporter,
            }  # fmt: skip
        row["requests"] += 1
        row["denied"] += int(record.code == 403 and "RBAC" in str(record.flags))
        verdicts = dry_run.parse(record.dry_run)
        row["would_deny"] += int(dry_run.would_deny(verdicts))
        for policy in {dry_run.deciding_policy(v) for v in verdicts if not v.allowed}:
            row["policies"][policy] = row["policies"].get(policy, 0) + 1
        row["workloads"].add((_namespace(record), str(record.destination_workload)))
    out = []
    for row in rows.values():
        seen = sorted({modes.get(w, NO_SIDECAR) for w in row.pop("workloads") if w[1] != UNKNOWN}) or [UNKNOWN]
        out.append({**row, "mode": ", ".join(seen), "dry_run": would_deny_text(row.pop("policies"))})
    table = pd.DataFrame(out, columns=SECURITY_COLUMNS)
    return table.sort_values(["source", "destination", "security"], ignore_index=True)


def would_deny_text(policies: Mapping[str, int]) -> str:
    """ "default/deny-curl would deny 12 requests", one clause per dry-run policy; "" when none would deny."""
    return "; ".join(
        f"{policy} would deny {count} request{'' if count == 1 else 's'}" for policy, count in sorted(policies.items())
    )


def dry_run_frame(requests: pd.DataFrame) -> pd.DataFrame:
    """What each dry-run AuthorizationPolicy would have decided, per destination service: one row
    per (destination, policy) with the requests it would deny and would allow.

    Read from the destination's records (`requests` as for `security_edges`,
    its `dry_run` column the access log's field). A DENY dry-run policy would
    deny the requests it matched; an ALLOW dry-run policy would allow those it
    matched; what no rule of an action's dry-run policies matched is counted
    under "ALLOW (or DENY) dry-run policies, none matching", as no single
    policy decided it."""
    if requests.empty or "dry_run" not in requests.columns:
        return pd.DataFrame(columns=DRY_RUN_COLUMNS)
    counts: dict[tuple[str, str], list[int]] = {}
    for record in requests[requests["reporter"] == "destination"].itertuples(index=False):
        for verdict in dry_run.parse(record.dry_run):
            tally = counts.setdefault((str(record.destination_service), dry_run.deciding_policy(verdict)), [0, 0])
            tally[0 if not verdict.allowed else 1] += 1
    rows = [{"destination": d, "policy": p, "would_deny": c[0], "would_allow": c[1]} for (d, p), c in counts.items()]
    return pd.DataFrame(rows, columns=DRY_RUN_COLUMNS).sort_values(["destination", "policy"], ignore_index=True)


def _namespace(record: Any) -> str:
    """The destination workload's namespace: the record's, else the service host's second label."""
    namespace = getattr(record, "destination_namespace", None)
    if isinstance(namespace, str) and namespace and namespace != UNKNOWN:
        return namespace
    parts = str(record.destination_service).split(".")
    return parts[1] if len(parts) > 1 else UNKNOWN


def mode_word(doc: Mapping[str, Any] | None) -> str:
    """A sidecar's effective mode as /certs reports it: `STRICT (istio-system/default)`, `PERMISSIVE (default)`."""
    mode = (doc or {}).get("inbound_mode")
    if not mode:
        return UNKNOWN
    return f"{mode['mode']} ({mode.get('policy') or 'default'})"


def certificates_frame(sidecars: Sequence[tuple[str, str, str, Mapping[str, Any] | None]], now: float | None = None) -> pd.DataFrame:
    """One row per sidecar: (namespace, workload, instance, its /certs document or None)."""
    now = time.time() if now is None else now
    rows = []
    for namespace, workload, instance, doc in sidecars:
        doc = doc or {}
        cert = doc.get("certificate") or {}
        renew_at = cert.get("renew_at")
        not_after = cert.get("not_after")
        rows.append(
            {
                "workload": workload,
                "namespace": namespace,
                "instance": instance,
                "identity": doc.get("identity"),
                "serial": cert.get("serial"),
                "not_before": pd.Timestamp(cert["not_before"], unit="s", tz="UTC") if cert.get("not_before") else pd.NaT,
                "not_after": pd.Timestamp(not_after, unit="s", tz="UTC") if not_after else pd.NaT,
                "time_to_renewal": pd.Timedelta(seconds=renew_at - now) if renew_at else pd.NaT,
                "time_to_expiry": pd.Timedelta(seconds=not_after - now) if not_after else pd.NaT,
                "rotations": int(doc.get("rotations", 0)),
                "expired": bool(not_after and not_after <= now),
                # The signing root's key id (first 8 hex digits, as `openssl x509` users compare them)
                # and how many roots the sidecar trusts: 2 while a root rotation is under way.
                "root": str(cert["root"])[:8] if cert.get("root") else None,
                "trusted_roots": int(cert.get("trusted_roots") or 0),
            }
        )
    table = pd.DataFrame(rows, columns=CERTIFICATE_COLUMNS)
    return table.sort_values(["namespace", "workload", "instance"], ignore_index=True)
