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

The pools of one outbound cluster share a `ConnectionLimit`: the
DestinationRule's connectionPool as Envoy enforces it
(https://www.envoyproxy.io/docs/envoy/latest/intro/arch_overview/upstream/circuit_breaking):

- `max_connections` (tcp.maxConnections): connections open or being opened
  to all endpoints of the cluster. An HTTP/1.1 connection carries one
  request at a time, so N connections means at most N requests at the apps.
- `max_pending` (http.http1MaxPendingRequests): requests waiting for a
  connection, whether one is being opened for them or they wait for a busy
  one to come free. A request that would be one more gets 503 UO at once.
- `max_per_connection` (http.maxRequestsPerConnection): a connection is
  closed after this many requests (0: no limit).

A connection that comes free goes to the oldest waiting request of the
cluster: reused when it is to the same endpoint, else closed so that one to
the waiting request's endpoint can be opened within the limit.

A pool to a sidecar endpoint may be mTLS (`TlsTarget`, decided per endpoint
by meshkit.sidecar.outbound_tls): its connections are opened with the sidecar's
current client context (a rotated certificate is used from the next
connection on; open ones keep theirs), and the server must prove the
endpoint's identity, spiffe://<td>/ns/<namespace>/sa/<service account>, or
the connection is closed before the request is written. Without a
certificate the pool refuses to connect rather than fall back to plaintext.
A handshake costs far more than a request, so mTLS connections stay pooled
for longer (`TlsTarget.idle_ticks`) than plaintext ones, and every handshake
is counted (TlsStats.outbound_handshakes) so that "steady traffic opens no
new handshakes" can be checked. For the same reason an mTLS pool opens at
most `MAX_HANDSHAKES_IN_FLIGHT` connections at a time: a request that finds
no idle connection while that many handshakes are under way waits for the
next connection to come free (a request lasts far less than a handshake),
so a stall does not turn into a storm of handshakes that makes it worse.
"""

from __future__ import annotations

import asyncio
import ssl
from collections import deque
from typing import cast, Protocol, TYPE_CHECKING

from httptools import HttpParserError, HttpParserUpgrade, HttpResponseParser

from meshkit.core.limits import ADMITTED, admit_waiting
from meshkit.security.errors import PeerRefused
from meshkit.security.identity import Identity
from meshkit.security.tls import verified_peer
from meshkit.sidecar.flow import PEER_FULL, ReadGate

if TYPE_CHECKING:
    from meshkit.sidecar.identity import WorkloadIdentity

MAX_HANDSHAKES_IN_FLIGHT = 2


class TlsTarget:
    """mTLS to one endpoint: the certificate this sidecar presents, the identity the endpoint must prove."""

    __slots__ = ("identity", "expected", "expected_uri", "idle_ticks", "max_idle")

    def __init__(self, identity: WorkloadIdentity, expected: Identity | None, idle_ticks: int, max_idle: int = 0) -> None:
        self.identity = identity
        self.expected = expected  # None: the control plane named no service account, so no connection
        self.expected_uri = expected.uri if expected is not None else ""
        self.idle_ticks = idle_ticks
        # Idle connections kept per endpoint, at least: a burst's connections
        # stay pooled instead of being closed and handshaken again.
        self.max_idle = max_idle

    def __eq__(self, other: object) -> bool:
        return isinstance(other, TlsTarget) and other.identity is self.identity and other.expected == self.expected

    def __hash__(self) -> int:
        return hash(self.expected)


class UpstreamUser(Protocol):
    """What an upstream connection serves: a proxied request, or a mirrored copy."""

    def cork(self) -> None: ...
    def uncork(self) -> None: ...
    def hold_reading(self) -> None: ...
    def release_reading(self) -> None: ...
    def answers_head(self) -> bool: ...
    def on_connected(self, conn: UpstreamProtocol, attempt: int) -> None: ...
    def on_connect_failed(self, pool: Pool, reason: str, attempt: int) -> None: ...
    def on_response_head(self, status: int, reason: bytes, version: str, headers: list[tuple[bytes, bytes]]) -> bool: ...
    def on_response_body(self, chunk: bytes) -> None: ...
    def on_response_end(self) -> None: ...
    def on_upstream_lost(self, conn: UpstreamProtocol) -> None: ...
    def on_upstream_error(self, reason: str) -> None: ...


class Waiter(UpstreamUser, Protocol):
    """A proxied request as the pools see it: it may wait for a connection of the cluster.

    `attempt` numbers its tries (a connection opened for an older one is
    stale), `waiting` is the limit it is counted against while it waits.
    """

    attempt: int
    waiting: ConnectionLimit | None

    @property
    def finished(self) -> bool: ...

    def on_pooled(self, conn: UpstreamProtocol) -> None: ...


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
        "counted",
        "served",
    )

    def __init__(self, pool: Pool) -> None:
        self.pool = pool
        self.transport: asyncio.Transport | None = None
        self.gate: ReadGate | None = None
        self.parser = HttpResponseParser(self)
        self.exchange: UpstreamUser | None = None
        self.headers: list[tuple[bytes, bytes]] = []
        self.reason = b""
        self.informational = False
        self.in_body = False
        self.closed = False
        self.idle_tick = 0
        # Counted against the cluster's connection limit until it closes.
        self.counted = False
        self.served = 0

    # asyncio callbacks

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it.
        transport = cast(asyncio.Transport, transport)
        self.transport = transport
        self.gate = ReadGate(transport)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.pool.forget(self)
        self.pool.uncount(self)
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
        exchange.cork()
        try:
            self.parser.feed_data(data)
        except HttpParserUpgrade:
            self._broken("the upstream switched protocols, which the sidecar does not relay")
        except HttpParserError as exc:
            self._broken(f"the upstream's response is not valid HTTP/1.1: {exc}")
        finally:
            exchange.uncork()

    def pause_writing(self) -> None:
        exchange = self.exchange
        if exchange is not None:
            exchange.hold_reading()

    def resume_writing(self) -> None:
        exchange = self.exchange
        if exchange is not None:
            exchange.release_reading()

    # httptools callbacks. There is no on_message_begin (one callback fewer per
    # response): the head's fields are handed over and started afresh in
    # on_headers_complete, and `in_body` is cleared where a message ends.

    def on_status(self, reason: bytes) -> None:
        self.reason += reason

    def on_header(self, name: bytes, value: bytes) -> None:
        if not self.in_body:
            self.headers.append((name, value))

    def on_headers_complete(self) -> None:
        self.in_body = True  # header fields from here on are trailers, not relayed
        headers, reason = self.headers, self.reason
        self.headers, self.reason = [], b""
        status = self.parser.get_status_code()
        if status < 200:
            # 100 Continue and 103 Early Hints: the sidecar answers Expect
            # itself, so interim responses are dropped, as Envoy does.
            self.informational = True
            return
        exchange = self.exchange
        if exchange is None:
            raise _Unsolicited()
        body_follows = exchange.on_response_head(status, reason, self.parser.get_http_version(), headers)
        if not body_follows and exchange.answers_head():
            # llhttp cannot be told that a response to HEAD has no body
            # (httptools does not expose that), so a fresh parser reads the
            # next response and this one is finished here.
            self.parser = HttpResponseParser(self)
            self.in_body = False
            exchange.on_response_end()

    def on_body(self, body: bytes) -> None:
        exchange = self.exchange
        if exchange is None:
            raise _Unsolicited()
        exchange.on_response_body(body)

    def on_message_complete(self) -> None:
        self.in_body = False
        if self.informational:
            self.informational = False
            return
        exchange = self.exchange
        if exchange is not None:
            exchange.on_response_end()

    # used by Exchange and Pool

    def usable(self) -> bool:
        return not self.closed and self.transport is not None and not self.transport.is_closing()

    def send(self, exchange: UpstreamUser, data: bytes) -> None:
        self.exchange = exchange
        self.served += 1
        assert self.transport is not None
        self.transport.write(data)

    def close(self) -> None:
        """Close after what is buffered is written."""
        self.closed = True
        self.pool.uncount(self)
        if self.transport is not None:
            self.transport.close()

    def abort(self) -> None:
        """Close at once: whatever is in flight on it is abandoned."""
        self.closed = True
        self.exchange = None
        self.pool.uncount(self)
        if self.transport is not None:
            self.transport.abort()

    def _broken(self, reason: str) -> None:
        exchange = self.exchange
        self.abort()
        if exchange is not None:
            exchange.on_upstream_error(reason)


class _Unsolicited(Exception):
    """Response bytes arrived with no request waiting for them."""


class ConnectionLimit:
    """The connection pool limits of one cluster, shared by its endpoints' pools."""

    __slots__ = ("max_connections", "max_pending", "max_per_connection", "open", "pending", "waiting", "pools")

    def __init__(self, max_connections: int, max_pending: int, max_per_connection: int) -> None:
        self.max_connections = max_connections
        self.max_pending = max_pending
        self.max_per_connection = max_per_connection
        self.open = 0  # connections open or being opened
        self.pending = 0  # requests waiting for a connection (being opened, or queued)
        self.waiting: deque[tuple[Waiter, Pool]] = deque()
        self.pools: list[Pool] = []  # the cluster's pools, to find an idle connection to give up

    def close_an_idle_one(self) -> bool:
        """At the connection limit: close an idle connection of the cluster, if there is one."""
        for pool in self.pools:
            conn = pool.acquire()
            if conn is not None:
                conn.close()
                return True
        return False

    def shed_idle(self) -> None:
        """Close idle connections above a lowered limit, so a new maxConnections holds at once.

        Envoy builds a new cluster (and new pools) when its circuit-breaker
        settings change; meshkit keeps the pools, so without this the
        connections opened under the old limit would go on serving: a
        learner who applies a breaker after some load would see no effect.
        Busy connections above the limit close when released (Pool.release).
        """
        for pool in self.pools:
            while self.open > self.max_connections:
                conn = pool.acquire()
                if conn is None:
                    break
                conn.close()

    def next_waiting(self) -> tuple[Waiter, Pool] | None:
        """The oldest request still waiting for a connection."""
        waiting = self.waiting
        while waiting:
            exchange, pool = waiting.popleft()
            if not exchange.finished:
                return exchange, pool
        return None

    def open_for_waiting(self) -> None:
        """A connection slot came free: open one for the oldest waiting request."""
        if self.open < self.max_connections:
            found = self.next_waiting()
            if found is not None:
                exchange, pool = found
                pool.connect(exchange, exchange.attempt)


class Pool:
    """Idle keep-alive connections to one endpoint, and the way to make new ones."""

    __slots__ = ("address", "port", "label", "max_idle", "connect_timeout_s", "idle", "closed", "limit", "tls", "_connecting")

    def __init__(
        self,
        address: str,
        port: int,
        max_idle: int,
        connect_timeout_s: float,
        limit: ConnectionLimit | None = None,
        tls: TlsTarget | None = None,
    ) -> None:
        self.address = address
        self.port = port
        self.label = f"{address}:{port}"
        self.max_idle = max_idle
        self.connect_timeout_s = connect_timeout_s
        self.idle: list[UpstreamProtocol] = []
        self.closed = False
        self.limit = limit
        self.tls = tls
        if tls is not None:
            self.max_idle = max(max_idle, tls.max_idle)
        self._connecting: set[asyncio.Task[None]] = set()

    def acquire(self) -> UpstreamProtocol | None:
        """The most recently released live connection, or None."""
        idle = self.idle
        while idle:
            conn = idle.pop()
            if conn.usable():
                return conn
        return None

    def request(self, exchange: Waiter) -> bool:
        """Give `exchange` a connection now, soon, or never (False: the limits say 503 UO).

        An idle connection is handed over at once; else, within the
        cluster's limits, one is opened or the request waits for one.
        """
        conn = self.acquire()
        if conn is not None:
            exchange.on_pooled(conn)
            return True
        limit = self.limit
        if limit is None:
            self.connect(exchange, exchange.attempt)
            return True
        if admit_waiting(limit.pending, limit.max_pending) is not ADMITTED:
            return False
        limit.pending += 1
        exchange.waiting = limit
        if self.tls is not None and len(self._connecting) >= MAX_HANDSHAKES_IN_FLIGHT:
            limit.waiting.append((exchange, self))
        elif limit.open < limit.max_connections or limit.close_an_idle_one():
            self.connect(exchange, exchange.attempt)
        else:
            limit.waiting.append((exchange, self))
        return True

    def release(self, conn: UpstreamProtocol, tick: int) -> None:
        """Take a connection back after a complete response, or close it."""
        conn.exchange = None
        limit = self.limit
        if limit is not None:
            if (limit.max_per_connection and conn.served >= limit.max_per_connection) or limit.open > limit.max_connections:
                conn.close()
                return
            if limit.waiting and conn.usable() and not self.closed:
                found = limit.next_waiting()
                if found is not None:
                    if found[1] is self:
                        found[0].on_pooled(conn)
                        return
                    limit.waiting.appendleft(found)
                    if limit.open >= limit.max_connections:
                        # The oldest waiting request is for another endpoint: closing
                        # this connection frees the slot its own connection needs.
                        conn.close()
                        return
                    # Not at the limit: the request waits for its own endpoint's
                    # handshake; a request of this pool waiting behind it gets this one.
                    mine = self._take_waiter()
                    if mine is not None:
                        mine.on_pooled(conn)
                        return
        if self.closed or len(self.idle) >= self.max_idle or not conn.usable():
            conn.close()
            return
        gate = conn.gate
        assert gate is not None
        if gate.holds & PEER_FULL:  # nearly always clear: no call then
            gate.release(PEER_FULL)
        conn.idle_tick = tick
        self.idle.append(conn)

    def _take_waiter(self) -> Waiter | None:
        """The oldest unfinished request waiting for a connection of this pool, taken off the queue."""
        limit = self.limit
        if limit is None:
            return None
        for entry in limit.waiting:
            if entry[1] is self and not entry[0].finished:
                limit.waiting.remove(entry)
                return entry[0]
        return None

    def _connect_done(self, task: asyncio.Task[None]) -> None:
        """A connection attempt ended: an mTLS pool opens the next one for a request that waited for it."""
        self._connecting.discard(task)
        limit = self.limit
        if self.tls is None or limit is None or not limit.waiting or self.closed:
            return
        while len(self._connecting) < MAX_HANDSHAKES_IN_FLIGHT and limit.open < limit.max_connections:
            exchange = self._take_waiter()
            if exchange is None:
                return
            self.connect(exchange, exchange.attempt)

    def forget(self, conn: UpstreamProtocol) -> None:
        """A connection has closed; drop it if it was idle here."""
        if conn in self.idle:
            self.idle.remove(conn)

    def uncount(self, conn: UpstreamProtocol) -> None:
        """A connection is closing: its slot in the cluster's limit is free again."""
        if conn.counted:
            conn.counted = False
            limit = self.limit
            if limit is not None:
                limit.open -= 1
                if limit.waiting:
                    limit.open_for_waiting()

    def connect(self, user: UpstreamUser, attempt: int = 0) -> None:
        """Open a new connection and hand it to `user` (or say why not)."""
        if self.limit is not None:
            self.limit.open += 1
        task = asyncio.get_running_loop().create_task(self._connect(user, attempt))
        self._connecting.add(task)
        task.add_done_callback(self._connect_done)

    async def _connect(self, user: UpstreamUser, attempt: int) -> None:
        loop = asyncio.get_running_loop()
        counted = self.limit is not None
        tls = self.tls
        context: ssl.SSLContext | None = None
        if tls is not None:
            refusal = None
            context = tls.identity.client_context
            if context is None:
                tls.identity.stats.outbound_no_certificate += 1
                refusal = f"mTLS to {self.label} is required but this sidecar has no workload certificate yet; nothing is sent in plaintext"
            elif tls.expected is None:
                refusal = f"mTLS to {self.label} is required but the control plane named no service account for it, so its identity cannot be checked"
            if refusal is not None:
                self._connect_failed(counted)
                user.on_connect_failed(self, refusal, attempt)
                return
            tls.identity.stats.outbound_handshakes += 1
        try:
            async with asyncio.timeout(self.connect_timeout_s):
                if context is None:
                    _, conn = await loop.create_connection(lambda: UpstreamProtocol(self), self.address, self.port)
                else:
                    _, conn = await loop.create_connection(
                        lambda: UpstreamProtocol(self), self.address, self.port, ssl=context, server_hostname=""
                    )
        except ssl.SSLError as exc:
            assert tls is not None
            tls.identity.stats.outbound_handshake_failures += 1
            self._connect_failed(counted)
            user.on_connect_failed(self, f"mTLS handshake with {self.label} failed: {exc.reason or exc}", attempt)
            return
        except TimeoutError:
            self._connect_failed(counted)
            user.on_connect_failed(self, f"connect to {self.label} timed out after {self.connect_timeout_s:g} s", attempt)
            return
        except asyncio.CancelledError:
            self._connect_failed(counted)
            user.on_connect_failed(self, "the sidecar is shutting down", attempt)
            raise
        except OSError as exc:
            self._connect_failed(counted)
            user.on_connect_failed(self, f"connect to {self.label} failed: {exc.strerror or exc}", attempt)
            return
        if tls is not None:
            refusal = self._check_server(conn, tls)
            if refusal is not None:
                conn.abort()
                self._connect_failed(counted)
                user.on_connect_failed(self, refusal, attempt)
                return
        conn.counted = counted
        user.on_connected(conn, attempt)

    def _check_server(self, conn: UpstreamProtocol, tls: TlsTarget) -> str | None:
        """None when the server proved the endpoint's identity; else why the connection is dropped."""
        assert conn.transport is not None and tls.expected is not None
        sslobj = conn.transport.get_extra_info("ssl_object")
        try:
            if sslobj is None:
                raise PeerRefused("no TLS session")
            peer = verified_peer(sslobj, tls.expected.trust_domain)
        except PeerRefused as exc:
            tls.identity.stats.outbound_identity_refused += 1
            return f"mTLS peer at {self.label} refused: {exc}"
        if peer != tls.expected:
            tls.identity.stats.outbound_identity_refused += 1
            return f"mTLS peer at {self.label} is {peer.uri}, but the endpoint's identity is {tls.expected.uri}"
        return None

    def _connect_failed(self, counted: bool) -> None:
        limit = self.limit
        if counted and limit is not None:
            limit.open -= 1
            if limit.waiting:
                limit.open_for_waiting()

    def expire(self, tick: int, max_idle_ticks: int) -> None:
        """Close connections unused for longer than the upstream idle timeout (mTLS: the mesh's, longer)."""
        if not self.idle:
            return
        if self.tls is not None:
            max_idle_ticks = self.tls.idle_ticks
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
        idle, self.idle = self.idle, []
        for conn in idle:
            conn.close()
        if cancel_connects:
            for task in list(self._connecting):
                task.cancel()
