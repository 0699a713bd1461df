"""One request through the sidecar and the response that answers it.

An `Exchange` is the meeting point of the two connections of a proxied
request: the client's (`DownstreamProtocol`) and the endpoint's
(`UpstreamProtocol`). It streams the request body up and the response body
down as the bytes arrive, never holding a whole body, and it turns every way
the upstream side can fail into the response the learner sees: the mesh's
own reply with its Envoy flag (UF, UC, UPE, ...) when nothing has been sent
yet, or a closed connection when a response was already under way.

Who decides where the request goes (routing, balancing) is the listener's
handler; the exchange only carries bytes and counts the outcome.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from meshkit.core.framing import (
    BODY_CHUNKED,
    BODY_NONE,
    Rejection,
    RequestHead,
    ResponseHead,
    build_response_head,
    parse_response_head,
    response_framing,
    upstream_reusable,
)
from meshkit.core.local_reply import FLAGS, NO_FLAGS, render_local_reply, render_response
from meshkit.sidecar.flow import CONNECTING, PEER_FULL
from meshkit.sidecar.telemetry import MAX_RECORDED_TEXT, RequestRecord, Route

if TYPE_CHECKING:
    from meshkit.sidecar.downstream import DownstreamProtocol
    from meshkit.sidecar.upstream import Pool, UpstreamProtocol

_CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
_LAST_CHUNK = b"0\r\n\r\n"


class Exchange:
    """A request in flight, from its parsed head to the last response byte."""

    __slots__ = (
        "down",
        "head",
        "rejection",
        "started",
        "finished",
        "request_done",
        "pending",
        "up",
        "pool",
        "upstream_head",
        "reused",
        "retried",
        "response_started",
        "body_mode",
        "close_delimited",
        "reusable",
        "keep_alive",
        "status",
        "flags",
        "route",
        "request_id",
        "trace_id",
        "t0",
    )

    def __init__(self, down: DownstreamProtocol, head: RequestHead | None, rejection: Rejection | None = None) -> None:
        self.down = down
        self.head = head
        self.rejection = rejection
        self.started = False
        self.finished = False
        self.request_done = head is None
        self.pending: list[bytes] | None = []
        self.up: UpstreamProtocol | None = None
        self.pool: Pool | None = None
        self.upstream_head = b""
        self.reused = False
        self.retried = False
        self.response_started = False
        self.body_mode = BODY_NONE
        self.close_delimited = False
        self.reusable = False
        self.keep_alive = head is not None and head.keep_alive
        self.status = 0
        self.flags = NO_FLAGS
        self.route: Route | None = None
        self.request_id: bytes | None = None
        self.trace_id: bytes | None = None
        self.t0 = time.perf_counter()

    # --- the request side (called by DownstreamProtocol) ---

    def start(self) -> None:
        """Begin serving: the exchange is now first in its connection's queue."""
        self.started = True
        if self.rejection is not None:
            self.respond_local("DPE", self.rejection.reason, status=self.rejection.status)
            return
        self.down.listener.handler.dispatch(self)

    def on_request_body(self, chunk: bytes) -> None:
        assert self.head is not None
        data = b"%x\r\n%s\r\n" % (len(chunk), chunk) if self.head.chunked else chunk
        up = self.up
        if up is not None:
            assert up.transport is not None
            up.transport.write(data)
        elif self.pending is not None:
            self.pending.append(data)

    def on_request_end(self) -> None:
        self.request_done = True
        assert self.head is not None
        if self.head.chunked:
            up = self.up
            if up is not None:
                assert up.transport is not None
                up.transport.write(_LAST_CHUNK)
            elif self.pending is not None:
                self.pending.append(_LAST_CHUNK)

    def abort_request(self, rejection: Rejection) -> None:
        """The request's body turned out malformed after it was dispatched."""
        self.keep_alive = False
        self.request_done = True
        self.pending = None
        if self.up is not None:
            self._drop_upstream()
        if self.finished:
            return
        if self.response_started:
            self.flags = "DPE"
            self.down.transport_close()
            self._finish()
        else:
            self.respond_local("DPE", rejection.reason, status=rejection.status)

    def on_downstream_lost(self) -> None:
        """The client went away; abandon whatever is in flight upstream."""
        self.keep_alive = False
        self.pending = None
        if self.up is not None:
            self._drop_upstream()
        if self.started and not self.finished:
            self.flags = "DC"
            self._finish(notify=False)

    # --- what a handler does with it ---

    def forward(self, pool: Pool, upstream_head: bytes) -> None:
        """Send the request to an endpoint from `pool`."""
        self.pool = pool
        self.upstream_head = upstream_head
        assert self.head is not None
        if self.head.expect_continue and not self.request_done:
            self.down.write(_CONTINUE)
        conn = pool.acquire()
        if conn is not None:
            self.reused = True
            self._attach(conn)
        else:
            self.down.gate.hold(CONNECTING)
            pool.connect(self)

    def respond_local(self, letters: str, detail: str, status: int | None = None) -> None:
        """Answer with the mesh's own response for flag `letters`."""
        close, head_only = self._own_response_framing()
        extra = self.down.listener.local_reply_headers
        if self.request_id is not None:
            extra = extra + [(b"x-request-id", self.request_id)]
        self.flags = letters
        code = status if status is not None else FLAGS[letters].status
        self._send_own(code, render_local_reply(letters, detail, close=close, status=code, extra_headers=extra, head_only=head_only))

    def respond(self, status: int, content_type: bytes, body: bytes) -> None:
        """Answer with a response the sidecar made (the admin listener's pages)."""
        close, head_only = self._own_response_framing()
        self._send_own(status, render_response(status, [(b"content-type", content_type)], body, close, head_only))

    # --- the upstream side (called by Pool and UpstreamProtocol) ---

    def on_connected(self, conn: UpstreamProtocol) -> None:
        self.down.gate.release(CONNECTING)
        if self.finished or self.down.closed:
            conn.pool.release(conn, self.down.listener.clock.tick)
            return
        self.reused = False
        self._attach(conn)

    def on_connect_failed(self, pool: Pool, reason: str) -> None:
        self.down.gate.release(CONNECTING)
        if self.finished or self.down.closed:
            return
        self.pending = None
        self.respond_local("UF", reason)

    def on_response_head(self, status: int, reason: bytes, version: str, headers: list[tuple[bytes, bytes]]) -> bool:
        """Relay the response head; True when a response body follows."""
        assert self.head is not None
        listener = self.down.listener
        parsed = parse_response_head(version, headers, listener.drops_mesh_response_headers)
        if isinstance(parsed, str):
            self.on_upstream_error(parsed)
            return False
        mode, framing, persist = response_framing(self.head.method, self.head.version, status, parsed)
        keep_alive = self.keep_alive and persist and not self.down.draining
        self.keep_alive = keep_alive
        if not keep_alive:
            framing += b"connection: close\r\n"
        elif self.head.version == "1.0":
            framing += b"connection: keep-alive\r\n"
        self.status = status
        self.body_mode = mode
        self.reusable = upstream_reusable(self.head.method, status, parsed)
        self.close_delimited = _close_delimited(self.head.method, status, parsed)
        self.response_started = True
        self.down.write(build_response_head(status, reason, parsed.headers, framing, listener.response_extra))
        return mode != BODY_NONE or self.close_delimited

    def on_response_body(self, chunk: bytes) -> None:
        if self.body_mode == BODY_CHUNKED:
            self.down.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        elif self.body_mode != BODY_NONE:
            self.down.write(chunk)

    def on_response_end(self) -> None:
        if self.finished:
            return
        if self.body_mode == BODY_CHUNKED:
            self.down.write(_LAST_CHUNK)
        up = self.up
        self.up = None
        if up is not None:
            self.down.gate.release(PEER_FULL)
            if self.reusable and self.request_done and self.pool is not None:
                self.pool.release(up, self.down.listener.clock.tick)
            else:
                up.exchange = None
                up.close()
        self._finish()

    def on_upstream_lost(self, conn: UpstreamProtocol) -> None:
        """The upstream connection closed while this exchange was using it."""
        if self.finished or conn is not self.up:
            return
        self.up = None
        self.down.gate.release(PEER_FULL)
        if self.response_started:
            if self.close_delimited:
                self.on_response_end()
                return
            # The response was cut short; the client can only learn it from the close.
            self.flags = "UC"
            self.keep_alive = False
            self.down.transport_close()
            self._finish()
            return
        assert self.head is not None and self.pool is not None
        if self.reused and not self.retried and not self.head.has_body:
            # A pooled connection the server had closed: the request cannot
            # have been acted on, so one fresh attempt is safe.
            self.retried = True
            self.down.gate.hold(CONNECTING)
            self.pool.connect(self)
            return
        self.pending = None
        self.respond_local("UC", f"{self.pool.label} closed the connection before sending a response")

    def on_upstream_error(self, reason: str) -> None:
        """The upstream's response could not be parsed or relayed."""
        if self.finished:
            return
        if self.up is not None:
            self._drop_upstream()
        if self.response_started:
            self.flags = "UPE"
            self.keep_alive = False
            self.down.transport_close()
            self._finish()
        else:
            self.respond_local("UPE", reason)

    # --- internals ---

    def _attach(self, conn: UpstreamProtocol) -> None:
        self.up = conn
        pending = self.pending
        self.pending = None
        if pending:
            conn.send(self, self.upstream_head + b"".join(pending))
        else:
            conn.send(self, self.upstream_head)
        if self.down.write_paused:
            assert conn.gate is not None
            conn.gate.hold(PEER_FULL)

    def _own_response_framing(self) -> tuple[bool, bool]:
        """(close after it, head only) for a response the sidecar writes itself.

        A request whose body has not fully arrived cannot be followed by
        another on this connection: where it would start is unknown.
        """
        if not self.request_done:
            self.keep_alive = False
        close = not self.keep_alive or self.down.draining
        self.keep_alive = not close
        return close, self.head is not None and self.head.method == b"HEAD"

    def _send_own(self, status: int, data: bytes) -> None:
        self.status = status
        self.response_started = True
        self.down.write(data)
        self._finish()

    def _drop_upstream(self) -> None:
        up = self.up
        self.up = None
        self.down.gate.release(PEER_FULL)
        if up is not None:
            up.abort()

    def _finish(self, notify: bool = True) -> None:
        if self.finished:
            return
        self.finished = True
        self.pending = None
        listener = self.down.listener
        telemetry = listener.telemetry
        head = self.head
        if telemetry is not None and self.route is not None and head is not None:
            pool = self.pool
            elapsed = time.perf_counter() - self.t0
            telemetry.record(
                RequestRecord(
                    time.time() - elapsed,
                    head.method,
                    head.path[:MAX_RECORDED_TEXT],
                    head.authority[:MAX_RECORDED_TEXT],
                    self.status,
                    self.flags,
                    elapsed * 1000.0,
                    pool.label if pool is not None else None,
                    self.request_id,
                    self.trace_id,
                    self.route,
                )
            )
        if not self.request_done:
            # The response is complete but the request is not: where the next
            # request would start is unknown, so the connection ends here.
            self.keep_alive = False
        if notify:
            self.down.exchange_finished(self)


def _close_delimited(method: bytes, status: int, response: ResponseHead) -> bool:
    """True when only the upstream closing the connection ends this response's body."""
    if method == b"HEAD" or status < 200 or status in (204, 304):
        return False
    return response.content_length is None and not response.chunked
