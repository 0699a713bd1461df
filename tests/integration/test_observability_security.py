"""connection_security_policy and the principals per edge under STRICT,
PERMISSIVE and DISABLE, the same in the records, the Prometheus counters and
the topology; a caller without a sidecar shows as plaintext from `unknown`."""

from __future__ import annotations

import collections
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pandas as pd
import pytest
from prometheus_client.parser import text_string_to_metric_families

from meshkit.demo.apps import Call, Latency, WorkloadSpec
from meshkit.lab import Lab
from meshkit.observe import topology

SVC = "{}.default.svc.cluster.local"
SPIFFE = "spiffe://cluster.local/ns/default/sa/{}"
CHAIN = (
    WorkloadSpec(name="front-v1", service="front", version="v1", service_account="front", latency=Latency(1.0, 3.0),
                 calls=(Call("back", "/back", timeout_s=5.0),), paths=("/front",)),
    WorkloadSpec(name="back-v1", service="back", version="v1", service_account="back", latency=Latency(1.0, 3.0),
                 paths=("/back",)),
)  # fmt: skip
N = 20


def mode(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "security.istio.io/v1",
        "kind": "PeerAuthentication",
        "metadata": {"name": "default", "namespace": "default"},
        "spec": {"mtls": {"mode": name}},
    }


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    lab = Lab(home=tmp_path_factory.mktemp("sec")).up()
    try:
        lab.deploy(CHAIN)
        lab.inject("default")
        yield lab
    finally:
        lab.down()


def since(lab: Lab, t0: float) -> pd.DataFrame:
    records = lab.requests()
    return records[records["start"] >= t0]


def served_since(lab: Lab, t0: float) -> pd.DataFrame:
    records = since(lab, t0)
    return records[records["reporter"] == "destination"]


def counter_policies(lab: Lab) -> dict[tuple[str, str], set[str]]:
    """(source workload, destination service) -> connection_security_policy values with a nonzero count."""
    found: dict[tuple[str, str], set[str]] = collections.defaultdict(set)
    for url in lab._admin_urls():
        for family in text_string_to_metric_families(httpx.get(f"{url}/stats/prometheus", trust_env=False).text):
            for s in family.samples:
                if s.name == "meshkit_requests_total" and s.labels["reporter"] == "destination" and s.value > 0:
                    found[(s.labels["source_workload"], s.labels["destination_service"])].add(s.labels["connection_security_policy"])
    return dict(found)


@pytest.mark.parametrize(
    ("peer_mode", "policy"),
    [("STRICT", "mutual_tls"), ("PERMISSIVE", "mutual_tls"), ("DISABLE", "none")],
)
def test_every_edge_between_sidecars_reports_the_mode_in_force(lab: Lab, peer_mode: str, policy: str) -> None:
    lab.apply(mode(peer_mode))
    t0 = time.time()
    rows = lab.load("front", "/front", rate=40, requests=N)
    assert (rows["code"] == 200).all()
    served = served_since(lab, t0)
    edges_key = ["source_workload", "destination_service"]
    if policy == "none":
        # Plaintext: the destination cannot verify who called, so it reports unknown (a claimed
        # x-meshkit-peer is never identity); the caller's own sidecar names the edge.
        unverified = served.groupby(edges_key).size().to_dict()
        assert unverified == {("unknown", SVC.format("front")): N, ("unknown", SVC.format("back")): N}
        served = since(lab, t0)
        served = served[served["reporter"] == "source"]
    edges = served.groupby(edges_key)
    assert set(edges.groups) == {("curl", SVC.format("front")), ("front-v1", SVC.format("back"))}
    for (source, _service), group in edges:
        assert len(group) == N
        assert set(group["connection_security_policy"]) == {policy}
        expected_principal = SPIFFE.format("curl" if source == "curl" else "front") if policy == "mutual_tls" else ""
        assert set(group["source_principal"]) == {expected_principal}
    assert set(topology(since(lab, t0))["security"]) == {policy}
    # the counters carry the same label (cumulative: this mode's policy is among each edge's)
    counters = counter_policies(lab)
    reported = {("unknown", SVC.format("front")), ("unknown", SVC.format("back"))} if policy == "none" else set(edges.groups)
    assert all(policy in counters[edge] for edge in reported), counters


def test_a_caller_without_a_sidecar_is_plaintext_from_unknown_under_permissive(lab: Lab) -> None:
    lab.apply(mode("PERMISSIVE"))
    lab.uninject("curl")
    try:
        t0 = time.time()
        rows = lab.load("front", "/front", rate=40, requests=N)
        assert (rows["code"] == 200).all()
        served = served_since(lab, t0)
        entry = served[served["destination_service"] == SVC.format("front")]
        assert len(entry) == N and set(entry["source_workload"]) == {"unknown"}
        assert set(entry["connection_security_policy"]) == {"none"} and set(entry["source_principal"]) == {""}
        inner = served[served["destination_service"] == SVC.format("back")]
        assert set(inner["connection_security_policy"]) == {"mutual_tls"}
        table = topology(since(lab, t0)).set_index("source")
        assert table.loc["unknown", "security"] == "none" and table.loc["front-v1", "security"] == "mutual_tls"
    finally:
        lab.inject("curl")
