"""Connections from the sidecar to an endpoint, kept alive and pooled.

A new TCP connection per request would double the system calls of a
proxied request, so each endpoint has a `Pool` of idle keep-alive
connections (a bounded stack: the most recently used is the least likely to
have been closed by the server). An idle connection is still read from, so
a server's FIN or RST removes it from the pool as soon as the loop sees it;
the remaining race (the server closes just as a request is written) is
covered by one retry on a fresh connection, done by the exchange, for
requests without a body.

`UpstreamProtocol` parses responses with httptools and hands them to the
`Exchange` it currently serves; it knows nothing about routing or telemetry.
"""

from __future__ import annotations

import asyncio
from typing import cast, TYPE_CHECKING

from httptools import HttpParserError, HttpParserUpgrade, HttpResponseParser

from meshkit.sidecar.flow import PEER_FULL, ReadGate

if TYPE_CHECKING:
    from meshkit.sidecar.exchange import Exchange


class UpstreamProtocol(asyncio.Protocol):
    """One connection to an endpoint; serves one exchange at a time."""

    __slots__ = (
        "pool",
        "transport",
        "gate",
        "parser",
        "exchange",
        "headers",
        "reason",
        "informational",
        "in_body",
        "closed",
        "idle_tick",
    )

    def __init__(self, pool: Pool) -> None:
        self.pool = pool
        self.transport: asyncio.Transport | None = None
        self.gate: ReadGate | None = None
        self.parser = HttpResponseParser(self)
        self.exchange: Exchange | None = None
        self.headers: list[tuple[bytes, bytes]] = []
        self.reason = b""
        self.informational = False
        self.in_body = False
        self.closed = False
        self.idle_tick = 0

    # asyncio callbacks

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it.
        transport = cast(asyncio.Transport, transport)
        self.transport = transport
        self.gate = ReadGate(transport)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.pool.forget(self)
        exchange = self.exchange
        if exchange is not None:
            self.exchange = None
            exchange.on_upstream_lost(self)

    def eof_received(self) -> bool:
        return False

    def data_received(self, data: bytes) -> None:
        exchange = self.exchange
        if exchange is None:
            # Bytes nobody asked for: the connection's framing can no longer be trusted.
            self.close()
            return
        down = exchange.down
        down.cork()
        try:
            self.parser.feed_data(data)
        except HttpParserUpgrade:
            self._broken("the upstream switched protocols, which the sidecar does not relay")
        except HttpParserError as exc:
            self._broken(f"the upstream's response is not valid HTTP/1.1: {exc}")
        finally:
            down.uncork()

    def pause_writing(self) -> None:
        exchange = self.exchange
        if exchange is not None:
            exchange.down.gate.hold(PEER_FULL)

    def resume_writing(self) -> None:
        exchange = self.exchange
        if exchange is not None:
            exchange.down.gate.release(PEER_FULL)

    # httptools callbacks

    def on_message_begin(self) -> None:
        self.headers = []
        self.reason = b""
        self.in_body = False

    def on_status(self, reason: bytes) -> None:
        self.reason += reason

    def on_header(self, name: bytes, value: bytes) -> None:
        if not self.in_body:
            self.headers.append((name, value))

    def on_headers_complete(self) -> None:
        self.in_body = True
        status = self.parser.get_status_code()
        if status < 200:
            # 100 Continue and 103 Early Hints: the sidecar answers Expect
            # itself, so interim responses are dropped, as Envoy does.
            self.informational = True
            return
        exchange = self.exchange
        if exchange is None:
            raise _Unsolicited()
        body_follows = exchange.on_response_head(status, self.reason, self.parser.get_http_version(), self.headers)
        if not body_follows and exchange.head is not None and exchange.head.method == b"HEAD":
            # llhttp cannot be told that a response to HEAD has no body
            # (httptools does not expose that), so a fresh parser reads the
            # next response and this one is finished here.
            self.parser = HttpResponseParser(self)
            exchange.on_response_end()

    def on_body(self, body: bytes) -> None:
        exchange = self.exchange
        if exchange is None:
            raise _Unsolicited()
        exchange.on_response_body(body)

    def on_message_complete(self) -> None:
        if self.informational:
            self.informational = False
            return
        exchange = self.exchange
        if exchange is not None:
            exchange.on_response_end()

    # used by Exchange and Pool

    def usable(self) -> bool:
        return not self.closed and self.transport is not None and not self.transport.is_closing()

    def send(self, exchange: Exchange, data: bytes) -> None:
        self.exchange = exchange
        assert self.transport is not None
        self.transport.write(data)

    def close(self) -> None:
        """Close after what is buffered is written."""
        self.closed = True
        if self.transport is not None:
            self.transport.close()

    def abort(self) -> None:
        """Close at once: whatever is in flight on it is abandoned."""
        self.closed = True
        self.exchange = None
        if self.transport is not None:
            self.transport.abort()

    def _broken(self, reason: str) -> None:
        exchange = self.exchange
        self.abort()
        if exchange is not None:
            exchange.on_upstream_error(reason)


class _Unsolicited(Exception):
    """Response bytes arrived with no request waiting for them."""


class Pool:
    """Idle keep-alive connections to one endpoint, and the way to make new ones."""

    __slots__ = ("address", "port", "label", "max_idle", "connect_timeout_s", "idle", "closed", "_connecting")

    def __init__(self, address: str, port: int, max_idle: int, connect_timeout_s: float) -> None:
        self.address = address
        self.port = port
        self.label = f"{address}:{port}"
        self.max_idle = max_idle
        self.connect_timeout_s = connect_timeout_s
        self.idle: list[UpstreamProtocol] = []
        self.closed = False
        self._connecting: set[asyncio.Task[None]] = set()

    def acquire(self) -> UpstreamProtocol | None:
        """The most recently released live connection, or None."""
        idle = self.idle
        while idle:
            conn = idle.pop()
            if conn.usable():
                return conn
        return None

    def release(self, conn: UpstreamProtocol, tick: int) -> None:
        """Take a connection back after a complete response, or close it."""
        conn.exchange = None
        if self.closed or len(self.idle) >= self.max_idle or not conn.usable():
            conn.close()
            return
        assert conn.gate is not None
        conn.gate.release(PEER_FULL)
        conn.idle_tick = tick
        self.idle.append(conn)

    def forget(self, conn: UpstreamProtocol) -> None:
        """A connection has closed; drop it if it was idle here."""
        if conn in self.idle:
            self.idle.remove(conn)

    def connect(self, exchange: Exchange) -> None:
        """Open a new connection and hand it to `exchange` (or say why not)."""
        task = asyncio.get_running_loop().create_task(self._connect(exchange))
        self._connecting.add(task)
        task.add_done_callback(self._connecting.discard)

    async def _connect(self, exchange: Exchange) -> None:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(self.connect_timeout_s):
                _, conn = await loop.create_connection(lambda: UpstreamProtocol(self), self.address, self.port)
        except TimeoutError:
            exchange.on_connect_failed(self, f"connect to {self.label} timed out after {self.connect_timeout_s:g} s")
            return
        except asyncio.CancelledError:
            exchange.on_connect_failed(self, "the sidecar is shutting down")
            raise
        except OSError as exc:
            exchange.on_connect_failed(self, f"connect to {self.label} failed: {exc.strerror or exc}")
            return
        exchange.on_connected(conn)

    def expire(self, tick: int, max_idle_ticks: int) -> None:
        """Close connections unused for longer than the upstream idle timeout."""
        if not self.idle:
            return
        keep = []
        for conn in self.idle:
            if tick - conn.idle_tick > max_idle_ticks:
                conn.close()
            else:
                keep.append(conn)
        self.idle = keep

    def close(self, cancel_connects: bool = False) -> None:
        """Stop pooling: idle connections close now, busy ones when released.

        Connections being made finish and are then closed on release, so a
        request waiting for one is answered; at shutdown they are cancelled
        (and their requests answered UF) instead.
        """
        self.closed = True
        for conn in self.idle:
            conn.close()
        self.idle = []
        if cancel_connects:
            for task in list(self._connecting):
                task.cancel()


class PoolSet:
    """One pool per endpoint address, shared by every snapshot that names it."""

    def __init__(self, max_idle: int, connect_timeout_s: float) -> None:
        self._pools: dict[tuple[str, int], Pool] = {}
        self._max_idle = max_idle
        self._connect_timeout_s = connect_timeout_s

    def get(self, address: str, port: int) -> Pool:
        key = (address, port)
        pool = self._pools.get(key)
        if pool is None:
            pool = self._pools[key] = Pool(address, port, self._max_idle, self._connect_timeout_s)
        return pool

    def retain(self, keep: set[tuple[str, int]]) -> None:
        """Close the pools of endpoints the new snapshot no longer has."""
        for key in [k for k in self._pools if k not in keep]:
            self._pools.pop(key).close()

    def expire(self, tick: int, max_idle_ticks: int) -> None:
        for pool in self._pools.values():
            pool.expire(tick, max_idle_ticks)

    def close(self) -> None:
        for pool in self._pools.values():
            pool.close(cancel_connects=True)
        self._pools.clear()
