"""The sidecar's protocol objects over in-memory transports (as uvicorn tests its protocols).

A `Sidecar` is built from a bootstrap with a static snapshot but never
started: no socket is bound. A test makes a client connection by handing a
`MemoryTransport` to a listener's protocol and feeding it bytes; the
upstream connections the sidecar opens are made by the event loop's
`create_connection`, which `Upstreams` replaces with one that hands the
protocol a `MemoryTransport` too, so the test plays the endpoint: it reads
what the sidecar wrote, answers with bytes, or resets the connection.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

from meshkit.config import canonical, load
from meshkit.sidecar.bootstrap import parse_bootstrap
from meshkit.sidecar.runtime import Sidecar

NODE = "default/client-0"
HOST = "127.0.0.1"


class MemoryTransport(asyncio.Transport):
    """A transport that records what is written and every flow-control call.

    Its write buffer is a byte count the test drains by hand
    (`drain_writes`), so a slow reader is one that does not: the protocol's
    pause_writing/resume_writing are called at the watermarks as asyncio
    would.
    """

    def __init__(self, protocol: asyncio.Protocol | None = None, extra: dict[str, Any] | None = None) -> None:
        super().__init__()
        self.protocol = protocol
        self.written: list[bytes] = []
        self.buffered = 0
        self.high = 64 * 1024
        self.low = 16 * 1024
        self.writing_paused = False
        self.reading = True
        self.read_calls: list[str] = []
        self.closing = False
        self.closed = False
        self.aborted = False
        self.eof_written = False
        self._extra = extra or {}

    # what a test looks at

    def data(self) -> bytes:
        return b"".join(self.written)

    def take(self) -> bytes:
        """What was written since the last take."""
        data = self.data()
        self.written.clear()
        return data

    def drain_writes(self) -> None:
        """The peer read everything buffered: below the low-water mark, writing resumes."""
        self.buffered = 0
        if self.writing_paused and self.protocol is not None:
            self.writing_paused = False
            self.protocol.resume_writing()

    # asyncio.Transport

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self._extra.get(name, default)

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        if high is not None:
            self.high = high
        if low is not None:
            self.low = low

    def get_write_buffer_size(self) -> int:
        return self.buffered

    def write(self, data: bytes | bytearray | memoryview) -> None:
        assert not self.closed, "write after close"
        chunk = bytes(data)
        self.written.append(chunk)
        self.buffered += len(chunk)
        if not self.writing_paused and self.buffered > self.high and self.protocol is not None:
            self.writing_paused = True
            self.protocol.pause_writing()

    def writelines(self, list_of_data: Any) -> None:
        for data in list_of_data:
            self.write(data)

    def can_write_eof(self) -> bool:
        return True

    def write_eof(self) -> None:
        self.eof_written = True

    def pause_reading(self) -> None:
        assert self.reading, "pause_reading while paused"
        self.reading = False
        self.read_calls.append("pause")

    def resume_reading(self) -> None:
        assert not self.reading, "resume_reading while reading"
        self.reading = True
        self.read_calls.append("resume")

    def is_reading(self) -> bool:
        return self.reading

    def is_closing(self) -> bool:
        return self.closing or self.closed

    def close(self) -> None:
        self.closing = True

    def abort(self) -> None:
        self.closing = True
        self.aborted = True

    def lose(self, exc: Exception | None = None) -> None:
        """The connection is gone (a close finished, or the peer reset it)."""
        if not self.closed:
            self.closed = True
            self.closing = True
            assert self.protocol is not None
            self.protocol.connection_lost(exc)


class Upstreams:
    """The endpoints a sidecar dials, played by the test: each new connection is recorded in `conns`."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.conns: list[tuple[tuple[str, int], asyncio.Protocol, MemoryTransport]] = []
        self.refuse: set[int] = set()  # ports whose connect fails with ECONNREFUSED

    async def create_connection(self, factory: Callable[[], asyncio.Protocol], host: str, port: int, **_: Any) -> tuple[MemoryTransport, asyncio.Protocol]:
        if port in self.refuse:
            raise ConnectionRefusedError(111, "Connection refused")
        protocol = factory()
        transport = MemoryTransport(protocol)
        protocol.connection_made(transport)
        self.conns.append(((host, port), protocol, transport))
        return transport, protocol

    def answer(self, index: int, data: bytes) -> None:
        """The endpoint of connection `index` sends `data`."""
        self.conns[index][1].data_received(data)

    def sent(self, index: int) -> bytes:
        return self.conns[index][2].data()


def endpoint(port: int, workload: str = "echo-v1", version: str = "v1") -> dict[str, Any]:
    return {
        "address": HOST,
        "port": port,
        "instance": f"{workload}-{port}",
        "workload": workload,
        "version": version,
        "labels": {"version": version},
        "sidecar": False,
    }


def snapshot(endpoints: list[dict[str, Any]], *resources: str) -> dict[str, Any]:
    """A snapshot with service echo.default and `resources` (Istio YAML) in canonical form."""
    doc: dict[str, Any] = {
        "version": 1,
        "node": NODE,
        "services": {"echo.default.svc.cluster.local": {"name": "echo", "namespace": "default", "port": 80, "endpoints": endpoints}},
        "virtual_services": [],
        "destination_rules": [],
        "rate_limits": [],
        "peer_authentications": [],
        "authorization_policies": [],
    }
    keys = {
        "VirtualService": "virtual_services",
        "DestinationRule": "destination_rules",
        "LocalRateLimit": "rate_limits",
        "PeerAuthentication": "peer_authentications",
        "AuthorizationPolicy": "authorization_policies",
    }
    for text in resources:
        for resource in load(text):
            form = canonical(resource)
            doc[keys[form["kind"]]].append(form)
    return doc


def sidecar(static: dict[str, Any], app_port: int | None = None) -> Sidecar:
    """A sidecar with `static` applied and nothing listening."""
    boot = parse_bootstrap(
        {
            "node": NODE,
            "workload": {
                "name": "client",
                "namespace": "default",
                "service": "client",
                "version": "v1",
                "service_account": "sa-client",
                "labels": {"app": "client", "version": "v1"},
            },
            "host": HOST,
            "inbound": None if app_port is None else {"port": 0, "app_port": app_port},
            "outbound": {"port": 0},
            "admin": {"port": 0},
            "control_plane": None,
            "static_snapshot": static,
        }
    )
    car = Sidecar(boot)
    car.state.apply(static)
    return car


def connect(car: Sidecar, listener: str) -> tuple[asyncio.Protocol, MemoryTransport]:
    """A client connection to one of the sidecar's listeners."""
    protocol = car.listeners[listener].protocol()
    transport = MemoryTransport(protocol)
    protocol.connection_made(transport)
    return protocol, transport


def run(test: Callable[[Upstreams], Awaitable[None]]) -> None:
    """Run `test` in a fresh event loop whose outgoing connections are the test's `Upstreams`."""

    async def main() -> None:
        loop = asyncio.get_running_loop()
        upstreams = Upstreams(loop)
        # Only this loop, made for this test, dials the in-memory endpoints.
        loop.create_connection = upstreams.create_connection  # type: ignore[method-assign, assignment]  # one loop's connects replaced
        await test(upstreams)

    asyncio.run(main())


async def settle(rounds: int = 5) -> None:
    """Let callbacks and connect tasks scheduled so far run."""
    for _ in range(rounds):
        await asyncio.sleep(0)


# The host every test's echo service answers as, and a plain request to it.
ECHO = b"echo.default.svc.cluster.local"
GET = b"GET / HTTP/1.1\r\nhost: %s\r\n\r\n" % ECHO


async def until(condition: Callable[[], bool], within_s: float = 2.0) -> None:
    """Wait until `condition` holds: backoffs and timeouts here are real timers of a few tens of ms."""
    deadline = time.monotonic() + within_s
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.002)
