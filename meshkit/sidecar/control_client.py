"""Talking to the control plane: the long poll for snapshots, and the ACKs.

This is off the hot path (one request per config change or per 30 s). Each
request is one call (meshkit.sidecar.control_call), where every failure
becomes ControlPlaneError; the loop in `ConfigClient` turns those into
backoff and a log line when the state changes, never a crash.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
from typing import Any
from urllib.parse import quote

from meshkit.core.backoff import full_jitter
from meshkit.errors import ControlPlaneError
from meshkit.sidecar.bootstrap import ControlPlane
from meshkit.sidecar.control_call import call, error_text
from meshkit.sidecar.state import MeshState, Outcome

log = logging.getLogger("meshkit.sidecar")

LONG_POLL_S = 30
# How much longer than the long poll we wait before calling the control plane lost.
CALL_MARGIN_S = 10.0
ACK_TIMEOUT_S = 10.0


class ConfigClient:
    """Keeps the sidecar's snapshot current, for as long as the task runs."""

    def __init__(self, cp: ControlPlane, node: str, state: MeshState, rng: random.Random | None = None) -> None:
        self.cp = cp
        self.node = node
        self.state = state
        self.rng = rng or random.Random()
        self.seen = 0  # the last version applied or refused: the poll asks for anything else
        self.pending_ack: dict[str, Any] | None = None
        self.connected: bool | None = None
        self.failures = 0
        self.last_refusal: str | None = None

    async def run(self) -> None:
        while True:
            await self.step()

    async def step(self) -> None:
        """One long poll (after delivering a pending ACK), and what follows from it."""
        try:
            if self.pending_ack is not None:
                await self._send_ack(self.pending_ack)
                self.pending_ack = None
            # After a failure, ask without waiting: the answer says at once
            # whether the control plane is back, instead of after a long poll.
            wait = 0 if self.connected is False else LONG_POLL_S
            target = f"/v1/snapshot?node={quote(self.node, safe='')}&version={self.seen}&wait={wait}"
            status, body = await call(self.cp, "GET", target, None, wait + CALL_MARGIN_S)
        except ControlPlaneError as exc:
            if self.connected is not False:
                log.warning("control plane %s: %s; serving on config version %s", "lost" if self.connected else "not reachable", exc, self.state.version)
                self.connected = False
            await self._back_off()
            return
        if self.connected is False:
            log.info("control plane regained at %s", self.cp.url)
        self.connected = True
        if status == 304:
            self.failures = 0
            return
        if status != 200:
            refusal = error_text(status, body)
            if refusal != self.last_refusal:
                log.warning("control plane refused the snapshot request (%s); retrying with backoff", refusal)
                self.last_refusal = refusal
            await self._back_off()
            return
        self.failures = 0
        self.last_refusal = None
        outcome = self.state.offer(body)
        ack = self.pending_ack = self._ack_body(outcome)
        if outcome.version is None:
            # Without a readable version the next poll would get the same
            # document at once; wait instead of spinning on it.
            await self._back_off()
        else:
            self.seen = outcome.version
        try:
            await self._send_ack(ack)
            self.pending_ack = None
        except ControlPlaneError as exc:
            log.warning("could not deliver %s for version %s, will retry: %s", ack["status"], outcome.version, exc)

    def _ack_body(self, outcome: Outcome) -> dict[str, Any]:
        body: dict[str, Any] = {
            "node": self.node,
            "version": outcome.version if outcome.version is not None else self.seen,
            "status": "ACK" if outcome.accepted else "NACK",
        }
        if outcome.reason is not None:
            body["reason"] = outcome.reason
        return body

    async def _send_ack(self, ack: dict[str, Any]) -> None:
        status, body = await call(self.cp, "POST", "/v1/ack", json.dumps(ack).encode("utf-8"), ACK_TIMEOUT_S)
        if status >= 300:
            log.warning("control plane refused the %s for version %s (%s)", ack["status"], ack["version"], error_text(status, body))

    async def _back_off(self) -> None:
        delay = full_jitter(self.failures, self.rng.uniform)
        self.failures += 1
        await asyncio.sleep(delay)
