"""`python -m meshkit.demo --spec FILE`: run one demo app process.

Start-up is on the lab's critical path (Bookinfo is six of these, started at
once on two cores), so this imports only what serving needs. The listening
socket is bound here, before uvicorn starts, so a taken port is a one-line
error and port 0 works: the app prints the address it got, one line on
stdout, `meshkit.demo <instance> listening on <host>:<port>`.

Exit status: 0 after SIGTERM or SIGINT, 2 for a bad spec or environment,
3 when the address cannot be bound.
"""

from __future__ import annotations

import argparse
import errno
import importlib.util
import os
import signal
import socket
import sys

import uvicorn

from meshkit.demo.outbound import Downstream, proxy_from_environ
from meshkit.demo.resolver import Resolver
from meshkit.demo.service import DemoService
from meshkit.demo.spec import AppSpec, load_spec
from meshkit.errors import ConfigError, MeshkitError, PortInUse

EXIT_BAD_INPUT = 2
EXIT_CANNOT_LISTEN = 3
# In-flight requests get this long after SIGTERM before they are cancelled:
# the lab stops many apps at once and must not wait for a 7 s injected delay.
GRACEFUL_SHUTDOWN_S = 0.3
# Longer than any client's keep-alive expiry (ours is 4 s), so a client never
# reuses a connection this server is closing.
KEEP_ALIVE_S = 60


def instance_name(environ: dict[str, str] | os._Environ[str], spec: AppSpec) -> str:
    """MESHKIT_INSTANCE, or service-version when it is unset."""
    name = environ.get("MESHKIT_INSTANCE") or spec.default_instance
    if len(name) > 253 or any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in name):
        raise ConfigError("environment", "MESHKIT_INSTANCE", "",
                          "must be at most 253 printable characters")
    return name


def listen(host: str, port: int) -> socket.socket:
    """A listening socket on host:port, or PortInUse / MeshkitError saying why not."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        return socket.create_server((host, port), family=family, backlog=1024)
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise PortInUse(f"cannot listen on {host}:{port}: the port is already in use") from exc
        raise MeshkitError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m meshkit.demo", description="Run one demo app process.")
    parser.add_argument("--spec", required=True, help="the demo app spec (JSON, see docs/internals.md)")
    args = parser.parse_args(argv)
    try:
        spec = load_spec(args.spec)
        instance = instance_name(os.environ, spec)
        resolver = Resolver(spec.resolver, spec.namespace) if spec.resolver else None
        downstream = Downstream(proxy=proxy_from_environ(os.environ), resolver=resolver)
    except MeshkitError as exc:
        print(f"meshkit.demo: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    try:
        sock = listen(spec.host, spec.port)
    except MeshkitError as exc:
        print(f"meshkit.demo {instance}: {exc}", file=sys.stderr)
        return EXIT_CANNOT_LISTEN
    host, port = sock.getsockname()[:2]
    app = DemoService(spec, instance=instance, downstream=downstream)
    config = uvicorn.Config(
        app,
        loop="uvloop" if importlib.util.find_spec("uvloop") else "asyncio",
        http="httptools",
        lifespan="on",
        access_log=False,
        log_config=None,
        server_header=False,
        timeout_keep_alive=KEEP_ALIVE_S,
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S,
    )
    server = uvicorn.Server(config)

    def stop(signum: int, frame: object) -> None:
        """Ask uvicorn to stop, even before it has taken over the signals.

        A lab may stop an app the moment it says it is listening; uvicorn then
        exits right after starting. Once uvicorn has shut down it re-raises the
        signal it caught; it lands here again, so the process exits with 0.
        """
        server.should_exit = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    print(f"meshkit.demo {instance} listening on {host}:{port}", flush=True)
    server.run(sockets=[sock])
    return 0


if __name__ == "__main__":
    sys.exit(main())
