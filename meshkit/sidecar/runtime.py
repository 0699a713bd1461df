"""A running sidecar: its listeners, its config source and its shutdown.

Start-up order: parse nothing new (the bootstrap is already checked), open
the three listeners, then either apply the static snapshot (and install the
static certificate, if any) or start the control-plane client and the
certificate client (meshkit.sidecar.identity), side by side: the sidecar is
ready when it has both a config and a certificate.

The inbound port is a `SniffingServer` (meshkit.sidecar.sniffing): plaintext and
mTLS on one port, as the workload's PeerAuthentication mode allows. Shutdown follows uvicorn: stop accepting, let requests
in flight finish (up to the drain timeout), close what is left, exit 0.
"""

from __future__ import annotations

import asyncio
import logging
import random
import signal
import ssl
from collections.abc import Callable

from meshkit.errors import ConfigError, PortInUse
from meshkit.security.errors import SecurityError
from meshkit.sidecar.admin import AdminHandler
from meshkit.sidecar.bootstrap import Bootstrap
from meshkit.sidecar.clock import Clock, ticks_for
from meshkit.sidecar.cluster import ClusterSet
from meshkit.sidecar.control_client import ConfigClient
from meshkit.sidecar.downstream import Listener
from meshkit.sidecar.identity import CertificateClient, WorkloadIdentity
from meshkit.sidecar.inbound import InboundHandler
from meshkit.sidecar.outbound import OutboundHandler
from meshkit.sidecar.outbound_tls import MeshTls
from meshkit.sidecar.peer_check import PeerCheck
from meshkit.sidecar.sniffing import SniffingServer
from meshkit.sidecar.state import MeshState
from meshkit.sidecar.telemetry import UNKNOWN, Telemetry
from meshkit.sidecar.telemetry_push import Exporter
from meshkit.sidecar.upstream import Pool

log = logging.getLogger("meshkit.sidecar")

# The app behind the inbound listener is always on this host's loopback.
APP_ADDRESS = "127.0.0.1"
LISTEN_BACKLOG = 1024
# The admin listener is on loopback whatever the bootstrap's host, as Envoy's
# admin is on 127.0.0.1:15000 in an Istio pod (meshkit.sidecar.admin).
ADMIN_ADDRESS = "127.0.0.1"
# Pooled mTLS connections to other sidecars stay open this long unused:
# below the peer's inbound idle timeout (60 s), far above the plaintext
# upstream one, because a handshake costs far more than a request.
MESH_IDLE_TIMEOUT_S = 50.0
# ... and up to this many of them per endpoint (plaintext pools keep max_idle_per_endpoint).
MESH_MAX_IDLE_PER_ENDPOINT = 128


class Sidecar:
    """Everything one sidecar process runs."""

    def __init__(self, bootstrap: Bootstrap) -> None:
        self.bootstrap = bootstrap
        limits = bootstrap.limits
        self.clock = Clock()
        w = bootstrap.workload
        tel = bootstrap.telemetry
        exported = tel.enabled and (tel.access_log is not None or (tel.push and bootstrap.control_plane is not None))
        self.telemetry = Telemetry(limits.request_log_size, tel.buffer_size if exported else None, namespace=w.namespace)
        self.exporter = Exporter(self.telemetry, tel, bootstrap.node, bootstrap.control_plane)
        # With telemetry disabled the listeners record nothing (the benchmark's baseline).
        recorder = self.telemetry if tel.enabled else None
        self.rng = random.Random()
        bits = self.rng.getrandbits
        self.clusters = ClusterSet(w, self.telemetry, limits.max_idle_per_endpoint, self.rng)
        self.identity = WorkloadIdentity(
            bootstrap.identity, required=bootstrap.control_plane is not None or bootstrap.static_identity is not None
        )
        self.clusters.tls = MeshTls(self.identity, ticks_for(MESH_IDLE_TIMEOUT_S), MESH_MAX_IDLE_PER_ENDPOINT)
        self.state = MeshState(bootstrap, self.clusters, self.identity)
        head_s, idle_s = limits.request_headers_timeout_s, limits.idle_timeout_s
        self.listeners: dict[str, Listener] = {}
        self.app_pool: Pool | None = None
        if bootstrap.inbound_port is not None and bootstrap.app_port is not None:
            self.app_pool = Pool(APP_ADDRESS, bootstrap.app_port, limits.max_idle_per_endpoint, limits.connect_timeout_s)
            version = w.version.encode("ascii", "replace")
            self.listeners["inbound"] = Listener.inbound(
                InboundHandler(self.state, w, self.app_pool, self.telemetry, bits),
                self.clock,
                telemetry=recorder,
                version=version,
                peer_check=PeerCheck(self.identity),
                principal=self.identity.uri,
                request_headers_timeout_s=head_s,
                idle_timeout_s=idle_s,
                max_connections=limits.max_connections,
                stream_idle_timeout_s=limits.stream_idle_timeout_s,
                stats=self.telemetry.listener_stats("inbound"),
            )
        self.listeners["outbound"] = Listener.outbound(
            OutboundHandler(self.state, w, self.telemetry, bits, self.rng, self.clock),
            self.clock,
            telemetry=recorder,
            principal=self.identity.uri,
            request_headers_timeout_s=head_s,
            idle_timeout_s=idle_s,
            max_connections=limits.max_connections,
            stream_idle_timeout_s=limits.stream_idle_timeout_s,
            stats=self.telemetry.listener_stats("outbound"),
        )
        self.listeners["admin"] = Listener.admin(
            AdminHandler(self.state, self.telemetry, self.clusters, self.addresses, self.exporter, bootstrap.admin_token), self.clock, request_headers_timeout_s=head_s, idle_timeout_s=idle_s,
            max_connections=limits.admin_max_connections,
            stream_idle_timeout_s=limits.stream_idle_timeout_s,
            stats=self.telemetry.listener_stats("admin"),
        )
        self.servers: dict[str, asyncio.Server | SniffingServer] = {}
        self.config_task: asyncio.Task[None] | None = None
        self.certificate_task: asyncio.Task[None] | None = None
        self.stopping = asyncio.Event()

    def addresses(self) -> dict[str, str]:
        """Where each listener actually listens (ports may have been 0 in the bootstrap)."""
        found = {}
        for name, server in self.servers.items():
            host, port = server.sockets[0].getsockname()[:2]
            found[name] = f"{host}:{port}"
        return found

    def _host(self, listener: str) -> str:
        """Where a listener binds: the bootstrap's host, but loopback for the admin pages."""
        return ADMIN_ADDRESS if listener == "admin" else self.bootstrap.host

    async def start(self) -> None:
        """Open the listeners and start getting config; raises PortInUse or ConfigError."""
        loop = asyncio.get_running_loop()
        ports = {"inbound": self.bootstrap.inbound_port, "outbound": self.bootstrap.outbound_port, "admin": self.bootstrap.admin_port}
        for name, listener in self.listeners.items():
            try:
                if name == "inbound":
                    limits = self.bootstrap.limits
                    sniffing = SniffingServer(
                        self.identity, self.state.inbound_mode, limits.idle_timeout_s, limits.request_headers_timeout_s,
                        stats=listener.stats,
                    )
                    sniffing.listen(self.bootstrap.host, ports[name] or 0, LISTEN_BACKLOG, self._counted(name, listener))
                    self.servers[name] = sniffing
                    continue
                self.servers[name] = await loop.create_server(
                    self._counted(name, listener), self._host(name), ports[name], reuse_address=True, backlog=LISTEN_BACKLOG
                )
            except OSError as exc:
                await self.close_servers()
                raise PortInUse(f"{name} listener cannot bind {self._host(name)}:{ports[name]}: {exc.strerror or exc}") from exc
        upstream_idle = ticks_for(self.bootstrap.limits.upstream_idle_timeout_s)
        for listener in self.listeners.values():
            self.clock.add_sweep(listener.sweep)
        self.clock.add_sweep(lambda tick: self.clusters.expire(tick, upstream_idle))
        if self.app_pool is not None:
            app_pool = self.app_pool
            self.clock.add_sweep(lambda tick: app_pool.expire(tick, upstream_idle))
        self.clock.start()
        if self.exporter.active:
            self.exporter.start()
        log.info("listening %s", " ".join(f"{n}={a}" for n, a in self.addresses().items()))
        if self.bootstrap.static_snapshot is not None:
            try:
                if self.bootstrap.static_identity is not None:
                    self.install_static_identity()
                self.state.apply(self.bootstrap.static_snapshot)
            except ConfigError:
                await self.close_servers()
                raise
        elif self.bootstrap.control_plane is not None:
            certificates = CertificateClient(self.bootstrap.control_plane, self.bootstrap.node, self.identity, self.rng)
            self.certificate_task = loop.create_task(certificates.run())
            client = ConfigClient(self.bootstrap.control_plane, self.bootstrap.node, self.state, self.rng)
            self.config_task = loop.create_task(client.run())

    def install_static_identity(self) -> None:
        """The bootstrap's certificate; a ConfigError (exit 2) when it is not this workload's."""
        static = self.bootstrap.static_identity
        assert static is not None
        try:
            self.identity.install_static(static)
        except (SecurityError, ValueError, ssl.SSLError) as exc:
            raise ConfigError("bootstrap", self.bootstrap.node, "static_identity", str(exc)) from None

    async def run(self) -> None:
        """Serve until SIGTERM or SIGINT, then shut down gracefully."""
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.stopping.set)
        await self.start()
        await self.stopping.wait()
        log.info("shutting down: draining requests in flight (up to %g s)", self.bootstrap.limits.drain_timeout_s)
        await self.shutdown()

    async def shutdown(self) -> None:
        """Stop accepting, let requests in flight finish, close everything."""
        for server in self.servers.values():
            server.close()
        if self.config_task is not None:
            self.config_task.cancel()
        if self.certificate_task is not None:
            self.certificate_task.cancel()
        for listener in self.listeners.values():
            listener.drain()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.bootstrap.limits.drain_timeout_s
        while any(listener.connections for listener in self.listeners.values()) and loop.time() < deadline:
            await asyncio.sleep(0.02)
        for listener in self.listeners.values():
            for conn in list(listener.connections):
                conn.transport.abort()
        self.clock.stop()
        self.clusters.close()
        if self.app_pool is not None:
            self.app_pool.close(cancel_connects=True)
        await asyncio.sleep(0)  # let cancelled connects answer their requests
        await self.close_servers()
        if self.exporter.active:
            await self.exporter.close()
        log.info("stopped")

    def _counted(self, name: str, listener: Listener) -> Callable[[], asyncio.Protocol]:
        """The listener's protocol factory, counting accepted connections for the TCP metrics."""
        w = self.bootstrap.workload
        service = f"{w.service}.{w.namespace}.svc.cluster.local"
        if name == "inbound":
            values = ("destination", UNKNOWN, UNKNOWN, service, w.name, w.namespace)
        elif name == "outbound":
            values = ("source", w.name, w.namespace, UNKNOWN, UNKNOWN, UNKNOWN)
        else:
            return listener.protocol
        counter = self.telemetry.connection_counter(values, lambda: len(listener.connections))
        make = listener.protocol

        def factory() -> asyncio.Protocol:
            counter.opened += 1
            return make()

        return factory

    async def close_servers(self) -> None:
        for server in self.servers.values():
            server.close()
        for server in self.servers.values():
            await server.wait_closed()
