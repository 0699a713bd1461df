"""Running the control plane: bind loopback, serve with uvicorn, announce in control.json.

The launcher (a backend) starts `python -m meshkit.control` and polls for
`<home>/control.json`; the file is written only once the server accepts
connections, so its presence means "ready". The admin token lives in
`<home>/control-token` and survives restarts, as do the store's version,
registry and resources, so a control plane restarted on its old port is the
same control plane to every sidecar.
"""

from __future__ import annotations

import asyncio
import errno
import ipaddress
import logging
import os
import signal
import socket
import tempfile
import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from types import FrameType

import uvicorn

from meshkit.control.api import ControlPlane
from meshkit.control.otlp import BadEndpoint, OtlpExporter
from meshkit.control.token import load_or_create_token
from meshkit.files import write_json_atomic
from meshkit.control.push import DEFAULT_DEBOUNCE_S
from meshkit.control.store import Store
from meshkit.control.telemetry import TelemetrySink
from meshkit.errors import ControlPlaneError, PortInUse
from meshkit.security.ca import DEFAULT_LEAF_LIFETIME, check_leaf_lifetime
from meshkit.security.ca_store import load_or_create

log = logging.getLogger("meshkit.control")

DEFAULT_HOST = "127.0.0.1"
CONTROL_JSON = "control.json"
TOKEN_FILE = "control-token"
STORE_FILE = "store.json"
REPORTS_FILE = "nodes.json"
CA_DIR = "ca"
TELEMETRY_DIR = "telemetry"
SHUTDOWN_GRACE_S = 3.0


def check_loopback(host: str) -> None:
    """The admin API has no TLS and grants full control: refuse any non-loopback address."""
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        raise ControlPlaneError(f"cannot bind {host!r}: give a loopback IP address such as 127.0.0.1") from None
    if not loopback:
        raise ControlPlaneError(f"refusing to bind {host}: the control plane API is loopback-only (use 127.0.0.1)")


def base_url(host: str, port: int) -> str:
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def bind_socket(host: str, port: int) -> socket.socket:
    """A listening socket; PortInUse when `port` is taken, so the launcher can say which one."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        # Lets a restart reuse the old port while old connections sit in TIME_WAIT;
        # it does not allow two listeners on one port.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(1024)
        sock.setblocking(False)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise PortInUse(f"port {port} on {host} is already in use by another process") from exc
        raise ControlPlaneError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
    return sock


def prepare_home(home: Path) -> None:
    """Create the home and prove it is writable now, not at the first commit."""
    try:
        home.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=home, prefix=".write-probe.")
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise ControlPlaneError(f"the lab home {home} is not writable: {exc.strerror or exc}") from exc


class _Server(uvicorn.Server):
    """uvicorn's server with two hooks: announce once listening, release long polls on exit."""

    def __init__(
        self,
        config: uvicorn.Config,
        on_started: Callable[[], None],
        on_exit: Callable[[], None],
        early_signals: list[int],
    ) -> None:
        super().__init__(config)
        self._on_started = on_started
        self._on_exit = on_exit
        self._early_signals = early_signals
        self._loop: asyncio.AbstractEventLoop | None = None

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        self._loop = asyncio.get_running_loop()
        await super().startup(sockets=sockets)
        if self._early_signals:
            self.should_exit = True
        if self.started and not self.should_exit:
            self._on_started()

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        super().handle_exit(sig, frame)
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._on_exit)


def _loop_name() -> str:
    try:
        import uvloop  # noqa: F401
    except ImportError:
        return "asyncio"
    return "uvloop"


def serve(
    home: Path,
    port: int = 0,
    host: str = DEFAULT_HOST,
    debounce: float = DEFAULT_DEBOUNCE_S,
    cert_lifetime: timedelta = DEFAULT_LEAF_LIFETIME,
    otlp_endpoint: str | None = None,
) -> None:
    """Run until SIGTERM or SIGINT. Raises MeshkitError for a setup problem (bad host, port taken, home).

    `cert_lifetime` is the lifetime of the workload certificates the CA signs
    (24 h by default; a lab may set minutes to watch rotation).
    `otlp_endpoint`, when given, receives every span (meshkit.control.otlp)."""
    check_loopback(host)
    prepare_home(home)
    try:
        token = load_or_create_token(home / TOKEN_FILE)
    except (OSError, UnicodeDecodeError) as exc:
        raise ControlPlaneError(f"cannot read or create the admin token in {home / TOKEN_FILE}: {exc}") from exc
    store = Store.open(home / STORE_FILE)
    try:
        check_leaf_lifetime(cert_lifetime)
    except ValueError as exc:
        raise ControlPlaneError(str(exc)) from None
    ca = load_or_create(home / CA_DIR, datetime.now(timezone.utc), leaf_lifetime=cert_lifetime)
    try:
        otlp = OtlpExporter(otlp_endpoint) if otlp_endpoint else None
    except BadEndpoint as exc:
        raise ControlPlaneError(str(exc)) from None
    app = ControlPlane(
        store, token, debounce, reports=home / REPORTS_FILE, ca=ca, telemetry=TelemetrySink(home / TELEMETRY_DIR), otlp=otlp,
        ca_dir=home / CA_DIR,
    )
    sock = bind_socket(host, port)
    url = base_url(host, sock.getsockname()[1])

    def announce() -> None:
        info = {"url": url, "admin_token": token, "pid": os.getpid(), "started_at": time.time()}
        try:
            write_json_atomic(home / CONTROL_JSON, info)
        except OSError as exc:
            raise ControlPlaneError(f"cannot write {home / CONTROL_JSON}: {exc.strerror or exc}") from exc
        log.info("control plane listening on %s (store version %d)", url, store.state.version)

    config = uvicorn.Config(
        app,
        loop=_loop_name(),
        http="httptools",
        lifespan="off",
        access_log=False,
        log_level="warning",
        timeout_graceful_shutdown=SHUTDOWN_GRACE_S,
    )
    # uvicorn re-raises the signal it caught once it has shut down; these
    # handlers absorb it so a requested stop exits with status 0. A signal
    # that lands before uvicorn installs its own handlers is remembered here
    # and honoured once the server is up.
    early: list[int] = []

    def absorb(sig: int, frame: FrameType | None) -> None:
        early.append(sig)

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, absorb)
    server = _Server(config, on_started=announce, on_exit=app.shutdown, early_signals=early)
    try:
        server.run(sockets=[sock])
    finally:
        sock.close()
    log.info("control plane stopped")

