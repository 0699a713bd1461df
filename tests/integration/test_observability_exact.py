"""Exact to the request: N requests with a known mix of codes through a chain of
real processes, and every counter, access-log line and span agrees, at both
reporters, with nothing missing or counted twice.

The chain is curl -> front -> middle -> back, all with sidecars. A
VirtualService aborts a share of middle's calls to back with 503 (FI, at
middle's sidecar); middle then answers 502, and so does front. Requests to a
path front does not serve get 404 from front without going further. So from
the load generator's own rows (how many 200, 502 and 404) every hop's
expected counts follow:

    hop (reporter)                  requests          codes
    curl -> front   (source, dest)  N_ok+N_502+N_404  as the load generator saw
    front -> middle (source, dest)  N_ok+N_502        200 / 502
    middle -> back  (source)        N_ok+N_502        200 / 503 FI
    middle -> back  (dest)          N_ok              200
"""

from __future__ import annotations

import collections
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest
from prometheus_client.parser import text_string_to_metric_families

from meshkit.demo.apps import Call, Latency, WorkloadSpec
from meshkit.lab import Lab
from meshkit.observe import bucket_bounds

N = 120
N_404 = 30
ABORT_PERCENT = 30
SVC = "{}.default.svc.cluster.local"

CHAIN = (
    WorkloadSpec(name="front-v1", service="front", version="v1", service_account="front", latency=Latency(30.0, 45.0),
                 calls=(Call("middle", "/middle", timeout_s=5.0),), paths=("/front",)),
    WorkloadSpec(name="middle-v1", service="middle", version="v1", service_account="middle", latency=Latency(2.0, 4.0),
                 calls=(Call("back", "/back", timeout_s=5.0),), paths=("/middle",)),
    WorkloadSpec(name="back-v1", service="back", version="v1", service_account="back", latency=Latency(2.0, 4.0),
                 paths=("/back",)),
)  # fmt: skip

ABORT = {
    "apiVersion": "networking.istio.io/v1",
    "kind": "VirtualService",
    "metadata": {"name": "back-abort", "namespace": "default"},
    "spec": {
        "hosts": ["back"],
        "http": [{"fault": {"abort": {"httpStatus": 503, "percentage": {"value": ABORT_PERCENT}}}, "route": [{"destination": {"host": "back"}}]}],
    },
}


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """One lab, the traffic sent once; the tests read what the mesh made of it."""
    home = tmp_path_factory.mktemp("obs")
    lab = Lab(home=home).up()
    try:
        lab.deploy(CHAIN)
        lab.inject("default")
        lab.apply(ABORT)
        main = lab.load("front", "/front", rate=40, requests=N, concurrency=32)
        missing = lab.load("front", "/nope", rate=40, requests=N_404)
        records = lab.requests()
        yield {"lab": lab, "home": home, "main": main, "missing": missing, "records": records}
    finally:
        lab.down()


def expected(run: dict[str, Any]) -> dict[tuple[str, str, str], collections.Counter[tuple[int, str]]]:
    """(reporter, source workload, destination service) -> Counter of (code, flags), from the load generator's rows."""
    main, missing = run["main"], run["missing"]
    assert (main["code"] != 0).all() and (missing["code"] == 404).all(), "every request must get an answer"
    ok = int((main["code"] == 200).sum())
    failed = int((main["code"] == 502).sum())
    assert ok + failed == N, main["code"].value_counts()
    assert 0 < failed < N, "the abort share should hit some requests and not all"
    entry = collections.Counter({(200, "-"): ok, (502, "-"): failed, (404, "-"): N_404})
    second = collections.Counter({(200, "-"): ok, (502, "-"): failed})
    return {
        ("source", "curl", SVC.format("front")): entry,
        ("destination", "curl", SVC.format("front")): entry,
        ("source", "front-v1", SVC.format("middle")): second,
        ("destination", "front-v1", SVC.format("middle")): second,
        ("source", "middle-v1", SVC.format("back")): collections.Counter({(200, "-"): ok, (503, "FI"): failed}),
        ("destination", "middle-v1", SVC.format("back")): collections.Counter({(200, "-"): ok}),
    }


def counted(rows: list[dict[str, Any]], code: str = "response_code", flags: str = "response_flags") -> dict[tuple[str, str, str], collections.Counter[tuple[int, str]]]:
    found: dict[tuple[str, str, str], collections.Counter[tuple[int, str]]] = collections.defaultdict(collections.Counter)
    for r in rows:
        found[(r["reporter"], r["source_workload"], r["destination_service"])][(int(r[code]), r[flags])] += 1
    return dict(found)


def test_every_record_matches_the_load_generator_at_both_reporters(run: dict[str, Any]) -> None:
    got = counted(run["records"].to_dict("records"), "code", "flags")
    assert got == expected(run)


def test_every_prometheus_counter_matches(run: dict[str, Any]) -> None:
    lab: Lab = run["lab"]
    found: dict[tuple[str, str, str], collections.Counter[tuple[int, str]]] = collections.defaultdict(collections.Counter)
    durations: dict[tuple[str, str, str], float] = collections.Counter()
    for url in lab._admin_urls():
        text = httpx.get(f"{url}/stats/prometheus", trust_env=False).text
        for family in text_string_to_metric_families(text):
            for s in family.samples:
                key = (s.labels.get("reporter"), s.labels.get("source_workload"), s.labels.get("destination_service"))
                if s.name == "meshkit_requests_total":
                    found[key][(int(s.labels["response_code"]), s.labels["response_flags"])] += int(s.value)
                elif s.name == "meshkit_request_duration_milliseconds_count":
                    durations[key] += int(s.value)
    assert dict(found) == expected(run)
    assert {k: sum(v.values()) for k, v in expected(run).items()} == dict(durations)


def test_every_access_log_line_matches(run: dict[str, Any]) -> None:
    lab: Lab = run["lab"]
    lines = []
    for path in sorted((run["home"] / "logs").glob("*.access.log")):
        lines += [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    assert counted(lines) == expected(run)
    for line in lines:
        assert line["traceparent"] == f"00-{line['trace_id']}-{line['span_id']}-01"
        assert line["request_id"] and line["start_time"].endswith("Z") and line["protocol"] == "HTTP/1.1"
    # lab.logs shows the same lines for one workload
    tail = lab.logs("back-v1", sidecar=True, tail=0).splitlines()
    assert len(tail) == sum(expected(run)[("destination", "middle-v1", SVC.format("back"))].values())


def test_every_request_is_one_trace_with_the_spans_its_path_implies(run: dict[str, Any]) -> None:
    lab: Lab = run["lab"]
    records: pd.DataFrame = run["records"]
    assert records["span_id"].notna().all() and not records["span_id"].duplicated().any()
    table = lab.traces(limit=None)
    assert len(table) == N + N_404
    spans_by_code = table.groupby("code")["spans"].agg(lambda s: sorted(set(s))).to_dict()
    assert spans_by_code == {200: [6], 404: [2], 502: [5]}
    one = table[table["code"] == 200].iloc[0]
    tree = lab.trace(one["trace_id"])
    assert list(tree["workload"]) == ["curl", "front-v1", "front-v1", "middle-v1", "middle-v1", "back-v1"]
    assert list(tree["depth"]) == [0, 1, 2, 3, 4, 5]
    assert (tree["offset_ms"].diff().dropna() >= 0).all()
    # each hop's time contains the hops under it
    ends = tree["offset_ms"] + tree["duration_ms"]
    assert all(ends[i] >= ends[i + 1] - 0.5 for i in range(len(tree) - 1))


def test_latency_percentiles_agree_with_the_load_generator_within_the_bucket_error(run: dict[str, Any]) -> None:
    """The entry sidecar's histogram against the load generator's own service times.

    Both measure the same requests; the sidecar's clock starts a hop later and
    the histogram only knows buckets, so the load generator's quantile must lie
    in the bucket of the estimate, give or take the client-to-sidecar hop.
    The load generator's quantile is taken as Prometheus ranks: the request at
    rank ceil(q x n) (numpy's inverted_cdf), not numpy's default interpolation
    between two requests, which at p99 of 150 can fall below a bucket boundary
    that both neighbouring requests are above or on.
    """
    lab: Lab = run["lab"]
    table = lab.metrics(window=None, by=["source_workload", "destination_workload"], reporter="source")
    entry = table[(table["source_workload"] == "curl") & (table["destination_workload"] == "front-v1")].iloc[0]
    rows = pd.concat([run["main"], run["missing"]])
    hop_ms = 10.0  # the client-to-sidecar hop: a few ms, more on a loaded 2-core machine
    for q in (0.5, 0.9, 0.99):
        truth = float(np.quantile(rows["service_ms"], q, method="inverted_cdf"))
        estimate = float(entry[f"p{round(q * 100)}_ms"])
        lower, upper = bucket_bounds(estimate)
        assert lower - hop_ms <= truth <= upper + hop_ms, (q, truth, estimate, lower, upper)


def test_stat_and_topology_show_the_same_numbers(run: dict[str, Any]) -> None:
    lab: Lab = run["lab"]
    exp = expected(run)
    stat = lab.stat(window=600).set_index("workload")
    for workload, service in (("front-v1", "front"), ("middle-v1", "middle"), ("back-v1", "back")):
        key = next(k for k in exp if k[0] == "destination" and k[2] == SVC.format(service))
        total = sum(exp[key].values())
        ok = sum(n for (code, _), n in exp[key].items() if code < 400)
        assert stat.loc[workload, "requests"] == total
        assert stat.loc[workload, "success_rate"] == pytest.approx(ok / total)
    edges = lab.edges().set_index(["source", "destination"])
    assert edges.loc[("middle-v1", SVC.format("back")), "requests"] == sum(exp[("destination", "middle-v1", SVC.format("back"))].values())
    top = lab.topology()
    assert set(top["reporter"]) == {"destination"} and len(top) == 3


def test_connection_security_is_the_same_in_every_view_and_uniform_per_edge(run: dict[str, Any]) -> None:
    """Per edge, one connection_security_policy as the destination reported it.

    Under the default PERMISSIVE mode, sidecars talk mutual TLS to each
    other (auto mTLS), so every edge here is `mutual_tls`;
    test_observability_security checks the modes one by one.
    """
    records: pd.DataFrame = run["records"]
    # How a request arrived is the callee's sidecar's to say; a request the
    # caller's sidecar aborted (FI) never had a connection to be secured.
    records = records[records["reporter"] == "destination"]
    per_edge = records.groupby(["source_workload", "destination_service"])["connection_security_policy"].agg(set)
    assert all(len(v) == 1 for v in per_edge), per_edge
    policies = set().union(*per_edge)
    assert policies == {"mutual_tls"}, policies
    topology = run["lab"].topology()
    assert set(topology["security"]) == policies
