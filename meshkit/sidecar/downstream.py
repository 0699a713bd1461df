"""The server side of every sidecar listener: HTTP/1.1 from clients.

`DownstreamProtocol` parses requests with httptools (llhttp), checks each
head with `meshkit.core.framing`, and keeps the connection's requests in a
queue: the first is served, the ones pipelined behind it wait (with reading
paused) so responses go back in order. A request that fails to parse stops
the connection: the requests before it are answered, it gets its 400 with
`connection: close`, and nothing after it is parsed, let alone forwarded.

Dispatch happens after llhttp has consumed the bytes at hand, never from
inside a parser callback; so a request whose body turns out malformed in the
same read is rejected before any upstream connection is made.

Timeouts (request head, idle keep-alive, lingering close, and the stream
idle timeout of a request body that stops arriving) are checked by the
sidecar's coarse clock (`meshkit.sidecar.clock`), not timers per request.
A body counts as idle only while the sidecar is not itself holding the
client's reading (waiting for a connection, a full upstream buffer).

Over its connection limit a listener closes a new connection at once, before
reading a byte, and counts it (meshkit.core.limits.admit_connection, Envoy's
downstream_cx_overflow).

A `Listener` is made for one direction (`Listener.inbound`,
`Listener.outbound`, `Listener.admin`): each constructor takes what its
direction needs and nothing else.

On the inbound listener a connection may be mTLS: the listener's
`peer_check` (meshkit.sidecar.peer_check.PeerCheck) reads the verified caller once,
when the connection is made, into `peer` (None for plaintext), and closes a
connection whose certificate names no workload of the mesh before any HTTP
byte is read.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable
from typing import Any, NoReturn, cast

from httptools import HttpParserCallbackError, HttpParserError, HttpParserUpgrade, HttpRequestParser

from meshkit.core.framing import MAX_HEAD_BYTES, MAX_HEADERS, Rejection, parse_request_head
from meshkit.core.limits import admit_connection, body_idle_expired
from meshkit.core.local_reply import render_response
from meshkit.sidecar.clock import Clock, ticks_for
from meshkit.sidecar.exchange import QUEUED, Exchange
from meshkit.sidecar.flow import PEER_FULL, PIPELINE, STOPPED, ReadGate
from meshkit.sidecar.handling import Direction, Handler
from meshkit.sidecar.peer_check import PeerInfo
from meshkit.sidecar.telemetry import ListenerStats, Telemetry

log = logging.getLogger("meshkit.sidecar")

# Connection phases, for the timeouts.
IDLE = 0  # waiting for a request: idle timeout
HEAD = 1  # a request head is arriving: request-headers timeout
BUSY = 2  # requests in flight: no connection-level timeout
LINGER = 3  # response sent, FIN sent, reading what the client still sends

# A read larger than this is parsed in pieces, so that a flood of tiny
# pipelined requests cannot queue more than about a piece's worth of them.
PIECE = 16 * 1024
# Requests parsed ahead of the one in flight before parsing stops for a while.
MAX_QUEUED = 16
# How long a closing connection keeps reading so that our FIN, not an RST,
# reaches a client that was still sending (nginx's lingering close).
LINGER_S = 2.0


PeerCheckFn = Callable[[Any], tuple[bool, PeerInfo | None]]


class Listener:
    """One listening port's settings and its open client connections; made by `inbound`, `outbound` or `admin`."""

    def __init__(
        self,
        direction: Direction,
        handler: Handler,
        clock: Clock,
        *,
        telemetry: Telemetry | None,
        request_headers_timeout_s: float,
        idle_timeout_s: float,
        local_reply_headers: list[tuple[bytes, bytes]] | None = None,
        response_extra: bytes = b"",
        drops_mesh_response_headers: bool = False,
        peer_check: PeerCheckFn | None = None,
        principal: str = "",
        max_connections: int | None = None,
        stream_idle_timeout_s: float | None = None,
        stats: ListenerStats | None = None,
    ) -> None:
        self.direction = direction
        self.name = direction.value
        # Inbound only: reads (and may refuse) the caller of an mTLS connection.
        self.peer_check = peer_check
        # This sidecar's SPIFFE ID, for the principals in its telemetry ("" when it has none).
        self.principal = principal
        self.handler = handler
        self.clock = clock
        self.telemetry = telemetry
        self.head_ticks = ticks_for(request_headers_timeout_s)
        self.idle_ticks = ticks_for(idle_timeout_s)
        self.linger_ticks = ticks_for(LINGER_S)
        # Connections open at once, at most (None: no limit); more are closed at once.
        self.max_connections = max_connections
        # A request body silent this long ends its request (None: no limit).
        self.stream_idle_timeout_s = stream_idle_timeout_s
        self.body_idle_ticks = ticks_for(stream_idle_timeout_s) if stream_idle_timeout_s is not None else None
        self.stats = stats if stats is not None else ListenerStats(direction.value)
        self.local_reply_headers = local_reply_headers or []
        self.response_extra = response_extra
        self.drops_mesh_response_headers = drops_mesh_response_headers
        self.connections: set[DownstreamProtocol] = set()
        self.draining = False

    @classmethod
    def inbound(
        cls,
        handler: Handler,
        clock: Clock,
        *,
        telemetry: Telemetry | None,
        request_headers_timeout_s: float,
        idle_timeout_s: float,
        version: bytes,
        peer_check: PeerCheckFn,
        principal: str,
        max_connections: int | None = None,
        stream_idle_timeout_s: float | None = None,
        stats: ListenerStats | None = None,
    ) -> Listener:
        """The workload's service port: responses carry the app's version; the app's mesh headers are dropped."""
        return cls(
            Direction.INBOUND,
            handler,
            clock,
            telemetry=telemetry,
            request_headers_timeout_s=request_headers_timeout_s,
            idle_timeout_s=idle_timeout_s,
            local_reply_headers=[(b"x-meshkit-version", version)],
            response_extra=b"x-meshkit-version: %s\r\n" % version,
            drops_mesh_response_headers=True,
            peer_check=peer_check,
            principal=principal,
            max_connections=max_connections,
            stream_idle_timeout_s=stream_idle_timeout_s,
            stats=stats,
        )

    @classmethod
    def outbound(
        cls,
        handler: Handler,
        clock: Clock,
        *,
        telemetry: Telemetry | None,
        request_headers_timeout_s: float,
        idle_timeout_s: float,
        principal: str,
        max_connections: int | None = None,
        stream_idle_timeout_s: float | None = None,
        stats: ListenerStats | None = None,
    ) -> Listener:
        """The app's HTTP proxy."""
        return cls(
            Direction.OUTBOUND,
            handler,
            clock,
            telemetry=telemetry,
            request_headers_timeout_s=request_headers_timeout_s,
            idle_timeout_s=idle_timeout_s,
            principal=principal,
            max_connections=max_connections,
            stream_idle_timeout_s=stream_idle_timeout_s,
            stats=stats,
        )

    @classmethod
    def admin(
        cls,
        handler: Handler,
        clock: Clock,
        *,
        request_headers_timeout_s: float,
        idle_timeout_s: float,
        max_connections: int | None = None,
        stream_idle_timeout_s: float | None = None,
        stats: ListenerStats | None = None,
    ) -> Listener:
        """The admin pages: nothing recorded in telemetry."""
        return cls(
            Direction.ADMIN,
            handler,
            clock,
            telemetry=None,
            request_headers_timeout_s=request_headers_timeout_s,
            idle_timeout_s=idle_timeout_s,
            max_connections=max_connections,
            stream_idle_timeout_s=stream_idle_timeout_s,
            stats=stats,
        )

    def protocol(self) -> DownstreamProtocol:
        return DownstreamProtocol(self)

    def sweep(self, tick: int) -> None:
        for conn in list(self.connections):
            conn.check_timeouts(tick)

    def drain(self) -> None:
        """Finish what is in flight, then close every connection."""
        self.draining = True
        for conn in list(self.connections):
            conn.drain()


class _Stop(Exception):
    """Raised in a parser callback to stop llhttp at a rejected request."""


class DownstreamProtocol(asyncio.Protocol):
    """One client connection to a sidecar listener."""

    __slots__ = (
        "listener",
        "transport",
        "gate",
        "parser",
        "queue",
        "reading",
        "url",
        "headers",
        "head_size",
        "in_head",
        "events",
        "quiet_bytes",
        "rejection",
        "backlog",
        "write_paused",
        "closed",
        "closing",
        "draining",
        "phase",
        "phase_tick",
        "body_tick",
        "pumping",
        "corked",
        "peer",
    )

    def __init__(self, listener: Listener) -> None:
        self.listener = listener
        self.transport: asyncio.Transport
        self.gate: ReadGate
        self.parser: HttpRequestParser | None = HttpRequestParser(self)
        self.queue: deque[Exchange] = deque()
        self.reading: Exchange | None = None
        self.url = b""
        self.headers: list[tuple[bytes, bytes]] = []
        self.head_size = 0
        self.in_head = False
        self.events = 0
        self.quiet_bytes = 0
        self.rejection: Rejection | None = None
        self.backlog = b""
        self.write_paused = False
        self.closed = False
        self.closing = False
        self.draining = False
        self.phase = IDLE
        self.phase_tick = 0
        self.body_tick = 0  # when the request being read last got body bytes (or its head ended)
        self.pumping = False
        self.corked: list[bytes] | None = None
        self.peer: PeerInfo | None = None

    # --- asyncio callbacks ---

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it.
        transport = cast(asyncio.Transport, transport)
        self.transport = transport
        self.gate = ReadGate(transport)
        listener = self.listener
        self.phase_tick = listener.clock.tick
        if not admit_connection(len(listener.connections), listener.max_connections):
            # Envoy's listener connection limit: closed at once, nothing read or sent.
            listener.stats.cx_overflow += 1
            self.closing = True
            self.parser = None
            transport.abort()
            return
        peer_check = listener.peer_check
        if peer_check is not None:
            accepted, self.peer = peer_check(transport)
            if not accepted:
                self.closing = True
                self.parser = None
                transport.abort()
                return
        self.listener.connections.add(self)
        if self.listener.draining:
            self.drain()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.parser = None
        self.reading = None
        self.listener.connections.discard(self)
        queue = self.queue
        while queue:
            queue.popleft().on_downstream_lost()

    def eof_received(self) -> bool:
        # As in Envoy: a client that closes its side has gone away. Requests
        # in flight are abandoned (flag DC) and the upstream work is dropped.
        return False

    def data_received(self, data: bytes) -> None:
        if self.parser is None:
            return  # closing: what the client still sends is read and dropped
        if self.backlog:
            self.backlog += data
            return
        if len(data) <= PIECE:
            self._feed_piece(data)  # nearly every read: one piece, nothing to slice
        else:
            self._feed(data)
        self._pump()

    def pause_writing(self) -> None:
        self.write_paused = True
        if self.queue:
            up = self.queue[0].up
            if up is not None and up.gate is not None:
                up.gate.hold(PEER_FULL)

    def resume_writing(self) -> None:
        self.write_paused = False
        if self.queue:
            up = self.queue[0].up
            if up is not None and up.gate is not None:
                up.gate.release(PEER_FULL)

    # --- httptools callbacks ---

    def on_message_begin(self) -> None:
        self.events += 1
        self.url = b""
        self.headers = []
        self.head_size = 0
        self.in_head = True
        if not self.queue:
            self.phase = HEAD
            self.phase_tick = self.listener.clock.tick

    def on_url(self, url: bytes) -> None:
        self.events += 1
        self.url += url
        self.head_size += len(url)
        if self.head_size > MAX_HEAD_BYTES:
            self._stop(431, f"the request line is longer than {MAX_HEAD_BYTES // 1024} KiB")

    def on_header(self, name: bytes, value: bytes) -> None:
        self.events += 1
        if not self.in_head:
            return  # a trailer field: trailers are not forwarded
        headers = self.headers
        headers.append((name, value))
        self.head_size += len(name) + len(value) + 4
        if len(headers) > MAX_HEADERS:
            self._stop(431, f"more than {MAX_HEADERS} header fields")
        if self.head_size > MAX_HEAD_BYTES:
            self._stop(431, f"the request head is larger than {MAX_HEAD_BYTES // 1024} KiB")

    def on_headers_complete(self) -> None:
        self.events += 1
        self.in_head = False
        parser = self.parser
        assert parser is not None
        result = parse_request_head(parser.get_method(), parser.get_http_version(), self.url, self.headers)
        if isinstance(result, Rejection):
            self._stop(result.status, result.reason)
        exchange = Exchange(self, result)
        self.reading = exchange
        self.queue.append(exchange)
        self.phase = BUSY
        self.body_tick = self.listener.clock.tick

    def on_body(self, body: bytes) -> None:
        self.events += 1
        reading = self.reading
        if reading is not None:
            self.body_tick = self.listener.clock.tick
            reading.on_request_body(body)

    def on_message_complete(self) -> None:
        self.events += 1
        reading = self.reading
        self.reading = None
        if reading is not None:
            reading.on_request_end()

    # --- used by Exchange ---

    def write(self, data: bytes) -> None:
        corked = self.corked
        if corked is not None:
            corked.append(data)
        elif not self.closed:
            self.transport.write(data)

    def cork(self) -> None:
        """Collect writes until `uncork`: a response head and a small body
        parsed from one upstream read then leave in one system call."""
        if self.corked is None:
            self.corked = []

    def uncork(self) -> None:
        corked = self.corked
        self.corked = None
        if corked and not self.closed:
            self.transport.write(corked[0] if len(corked) == 1 else b"".join(corked))

    def refuse(self) -> None:
        """Close at once, answering nothing: the connection is not allowed (plaintext under STRICT)."""
        self.closing = True
        self.parser = None
        self.corked = None
        self.backlog = b""
        self.transport.abort()

    def transport_close(self) -> None:
        """Close at once: a response was cut short and the client must see it."""
        self.uncork()
        self.closing = True
        self.parser = None
        self.transport.close()

    def exchange_finished(self, exchange: Exchange) -> None:
        queue = self.queue
        if not queue or queue[0] is not exchange:
            return
        queue.popleft()
        if self.closed or self.closing:
            return
        if not exchange.keep_alive or (self.draining and not queue):
            self.begin_close()
            return
        if not queue:
            self.phase = HEAD if self.in_head else IDLE
            self.phase_tick = self.listener.clock.tick
        if self.backlog and len(queue) <= MAX_QUEUED:
            data, self.backlog = self.backlog, b""
            self.gate.release(PIPELINE)
            self._feed(data)
        self._pump()

    # --- lifecycle ---

    def drain(self) -> None:
        """Stop taking new requests; close once the ones in flight are answered."""
        self.draining = True
        if not self.queue:
            self.begin_close()

    def begin_close(self) -> None:
        """Send FIN after the last response and linger reading until the client closes."""
        if self.closing or self.closed:
            return
        self.closing = True
        self.parser = None
        self.backlog = b""
        self.reading = None
        self.uncork()
        transport = self.transport
        if transport.can_write_eof():
            transport.write_eof()
            self.phase = LINGER
            self.phase_tick = self.listener.clock.tick
            self.gate.release_all()
        else:
            transport.close()

    def check_timeouts(self, tick: int) -> None:
        phase = self.phase
        if self.closed:
            return
        if self.queue and phase != LINGER:
            reading = self.reading
            if reading is not None and reading.started:
                self._check_body_idle(reading, tick)
            return
        elapsed = tick - self.phase_tick
        if phase == IDLE and elapsed > self.listener.idle_ticks:
            self.closing = True
            self.transport.close()
        elif phase == HEAD and elapsed > self.listener.head_ticks and not self.closing:
            body = b"meshkit sidecar: the request head did not arrive in time (request headers timeout).\n"
            self.write(render_response(408, [(b"content-type", b"text/plain; charset=utf-8")], body, close=True))
            self.begin_close()
        elif phase == LINGER and elapsed > self.listener.linger_ticks:
            self.transport.abort()

    def _check_body_idle(self, reading: Exchange, tick: int) -> None:
        """The stream idle timeout of the request body being read (dispatched already)."""
        listener = self.listener
        if self.gate.holds:
            # The sidecar itself holds reading (a connection being made, a full
            # upstream buffer): the client's silence is not the client's doing.
            self.body_tick = tick
        elif body_idle_expired(tick, self.body_tick, listener.body_idle_ticks):
            assert listener.stream_idle_timeout_s is not None
            if reading.on_body_idle_timeout(listener.stream_idle_timeout_s):
                listener.stats.rq_idle_timeout += 1

    # --- parsing ---

    def _feed(self, data: bytes) -> None:
        if len(data) <= PIECE:
            self._feed_piece(data)
            return
        view = memoryview(data)
        for offset in range(0, len(data), PIECE):
            if self.parser is None:
                return
            if len(self.queue) > MAX_QUEUED:
                self.backlog = bytes(view[offset:])
                self.gate.hold(PIPELINE)
                return
            self._feed_piece(view[offset : offset + PIECE])

    def _feed_piece(self, piece: bytes | memoryview) -> None:
        events = self.events
        parser = self.parser
        assert parser is not None
        rest = piece
        while True:
            try:
                parser.feed_data(rest)
            except HttpParserUpgrade as exc:
                # A request with Upgrade ended. Upgrade is hop-by-hop and was
                # not forwarded, so no protocol switch happens: parse on.
                rest = rest[exc.args[0] :]
                if rest:
                    continue
            except HttpParserError as exc:
                self._parse_failed(exc)
                return
            break
        if self.events != events:
            self.quiet_bytes = 0
            return
        # Bytes that produced no event are held inside httptools (a header
        # line or chunk extension still growing): bound them.
        self.quiet_bytes += len(piece)
        if self.quiet_bytes > MAX_HEAD_BYTES:
            if self.in_head:
                self._fail(Rejection(431, f"the request head is larger than {MAX_HEAD_BYTES // 1024} KiB"))
            else:
                self._fail(Rejection(400, f"a chunk header or trailer is larger than {MAX_HEAD_BYTES // 1024} KiB"))

    def _stop(self, status: int, reason: str) -> NoReturn:
        self.rejection = Rejection(status, reason)
        raise _Stop()

    def _parse_failed(self, exc: HttpParserError) -> None:
        rejection = self.rejection
        if rejection is None:
            if isinstance(exc, HttpParserCallbackError):
                log.error("internal error while reading a request on %s", self.listener.name, exc_info=exc.__context__)
                rejection = Rejection(500, "the sidecar failed while reading this request; its log has the details")
            else:
                rejection = Rejection(400, f"malformed request: {exc}")
        self._fail(rejection)

    def _fail(self, rejection: Rejection) -> None:
        """Parse nothing more; answer `rejection` after the requests before it."""
        self.parser = None
        self.backlog = b""
        self.gate.hold(STOPPED)
        reading = self.reading
        self.reading = None
        if reading is not None:
            if reading.phase is not QUEUED:
                reading.abort_request(rejection)
                return
            self.queue.remove(reading)
        self.queue.append(Exchange(self, None, rejection))

    def _pump(self) -> None:
        if self.pumping or self.closed:
            return
        self.pumping = True
        try:
            queue = self.queue
            while queue and queue[0].phase is QUEUED and not self.closing:
                queue[0].start()
        finally:
            self.pumping = False
        if self.closing:
            return
        gate = self.gate
        if len(self.queue) > 1:
            gate.hold(PIPELINE)
        elif gate.holds & PIPELINE:  # nearly always clear: no call then
            gate.release(PIPELINE)
