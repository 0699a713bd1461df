"""lab.security() and lab.certificates() as pure functions of the sidecars' records and /certs pages."""

from __future__ import annotations

import pandas as pd

from meshkit.security_report import certificates_frame, mode_word, security_edges

PP = "spiffe://cluster.local/ns/default/sa/bookinfo-productpage"
REVIEWS = "spiffe://cluster.local/ns/default/sa/bookinfo-reviews"


def rec(reporter: str, source: str, destination: str, security: str, src: str = "", dst: str = "", code: int = 200,
        flags: str = "-", workload: str = "reviews-v1", namespace: str | None = "default") -> dict[str, object]:
    return {"reporter": reporter, "source_workload": source, "destination_service": destination, "destination_workload": workload,
            "destination_namespace": namespace, "connection_security_policy": security, "source_principal": src,
            "destination_principal": dst, "code": code, "flags": flags}  # fmt: skip


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
    assert list(security_edges(pd.DataFrame(), {}).columns) == ["source", "destination", "security", "peer_identity", "mode", "requests", "denied", "reporter"]


def test_mode_words_and_certificate_rows() -> None:
    assert mode_word({"inbound_mode": {"mode": "PERMISSIVE", "policy": None}}) == "PERMISSIVE (default)"
    assert mode_word(None) == "unknown"
    doc = {"identity": REVIEWS, "rotations": 3, "certificate": {"serial": "ab", "not_before": 940.0, "not_after": 1060.0, "renew_at": 1030.0}}
    table = certificates_frame([("default", "reviews-v1", "reviews-v1-0", doc), ("default", "ratings-v1", "ratings-v1-0", None)], now=1000.0)
    row = table.set_index("instance").loc["reviews-v1-0"]
    assert (row.identity, row.serial, row.rotations, bool(row.expired)) == (REVIEWS, "ab", 3, False)
    assert row.time_to_renewal == pd.Timedelta(seconds=30) and row.time_to_expiry == pd.Timedelta(seconds=60)
    assert pd.isna(table.set_index("instance").loc["ratings-v1-0", "serial"])
