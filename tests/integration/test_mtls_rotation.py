"""Certificate rotation under load (HARDENING: mTLS and identity, "Rotation").

A lab whose CA signs one-minute certificates: each sidecar renews at half
life (30 s ± 0.6 s) with a new key. Steady open-loop traffic runs for three
minutes through two mTLS hops (curl's sidecar -> frontend's -> backend's);
no request may fail, every sidecar must show new serials, and a connection
made after a rotation must be presented the new certificate.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from datetime import timedelta
from pathlib import Path

import pandas as pd
import pytest
from cryptography import x509

from meshkit.demo.apps import Call, Latency, WorkloadSpec
from meshkit.lab import Lab
from meshkit.security.ca_store import load
from tests.integration.mtls_fixtures import MeshCA, get, tls_exchange

RATE = 25.0
DURATION_S = 180.0
BACKEND = WorkloadSpec(name="backend", service="backend", version="v1", service_account="backend", latency=Latency(0.5, 2.0))
FRONTEND = WorkloadSpec(
    name="frontend", service="frontend", version="v1", service_account="frontend", latency=Latency(0.5, 2.0),
    calls=(Call("backend", "/backend", timeout_s=5.0),),
)  # fmt: skip


@pytest.mark.slow  # three minutes: five renewals of one-minute certificates
def test_rotation_under_load_fails_no_request_and_new_connections_see_new_serials(tmp_path: Path) -> None:
    lab = Lab(home=tmp_path / "lab", cert_lifetime=timedelta(minutes=1)).up()
    try:
        lab.deploy([FRONTEND, BACKEND], inject=True)
        lab.inject("default/curl")
        first = lab.certificates().set_index("instance")
        lifetime = (first["not_after"] - first["not_before"]).max()
        assert lifetime <= pd.Timedelta(minutes=2.1)  # one minute, plus the minute notBefore is backdated

        serials: dict[str, set[str]] = defaultdict(set)
        results: list[pd.DataFrame] = []
        runner = threading.Thread(target=lambda: results.append(lab.load("frontend", "/", rate=RATE, duration=DURATION_S, timeout=10)))
        runner.start()
        while runner.is_alive():
            for row in lab.certificates().itertuples():
                serials[row.instance].add(row.serial)
            runner.join(timeout=5.0)
        [frame] = results

        failed = frame[(frame["code"] != 200) | frame["error"].fillna("").astype(bool)]
        assert len(frame) == int(RATE * DURATION_S)
        assert failed.empty, failed.head(10).to_string()

        last = lab.certificates().set_index("instance")
        for instance in ("frontend-0", "backend-0", "curl-0"):
            # Renewal every ~30 s for 3 minutes: five rotations at least, each a new serial.
            assert len(serials[instance]) >= 5, (instance, serials[instance])
            assert last.loc[instance, "rotations"] >= 5
            assert last.loc[instance, "serial"] != first.loc[instance, "serial"]
        assert not last["expired"].any()

        # A new connection is presented the current certificate, not the first one.
        ca = load(tmp_path / "lab" / "ca")
        assert ca is not None
        mesh = MeshCA(tmp_path, ca=ca)
        port = next(v.port for v in lab._backend.instances() if v.workload == "frontend")
        responses, _, der, error = tls_exchange(port, mesh.context("default", "probe"), get("/", host="frontend"))
        assert error is None and responses[0].status == 200 and der is not None
        presented = format(x509.load_der_x509_certificate(der).serial_number, "x")
        current = lab.certificates().set_index("instance").loc["frontend-0", "serial"]
        assert presented in (current, last.loc["frontend-0", "serial"]) and presented != first.loc["frontend-0", "serial"]

        # Steady traffic needed few handshakes: pooled connections carried the load across rotations.
        views = [v for v in lab._backend.instances() if v.workload in ("frontend", "backend")]
        handshakes = [doc["tls"]["inbound_handshakes"] for doc in lab._admin_json(views, "/certs")]
        # (Open-loop bursts can widen the pools for a moment; strict "no new handshake" is test_mtls_outbound's.)
        assert max(handshakes) <= 0.02 * len(frame), handshakes
        edges = lab.security()
        assert set(edges[edges["destination"].str.startswith(("frontend", "backend"))]["security"]) == {"mTLS"}
    finally:
        lab.down()
