"""Back-pressure between the two sockets of a proxied request.

A proxy that reads faster than the other side can write buffers the
difference; with a 20 MB upload and a slow app that is 20 MB of RAM. So each
transport's write buffer has watermarks, and when it goes over the high one
(asyncio calls pause_writing) the sidecar stops reading from the socket that
feeds it, until the buffer drains below the low one (resume_writing).

Reading can be held for several independent reasons at once (the peer's
buffer is full, a pipelined request waits its turn, an upstream connection is
still being made); `ReadGate` pauses the transport while any of them holds and
resumes it when the last one is released. This is uvicorn's FlowControl
(protocols/http/flow_control.py) with the single flag made into a set.
"""

from __future__ import annotations

import asyncio

# Watermarks for every transport the sidecar writes to. 64 KiB is uvicorn's
# high-water mark; the low one lets a resumed reader fill a few socket reads
# before pausing again.
HIGH_WATER = 64 * 1024
LOW_WATER = 16 * 1024

# Why reading is held (bit flags).
PEER_FULL = 1  # the transport we copy into has a full write buffer
PIPELINE = 2  # a parsed request is waiting behind the one in flight
CONNECTING = 4  # the upstream connection for this request is being made
STOPPED = 8  # the connection will not parse anything more


class ReadGate:
    """Pauses a transport's reading while at least one reason holds."""

    __slots__ = ("_transport", "holds")

    def __init__(self, transport: asyncio.Transport) -> None:
        self._transport = transport
        # The reasons holding reading now (bit flags). Read-only outside this
        # class: a caller on the hot path may test a bit to skip a call that
        # would do nothing, and changes it only through hold and release.
        self.holds = 0
        transport.set_write_buffer_limits(high=HIGH_WATER, low=LOW_WATER)

    @property
    def held(self) -> bool:
        return self.holds != 0

    def hold(self, reason: int) -> None:
        holds = self.holds
        if not holds & reason:
            self.holds = holds | reason
            if not holds and not self._transport.is_closing():
                self._transport.pause_reading()

    def release(self, reason: int) -> None:
        holds = self.holds
        if holds & reason:
            self.holds = holds & ~reason
            if not self.holds and not self._transport.is_closing():
                self._transport.resume_reading()

    def release_all(self) -> None:
        """Read again whatever held it: used to drain a connection being closed."""
        if self.holds:
            self.holds = 0
            if not self._transport.is_closing():
                self._transport.resume_reading()
