"""Folding the sidecars' request counters into edges."""

from __future__ import annotations

import math

from meshkit.telemetry import Sample, edges, parse_requests_total, security_word


def sample(reporter: str, source: str, dest: str, code: str, value: float, security: str = "none") -> Sample:
    return Sample(
        {
            "reporter": reporter,
            "source_workload": source,
            "destination_service": dest,
            "response_code": code,
            "connection_security_policy": security,
        },
        value,
    )


def test_the_destination_reporter_wins_where_both_saw_the_edge() -> None:
    frame = edges(
        [
            sample("source", "productpage-v1", "reviews.default.svc.cluster.local", "200", 7),
            sample("destination", "productpage-v1", "reviews.default.svc.cluster.local", "200", 9),
            sample("destination", "productpage-v1", "reviews.default.svc.cluster.local", "503", 1),
        ]
    )
    assert len(frame) == 1
    row = frame.iloc[0]
    assert (row.requests, row.reporter) == (10, "destination")
    assert math.isclose(row.success_rate, 0.9)


def test_the_source_reporter_stands_in_for_destinations_without_a_sidecar() -> None:
    frame = edges([sample("source", "curl", "productpage.default.svc.cluster.local", "200", 4)])
    assert list(frame.reporter) == ["source"]
    assert list(frame.requests) == [4]


def test_mixed_security_on_one_edge_is_called_mixed() -> None:
    frame = edges(
        [
            sample("destination", "a", "b", "200", 1, "mutual_tls"),
            sample("destination", "a", "b", "200", 1, "none"),
        ]
    )
    assert list(frame.security) == ["mixed"]
    assert security_word({"mutual_tls"}) == "mutual_tls"
    assert security_word(set()) == "unknown"


def test_prometheus_text_is_parsed_into_request_samples() -> None:
    text = (
        "# TYPE meshkit_requests_total counter\n"
        'meshkit_requests_total{reporter="destination",source_workload="curl",destination_service="x",response_code="200"} 3\n'
        "# TYPE meshkit_sidecar_config_version gauge\n"
        "meshkit_sidecar_config_version 4\n"
    )
    samples = parse_requests_total(text)
    assert [(s.labels["source_workload"], s.value) for s in samples] == [("curl", 3.0)]


def test_no_samples_give_an_empty_table_with_the_columns() -> None:
    frame = edges([])
    assert frame.empty and "security" in frame.columns
