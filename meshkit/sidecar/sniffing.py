"""The inbound listening socket: plaintext and mTLS on one port, told apart by the first byte.

One port serves both, as Istio's inbound listener does: the first byte of a
connection tells them apart (0x16 opens a TLS handshake record, RFC 8446
5.1; an HTTP request starts with a method's letter). `SniffingServer` peeks
at that byte without consuming it (MSG_PEEK), then hands the socket to the
event loop's own transport, with the server SSL context for TLS
(`loop.connect_accepted_socket`), so the TLS work is uvloop's, not Python's.
The connection's fate is decided there, before any HTTP byte is read, from
the workload's effective PeerAuthentication mode:

    STRICT      plaintext closed, nothing sent back; mTLS served
    PERMISSIVE  both served, each request marked with how it came
    DISABLE     plaintext served; a TLS handshake closed

A TLS connection needs the sidecar's certificate: until it has one, TLS is
refused (fail closed). Who the peer is, is read next, by the listener's
peer check (meshkit.sidecar.peer_check).

When accept() runs out of descriptors or memory (EMFILE, ENFILE...), the
listening socket stays readable: accepting stops for a while
(meshkit.core.limits.accept_pause) instead of spinning, is logged at most
once a second, and is counted (ListenerStats.accept_paused).
"""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
from collections.abc import Callable

from meshkit.core.limits import accept_log_due, accept_pause
from meshkit.sidecar.identity import WorkloadIdentity
from meshkit.sidecar.telemetry import ListenerStats

log = logging.getLogger("meshkit.sidecar")

TLS_HANDSHAKE = 0x16  # TLS record content type "handshake" (RFC 8446 5.1)
ACCEPT_BATCH = 64


class SniffingServer:
    """The inbound listening socket: accepts, peeks at the first byte, hands over plaintext or TLS.

    Quacks like the asyncio server `Sidecar` keeps for its other listeners
    (`sockets`, `close`, `wait_closed`).
    """

    def __init__(
        self,
        identity: WorkloadIdentity,
        mode: Callable[[], str | None],
        first_byte_timeout_s: float,
        handshake_timeout_s: float,
        stats: ListenerStats | None = None,
    ) -> None:
        # A connection that sends nothing is an idle connection: closed after the idle timeout.
        self.first_byte_timeout_s = first_byte_timeout_s
        self.identity = identity
        self.mode = mode  # the effective mode now; None before the first snapshot
        self.handshake_timeout_s = handshake_timeout_s
        self.sockets: list[socket.socket] = []
        self.factory: Callable[[], asyncio.Protocol] | None = None
        self._sock: socket.socket | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._sniffing: dict[socket.socket, asyncio.TimerHandle] = {}
        self._handing_over: set[asyncio.Task[None]] = set()
        self.stats = stats if stats is not None else ListenerStats("inbound")
        self._resume: asyncio.TimerHandle | None = None  # set while accepting is paused
        self._logged_at: float | None = None

    def listen(self, host: str, port: int, backlog: int, protocol_factory: Callable[[], asyncio.Protocol]) -> None:
        """Bind and start accepting connections for `protocol_factory`; OSError when the port cannot be had."""
        loop = asyncio.get_running_loop()
        self.factory = protocol_factory
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((host, port))
            sock.listen(backlog)
            sock.setblocking(False)
        except OSError:
            sock.close()
            raise
        self._loop = loop
        self._sock = sock
        self.sockets = [sock]
        loop.add_reader(sock.fileno(), self._accept)

    def close(self) -> None:
        loop, sock = self._loop, self._sock
        if loop is None or sock is None:
            return
        self._sock = None
        if self._resume is not None:
            self._resume.cancel()
            self._resume = None
        loop.remove_reader(sock.fileno())
        sock.close()
        for conn in list(self._sniffing):
            self._stop_sniffing(conn)
            conn.close()
        for task in list(self._handing_over):
            task.cancel()

    async def wait_closed(self) -> None:
        if self._handing_over:
            await asyncio.gather(*self._handing_over, return_exceptions=True)

    # --- accepting and sniffing ---

    def _accept(self) -> None:
        sock, loop = self._sock, self._loop
        assert loop is not None
        for _ in range(ACCEPT_BATCH):
            if sock is None:
                return
            try:
                conn, _ = sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                pause = accept_pause(exc.errno)
                if pause is None:
                    continue  # that connection's own failure (reset before accept): take the next
                self._pause_accepting(sock, loop, pause, exc)
                return
            conn.setblocking(False)
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._sniffing[conn] = loop.call_later(self.first_byte_timeout_s, self._sniff_timeout, conn)
            loop.add_reader(conn.fileno(), self._sniff, conn)

    def _pause_accepting(self, sock: socket.socket, loop: asyncio.AbstractEventLoop, pause: float, exc: OSError) -> None:
        """Out of descriptors or memory: stop watching the listening socket for `pause` seconds."""
        self.stats.accept_paused += 1
        now = loop.time()
        if accept_log_due(now, self._logged_at):
            self._logged_at = now
            log.error(
                "inbound listener cannot accept: %s; pausing accepts for %g s (%d pauses so far)",
                exc.strerror or exc, pause, self.stats.accept_paused,
            )
        loop.remove_reader(sock.fileno())
        self._resume = loop.call_later(pause, self._resume_accepting)

    def _resume_accepting(self) -> None:
        self._resume = None
        sock, loop = self._sock, self._loop
        if sock is not None and loop is not None:
            loop.add_reader(sock.fileno(), self._accept)
            self._accept()

    def _stop_sniffing(self, conn: socket.socket) -> None:
        timer = self._sniffing.pop(conn, None)
        if timer is not None:
            timer.cancel()
        if self._loop is not None and conn.fileno() >= 0:
            self._loop.remove_reader(conn.fileno())

    def _sniff_timeout(self, conn: socket.socket) -> None:
        """Nothing arrived within the idle timeout: close without a word."""
        self._sniffing.pop(conn, None)
        if self._loop is not None and conn.fileno() >= 0:
            self._loop.remove_reader(conn.fileno())
        conn.close()

    def _sniff(self, conn: socket.socket) -> None:
        try:
            first = conn.recv(1, socket.MSG_PEEK)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            first = b""
        self._stop_sniffing(conn)
        if not first:
            conn.close()
            return
        stats = self.identity.stats
        mode = self.mode()
        context: ssl.SSLContext | None = None
        if first[0] == TLS_HANDSHAKE:
            context = self.identity.server_context
            if context is None or mode == "DISABLE":
                # No certificate yet (fail closed), or the mode takes plaintext only.
                stats.inbound_tls_refused += 1
                conn.close()
                return
            stats.inbound_handshakes += 1
        elif mode == "STRICT":
            # STRICT: plaintext is closed before any HTTP byte goes back.
            stats.inbound_plaintext_refused += 1
            conn.close()
            return
        else:
            stats.inbound_plaintext += 1
        assert self._loop is not None
        task = self._loop.create_task(self._hand_over(conn, context))
        self._handing_over.add(task)
        task.add_done_callback(self._handing_over.discard)

    async def _hand_over(self, conn: socket.socket, context: ssl.SSLContext | None) -> None:
        loop = asyncio.get_running_loop()
        assert self.factory is not None
        try:
            if context is None:
                await loop.connect_accepted_socket(self.factory, conn)
            else:
                await loop.connect_accepted_socket(
                    self.factory, conn, ssl=context, ssl_handshake_timeout=self.handshake_timeout_s
                )
        except asyncio.CancelledError:
            conn.close()
            raise
        except (OSError, TimeoutError, ConnectionError) as exc:
            # ssl.SSLError is an OSError: a handshake that failed (no client
            # certificate, a foreign CA, an expired certificate...).
            if context is not None:
                self.identity.stats.inbound_handshake_failures += 1
                log.debug("inbound TLS handshake failed: %s", exc)
            conn.close()
