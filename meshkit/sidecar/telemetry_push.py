"""The exporter: takes finished requests off the hot path, logs them and
pushes them to the control plane.

Every `flush_interval_s` (and when asked: the admin page POST
/telemetry/flush, and at shutdown) it takes what the request path buffered
(`Telemetry.take`), turns each record into its access-log line, appends the
lines to the access log in one write, and queues them for the control plane
in an outbox. The outbox is sent in batches of at most `BATCH_RECORDS`
records (and under the control plane's body limit) with the node token;
a batch leaves the outbox only when the control plane said 200, so a control
plane that is away (restarting, overloaded) loses nothing until the outbox
is full. Then the oldest records are dropped and counted, and the count
travels with every batch, so the control plane can say how much is missing.

Each record carries its sequence number at this sidecar (`seq`, counted
from 0 at start) and each batch the sidecar's boot id: the control plane
keeps the next sequence number it expects per (node, boot), so a batch sent
twice (the answer was lost) is stored once, and a hole is a measured loss.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import time
from collections import deque
from typing import Any

from meshkit.errors import ControlPlaneError
from meshkit.sidecar import accesslog
from meshkit.sidecar.bootstrap import ControlPlane, TelemetrySettings
from meshkit.sidecar.control_call import call
from meshkit.sidecar.telemetry import Telemetry

log = logging.getLogger("meshkit.sidecar")

PUSH_PATH = "/v1/telemetry"
BATCH_RECORDS = 1000
# The control plane refuses bodies over 1 MiB; stay well under it.
BATCH_BYTES = 700 * 1024
PUSH_TIMEOUT_S = 5.0
SHUTDOWN_PUSH_S = 3.0
DRAIN_SLICE = 500


class Exporter:
    """Drains a Telemetry's buffer to the access log and the control plane."""

    def __init__(self, telemetry: Telemetry, settings: TelemetrySettings, node: str, control_plane: ControlPlane | None) -> None:
        self.telemetry = telemetry
        self.settings = settings
        self.node = node
        self.control_plane = control_plane if settings.push else None
        self.boot = secrets.token_hex(8)
        self.started_at = time.time()
        self.outbox: deque[tuple[int, str]] = deque()
        self.log = accesslog.RotatingLog(settings.access_log, settings.access_log_max_bytes, settings.access_log_backups) if settings.access_log else None
        self.pushed = 0  # records the control plane accepted
        self.logged = 0  # lines written to the access log
        self.connected: bool | None = None
        self.last_error: str | None = None
        self.lock = asyncio.Lock()
        self.task: asyncio.Task[None] | None = None

    @property
    def active(self) -> bool:
        """True when records go anywhere (a log file or a control plane)."""
        return self.log is not None or self.control_plane is not None

    def start(self) -> None:
        self.task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        interval = self.settings.flush_interval_s
        while True:
            await asyncio.sleep(interval)
            try:
                await self.flush()
            except Exception:  # a bug here must not stop exporting for good
                log.exception("telemetry export failed")

    async def flush(self, timeout_s: float = PUSH_TIMEOUT_S) -> dict[str, Any]:
        """Log and push everything recorded so far; the exporter's status after it."""
        async with self.lock:
            await self.drain()
            if self.control_plane is not None and self.outbox:
                await self._push_all(timeout_s)
        return self.status()

    async def drain(self) -> None:
        """Take the buffered records, write their access-log lines, queue them for the control plane.

        A busy second leaves thousands of records; turning them into lines
        takes tens of milliseconds, so the event loop gets a turn after each
        slice and requests in flight are not held up behind the whole batch.
        """
        first, records = self.telemetry.take()
        if not records:
            return
        node = self.node
        line = accesslog.line
        outbox = self.outbox
        # In slices, so a busy second's worth of lines never sits in memory at
        # once and the loop serves requests between them.
        for offset in range(0, len(records), DRAIN_SLICE):
            start = first + offset
            lines = [line(record, start + i, node) for i, record in enumerate(records[offset : offset + DRAIN_SLICE])]
            if self.log is not None:
                self.log.write(lines)
                self.logged += len(lines)
            if self.control_plane is not None:
                outbox.extend(zip(range(start, start + len(lines)), lines))
            if offset + DRAIN_SLICE < len(records):
                await asyncio.sleep(0)
        if self.control_plane is None:
            return
        overflow = len(outbox) - self.settings.buffer_size
        if overflow > 0:
            for _ in range(overflow):
                outbox.popleft()
            self.telemetry.dropped_later += overflow
            log.warning("telemetry buffer full (%d records): dropped the %d oldest", self.settings.buffer_size, overflow)

    async def _push_all(self, timeout_s: float) -> None:
        cp = self.control_plane
        assert cp is not None
        outbox = self.outbox
        while outbox:
            lines: list[str] = []
            size = 0
            for _seq, text in outbox:
                if lines and (len(lines) >= BATCH_RECORDS or size + len(text) > BATCH_BYTES):
                    break
                lines.append(text)
                size += len(text) + 1
            head = json.dumps({"node": self.node, "boot": self.boot, "started_at": self.started_at,
                               "recorded": self.telemetry.recorded, "dropped": self.telemetry.dropped})
            body = (head[:-1] + ',"records":[' + ",".join(lines) + "]}").encode("utf-8")
            try:
                status, answer = await call(cp, "POST", PUSH_PATH, body, timeout_s)
            except ControlPlaneError as exc:
                self._failed(str(exc))
                return
            if status != 200:
                self._failed(f"control plane answered {status}: {answer[:200].decode('utf-8', 'replace')}")
                return
            for _ in range(len(lines)):
                outbox.popleft()
            self.pushed += len(lines)
            if self.connected is False:
                log.info("telemetry: control plane reachable again; %d records waiting", len(outbox))
            self.connected = True
            self.last_error = None

    def _failed(self, reason: str) -> None:
        if self.connected is not False:
            log.warning("telemetry push failed (%s); keeping up to %d records until it answers", reason, self.settings.buffer_size)
        self.connected = False
        self.last_error = reason

    def status(self) -> dict[str, Any]:
        telemetry = self.telemetry
        return {
            "node": self.node,
            "boot": self.boot,
            "recorded": telemetry.recorded,
            "logged": self.logged,
            "pushed": self.pushed,
            "waiting": len(self.outbox) + (len(telemetry.pending) if telemetry.pending is not None else 0),
            "dropped": telemetry.dropped,
            "connected": self.connected,
            "last_error": self.last_error,
            "access_log": self.settings.access_log,
        }

    async def close(self, timeout_s: float = SHUTDOWN_PUSH_S) -> None:
        """Stop the periodic flush, then flush once more (at shutdown)."""
        if self.task is not None:
            self.task.cancel()
            try:
                await self.task
            except asyncio.CancelledError:
                pass
            self.task = None
        try:
            await asyncio.wait_for(self.flush(timeout_s), timeout_s + 1.0)
        except (TimeoutError, asyncio.TimeoutError):
            log.warning("telemetry: final push did not finish; %d records not delivered", len(self.outbox))
        if self.outbox:
            log.warning("telemetry: %d records could not be delivered before exit", len(self.outbox))
        if self.log is not None:
            self.log.close()
