"""lab.security() and lab.certificates() as pure functions of the sidecars' records and /certs pages."""

from __future__ import annotations

import pandas as pd

from meshkit.security_report import certificates_frame, dry_run_frame, mode_word, security_edges

PP = "spiffe://cluster.local/ns/default/sa/bookinfo-productpage"
REVIEWS = "spiffe://cluster.local/ns/default/sa/bookinfo-reviews"


def rec(reporter: str, source: str, destination: str, security: str, src: str = "", dst: str = "", code: int = 200,
        flags: str = "-", workload: str = "reviews-v1", namespace: str | None = "default",
        dry_run: str | None = None) -> dict[str, object]:
    return {"reporter": reporter, "source_workload": source, "destination_service": destination, "destination_workload": workload,
            "destination_namespace": namespace, "connection_security_policy": security, "source_principal": src,
            "destination_principal": dst, "code": code, "flags": flags, "dry_run": dry_run}  # fmt: skip


def test_the_destinations_records_are_used_where_it_has_a_sidecar_and_the_callers_elsewhere() -> None:
    frame = pd.DataFrame([
        rec("source", "productpage-v1", "reviews.default.svc.cluster.local", "mutual_tls", PP, REVIEWS),
        rec("destination", "productpage-v1", "reviews.default.svc.cluster.local", "mutual_tls", PP, REVIEWS),
        rec("destination", "productpage-v1", "reviews.default.svc.cluster.local", "mutual_tls", PP, REVIEWS, code=403, flags="RBAC"),
        rec("destination", "unknown", "reviews.default.svc.cluster.local", "none"),
        rec("source", "productpage-v1", "legacy.legacy.svc.cluster.local", "none", workload="legacy-v1", namespace="legacy"),
    ])  # fmt: skip
    modes = {("default", "reviews-v1"): "STRICT (istio-system/default)"}
    table = security_edges(frame, modes)
    rows = {(r.source, r.destination, r.security): r for r in table.itertuples()}
    mtls = rows[("productpage-v1", "reviews.default.svc.cluster.local", "mTLS")]
    assert (mtls.peer_identity, mtls.requests, mtls.denied, mtls.reporter, mtls.mode) == (PP, 2, 1, "destination", "STRICT (istio-system/default)")
    plain = rows[("unknown", "reviews.default.svc.cluster.local", "plaintext")]
    assert (plain.peer_identity, plain.requests) == ("-", 1)
    legacy = rows[("productpage-v1", "legacy.legacy.svc.cluster.local", "plaintext")]
    assert (legacy.reporter, legacy.mode) == ("source", "no sidecar")


def test_no_records_is_an_empty_table_with_the_columns() -> None:
    assert list(security_edges(pd.DataFrame(), {}).columns) == [
        "source", "destination", "security", "peer_identity", "mode", "requests", "denied", "would_deny", "dry_run", "reporter"]
    assert list(dry_run_frame(pd.DataFrame()).columns) == ["destination", "policy", "would_deny", "would_allow"]


DENY_CURL = "deny: shadow denied, matched policy ns[default]-policy[deny-curl]-rule[0]"
DENY_NONE = "deny: shadow allowed, matched policy none"
ALLOW_NONE = "allow: shadow denied, matched policy none"
ALLOW_PP = "allow: shadow allowed, matched policy ns[default]-policy[pp-only]-rule[1]"
PAGE = "productpage.default.svc.cluster.local"


def test_each_edge_says_which_dry_run_policy_would_deny_how_many_requests() -> None:
    frame = pd.DataFrame(
        [rec("destination", "curl", PAGE, "mutual_tls", dry_run=f"{DENY_CURL}; {ALLOW_NONE}") for _ in range(12)]
        + [rec("destination", "curl", PAGE, "mutual_tls", dry_run=DENY_CURL)]
        + [rec("destination", "reviews-v1", PAGE, "mutual_tls", dry_run=f"{DENY_NONE}; {ALLOW_PP}") for _ in range(3)]
        + [rec("source", "curl", PAGE, "mutual_tls", dry_run=None), rec("destination", "web", PAGE, "none")]
    )  # fmt: skip
    rows = {r.source: r for r in security_edges(frame, {}).itertuples()}
    assert (rows["curl"].requests, rows["curl"].denied, rows["curl"].would_deny) == (13, 0, 13)
    assert rows["curl"].dry_run == "ALLOW dry-run policies, none matching would deny 12 requests; default/deny-curl would deny 13 requests"
    assert (rows["reviews-v1"].would_deny, rows["reviews-v1"].dry_run) == (0, "")
    assert (rows["web"].would_deny, rows["web"].dry_run) == (0, "")
    policies = {r.policy: (r.would_deny, r.would_allow) for r in dry_run_frame(frame).itertuples()}
    assert policies == {"default/deny-curl": (13, 0), "ALLOW dry-run policies, none matching": (12, 0),
                        "DENY dry-run policies, none matching": (0, 3), "default/pp-only": (0, 3)}


def test_records_without_a_dry_run_column_would_deny_nothing() -> None:
    frame = pd.DataFrame([rec("destination", "curl", PAGE, "mutual_tls")]).drop(columns=["dry_run"])
    (row,) = security_edges(frame, {}).itertuples()
    assert (row.would_deny, row.dry_run) == (0, "") and dry_run_frame(frame).empty


def test_mode_words_and_certificate_rows() -> None:
    assert mode_word({"inbound_mode": {"mode": "PERMISSIVE", "policy": None}}) == "PERMISSIVE (default)"
    assert mode_word(None) == "unknown"
    doc = {"identity": REVIEWS, "rotations": 3, "certificate": {"serial": "ab", "not_before": 940.0, "not_after": 1060.0, "renew_at": 1030.0}}
    table = certificates_frame([("default", "reviews-v1", "reviews-v1-0", doc), ("default", "ratings-v1", "ratings-v1-0", None)], now=1000.0)
    row = table.set_index("instance").loc["reviews-v1-0"]
    assert (row.identity, row.serial, row.rotations, bool(row.expired)) == (REVIEWS, "ab", 3, False)
    assert row.time_to_renewal == pd.Timedelta(seconds=30) and row.time_to_expiry == pd.Timedelta(seconds=60)
    assert pd.isna(table.set_index("instance").loc["ratings-v1-0", "serial"])
