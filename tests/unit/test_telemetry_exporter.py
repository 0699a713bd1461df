"""The exporter: batches to the control plane, nothing lost while it is away, drops counted."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from meshkit.errors import ControlPlaneError
from meshkit.sidecar import telemetry_push
from meshkit.sidecar.bootstrap import ControlPlane, TelemetrySettings
from meshkit.sidecar.telemetry import RequestRecord, Telemetry

CP = ControlPlane("127.0.0.1", 1, "token")


class FakeControlPlane:
    """Stands in for `call`: records batches, or fails while `down`."""

    def __init__(self) -> None:
        self.down = False
        self.batches: list[dict[str, Any]] = []

    async def __call__(self, cp: ControlPlane, method: str, target: str, body: bytes | None, timeout_s: float) -> tuple[int, bytes]:
        assert method == "POST" and target == "/v1/telemetry" and body is not None
        if self.down:
            raise ControlPlaneError("refused")
        self.batches.append(json.loads(body))
        return 200, b'{"ok": true}'

    def seqs(self) -> list[int]:
        return [r["seq"] for b in self.batches for r in b["records"]]


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> FakeControlPlane:
    cp = FakeControlPlane()
    monkeypatch.setattr(telemetry_push, "call", cp)
    return cp


def send(t: Telemetry, n: int) -> None:
    route = t.route("source", "a", "v1", "svc.ns.svc.cluster.local", "b", "v1")
    for _ in range(n):
        t.record(RequestRecord(1.0, b"GET", b"/", b"svc", 200, "-", 1.0, None, None, None, route))


def exporter(buffer: int = 100, log: Path | None = None) -> tuple[Telemetry, telemetry_push.Exporter]:
    settings = TelemetrySettings(buffer_size=buffer, access_log=str(log) if log else None)
    t = Telemetry(10, buffer)
    return t, telemetry_push.Exporter(t, settings, "default/a-0", CP)


def test_records_go_out_numbered_and_logged(fake: FakeControlPlane, tmp_path: Path) -> None:
    t, e = exporter(log=tmp_path / "access.log")
    send(t, 5)
    status = asyncio.run(e.flush())
    assert fake.seqs() == [0, 1, 2, 3, 4] and status["pushed"] == 5 and status["waiting"] == 0
    assert fake.batches[0]["node"] == "default/a-0" and fake.batches[0]["boot"] == e.boot
    assert len((tmp_path / "access.log").read_text().splitlines()) == 5


def test_while_the_control_plane_is_away_records_wait_and_then_all_arrive(fake: FakeControlPlane) -> None:
    t, e = exporter()
    fake.down = True
    send(t, 30)
    status = asyncio.run(e.flush())
    assert status["connected"] is False and status["waiting"] == 30 and fake.batches == []
    send(t, 10)
    fake.down = False
    status = asyncio.run(e.flush())
    assert fake.seqs() == list(range(40)) and status["dropped"] == 0 and status["connected"] is True


def test_an_overflowing_outbox_drops_the_oldest_and_says_how_many(fake: FakeControlPlane) -> None:
    t, e = exporter(buffer=25)
    fake.down = True
    for _ in range(4):
        send(t, 10)
        asyncio.run(e.flush())
    fake.down = False
    status = asyncio.run(e.flush())
    assert status["dropped"] == 15 and fake.seqs() == list(range(15, 40))
    assert fake.batches[-1]["dropped"] == 15 and fake.batches[-1]["recorded"] == 40


def test_batches_stay_under_the_body_limit(fake: FakeControlPlane, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(telemetry_push, "BATCH_RECORDS", 7)
    t, e = exporter()
    send(t, 20)
    asyncio.run(e.flush())
    assert [len(b["records"]) for b in fake.batches] == [7, 7, 6] and fake.seqs() == list(range(20))


def test_close_flushes_what_is_left(fake: FakeControlPlane) -> None:
    t, e = exporter()

    async def run() -> None:
        e.start()
        send(t, 3)
        await e.close()

    asyncio.run(run())
    assert fake.seqs() == [0, 1, 2]


def test_a_big_drain_lets_the_event_loop_serve_between_slices(tmp_path: Path) -> None:
    """A busy second's records are logged in slices, with the loop free between them."""
    log = tmp_path / "access.log"
    settings = TelemetrySettings(buffer_size=4000, access_log=str(log), push=False)
    t = Telemetry(10, 4000)
    e = telemetry_push.Exporter(t, settings, "default/a-0", None)
    records = 3 * telemetry_push.DRAIN_SLICE + 7
    send(t, records)
    turns: list[int] = []

    async def run() -> None:
        async def ticker() -> None:
            while True:
                turns.append(e.logged)  # how many lines were written when the loop came round
                await asyncio.sleep(0)

        task = asyncio.get_running_loop().create_task(ticker())
        await asyncio.sleep(0)
        await e.drain()
        task.cancel()

    asyncio.run(run())
    # The ticker ran after each of the first three slices, not only before and after the drain.
    assert [n for n in turns if 0 < n < records] == [telemetry_push.DRAIN_SLICE * i for i in (1, 2, 3)]
    lines = log.read_text().splitlines()
    assert len(lines) == records and e.logged == records
    assert [json.loads(line)["seq"] for line in lines] == list(range(records))
