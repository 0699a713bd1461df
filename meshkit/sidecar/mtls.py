"""The inbound port's security: plaintext or mTLS on one socket, who called, and whether they may.

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
refused (fail closed). After the handshake, which verified the chain against
the trust bundle, `PeerCheck` reads the peer's identity
(meshkit.security.tls.verified_peer: one URI SAN, this trust domain) and
closes the connection when it is not a workload of this mesh.

Per request (`admit`, called by the inbound handler): the mode is checked
again (a kept-alive plaintext connection is closed when the mode turns
STRICT, as a listener drains on a config change), the path is normalised
(meshkit.core.paths: what the policy judges is what the app receives), and
the AuthorizationPolicies that select the workload decide
(meshkit.core.authz). Callers without mTLS have no principal, so identity
rules never match them.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import socket
import ssl
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, NamedTuple

from meshkit.core.authz import Decision, Policy, Request, applicable_policies, authorize, compile_policies, policy_headers
from meshkit.core.framing import Rejection
from meshkit.core.paths import normalize_target
from meshkit.core.peer_auth import MtlsMode, accepts, client_uses_mtls, effective_mode
from meshkit.core.snapshot import Endpoint, Snapshot, service_host
from meshkit.security.errors import InvalidIdentity, PeerRefused
from meshkit.security.identity import Identity
from meshkit.security.tls import verified_peer
from meshkit.sidecar.bootstrap import Workload
from meshkit.sidecar.identity import WorkloadIdentity, certificate_hash
from meshkit.sidecar.upstream import TlsTarget

if TYPE_CHECKING:
    from meshkit.core.framing import RequestHead
    from meshkit.sidecar.downstream import Listener
    from meshkit.sidecar.exchange import Exchange

log = logging.getLogger("meshkit.sidecar")

TLS_HANDSHAKE = 0x16  # TLS record content type "handshake" (RFC 8446 5.1)
ACCEPT_BATCH = 64
XFCC = b"x-forwarded-client-cert"


class PeerInfo:
    """The verified caller on one mTLS connection."""

    __slots__ = ("uri", "principal", "namespace", "service_account", "xfcc")

    def __init__(self, uri: str, principal: str, namespace: str, service_account: str, xfcc: bytes) -> None:
        self.uri = uri
        self.principal = principal
        self.namespace = namespace
        self.service_account = service_account
        self.xfcc = xfcc  # the whole header line the app receives


class InboundSecurity(NamedTuple):
    """What one snapshot says about the inbound side: the mode and the compiled policies."""

    mode: MtlsMode
    policies: tuple[Policy, ...]
    port: int  # destination.port for policies: the workload's service port


def inbound_security(snapshot: Snapshot, workload: Workload, inbound_port: int | None) -> InboundSecurity:
    """The inbound side's mode and policies for `snapshot`; raises ConfigError for a policy meshkit cannot enforce."""
    mode = effective_mode(snapshot.peer_authentications, workload.namespace, workload.labels)
    policies = compile_policies(applicable_policies(snapshot.authorization_policies, workload.namespace, workload.labels))
    own = snapshot.services.get(service_host(workload.service, workload.namespace))
    port = own.port if own is not None else (inbound_port or 0)
    return InboundSecurity(mode, policies, port)


class PeerCheck:
    """After a TLS handshake: who the peer is, or a refusal when it is no workload of this mesh."""

    def __init__(self, identity: WorkloadIdentity) -> None:
        self.identity = identity
        self.by = identity.uri.encode("ascii")

    def __call__(self, transport: Any) -> tuple[bool, PeerInfo | None]:
        """(accepted, peer): peer is None for a plaintext connection."""
        sslobj = transport.get_extra_info("ssl_object")
        if sslobj is None:
            return True, None
        stats = self.identity.stats
        try:
            peer = verified_peer(sslobj, self.identity.trust_domain)
            der = sslobj.getpeercert(binary_form=True) or b""
        except (PeerRefused, ValueError) as exc:
            stats.inbound_identity_refused += 1
            log.info("inbound mTLS connection refused after the handshake: %s", exc)
            return False, None
        uri = peer.uri.encode("ascii")
        line = b"%s: By=%s;Hash=%s;URI=%s\r\n" % (XFCC, self.by, certificate_hash(der).encode("ascii"), uri)
        return True, PeerInfo(peer.uri, peer.principal, peer.namespace, peer.service_account, line)


class SniffingServer:
    """The inbound listening socket: accepts, peeks at the first byte, hands over plaintext or TLS.

    Quacks like the asyncio server `Sidecar` keeps for its other listeners
    (`sockets`, `close`, `wait_closed`).
    """

    def __init__(
        self,
        listener: Listener,
        identity: WorkloadIdentity,
        mode: Callable[[], str | None],
        first_byte_timeout_s: float,
        handshake_timeout_s: float,
    ) -> None:
        self.listener = listener
        # A connection that sends nothing is an idle connection: closed after the idle timeout.
        self.first_byte_timeout_s = first_byte_timeout_s
        self.identity = identity
        self.mode = mode  # the effective mode now; None before the first snapshot
        self.handshake_timeout_s = handshake_timeout_s
        self.sockets: list[socket.socket] = []
        self.factory: Callable[[], asyncio.Protocol] = listener.protocol
        self._sock: socket.socket | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._sniffing: dict[socket.socket, asyncio.TimerHandle] = {}
        self._handing_over: set[asyncio.Task[None]] = set()

    def listen(self, host: str, port: int, backlog: int, protocol_factory: Callable[[], asyncio.Protocol] | None = None) -> None:
        """Bind and start accepting; OSError when the port cannot be had."""
        loop = asyncio.get_running_loop()
        self.factory = protocol_factory or self.listener.protocol
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
                if exc.errno in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM):
                    log.error("inbound listener cannot accept: %s", exc.strerror or exc)
                return
            conn.setblocking(False)
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._sniffing[conn] = loop.call_later(self.first_byte_timeout_s, self._sniff_timeout, conn)
            loop.add_reader(conn.fileno(), self._sniff, conn)

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


def admit(exchange: Exchange, head: RequestHead, security: InboundSecurity) -> bytes | None:
    """Check one inbound request; the header lines the app gets (XFCC), or None when it was answered or refused."""
    down = exchange.down
    peer: PeerInfo | None = down.peer
    if not accepts(security.mode.mode, peer is not None):
        # The mode changed under a kept-alive connection: close it without a word.
        exchange.route = None
        down.refuse()
        return None
    normalized = normalize_target(head.path)
    if type(normalized) is Rejection:
        exchange.respond_local("DPE", normalized.reason, status=normalized.status)
        return None
    head.path = normalized.target  # type: ignore[union-attr]
    policies = security.policies
    if policies:
        decision = authorize(
            policies,
            Request(
                normalized.path,  # type: ignore[union-attr]
                head.method.decode("latin-1"),
                head.authority.decode("latin-1"),
                security.port,
                policy_headers(head.headers),
                None if peer is None else peer.principal,
                None if peer is None else peer.namespace,
            ),
        )
        if not decision.allowed:
            exchange.respond_denied(describe_denial(decision))
            return None
    return b"" if peer is None else peer.xfcc


def describe_denial(decision: Decision) -> str:
    """Which policy denied, in Envoy's response code details: the DENY policy that matched, or
    `none` when ALLOW policies exist and none matched."""
    return f"rbac_access_denied_matched_policy[{decision.policy or 'none'}]"


class MeshTls:
    """The outbound side's mTLS choice per endpoint: DestinationRule tls.mode, else auto mTLS.

    Auto mTLS (Istio's default) dials mTLS to an endpoint that has a sidecar,
    unless its effective PeerAuthentication mode is DISABLE; the
    PeerAuthentications come with each snapshot (`peer_authentications`, set
    before the clusters are compiled). The endpoint must prove the identity
    of its namespace and service account.
    """

    def __init__(self, identity: WorkloadIdentity, idle_ticks: int, max_idle: int = 0) -> None:
        self.identity = identity
        self.idle_ticks = idle_ticks
        self.max_idle = max_idle
        self.peer_authentications: tuple[Mapping[str, Any], ...] = ()

    def target(self, tls_mode: str | None, endpoint: Endpoint, host: str) -> TlsTarget | None:
        """How to dial `endpoint` of service `host`: a TlsTarget for mTLS, None for plaintext."""
        namespace = host.split(".")[1] if host.count(".") >= 1 else ""
        destination_mode = effective_mode(self.peer_authentications, namespace, endpoint.labels).mode if endpoint.sidecar else None
        if not client_uses_mtls(tls_mode, endpoint.sidecar, destination_mode):
            return None
        expected = None
        if endpoint.service_account is not None:
            try:
                expected = Identity(self.identity.trust_domain, namespace, endpoint.service_account)
            except InvalidIdentity:
                expected = None
        return TlsTarget(self.identity, expected, self.idle_ticks, self.max_idle)
