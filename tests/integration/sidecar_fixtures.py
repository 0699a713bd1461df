"""Test helpers for the sidecar: a recording echo upstream, sidecar processes, raw HTTP.

The echo upstream runs an asyncio loop in a background thread and records
every request it *completes* (head and whole body), so "the upstream saw
nothing" is a precise assertion. Its behaviour is steered by request headers
(which the sidecar forwards like any other):

    x-echo-status: N        answer with status N
    x-echo-size: N          answer with N bytes of b"x" instead of the JSON description
    x-echo-chunked: 1       answer with chunked encoding
    x-echo-no-length: 1     answer without Content-Length and close (close-delimited body)
    x-echo-close: 1         answer with connection: close and close
    x-echo-delay-ms: N      wait before answering
    x-echo-stall-ms: N      stop reading for N ms once the head has arrived
    x-echo-reset: 1         close the connection without answering
    x-echo-hang: 1          never answer (the connection stays open)

Tests can also script it: `statuses` (a deque) gives the status of the next
requests in turn, `delay_s` slows every answer of this server, and
`max_in_flight` is the most requests it was ever answering at once (what a
circuit breaker must bound).

Sidecars are real `python -m meshkit.sidecar` processes on ports chosen by
the system (port 0 in the bootstrap; the sidecar logs the ports it got).
"""

from __future__ import annotations

import asyncio
import collections
import hashlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httptools

HOST = "127.0.0.1"
START_TIMEOUT_S = 15.0


# --- the echo upstream ---


@dataclass
class Recorded:
    """One request as the upstream received it, complete."""

    method: str
    path: str
    headers: list[tuple[str, str]]
    body_len: int
    body_sha256: str
    connection_id: int

    def header(self, name: str) -> str | None:
        values = self.header_all(name)
        return values[0] if values else None

    def header_all(self, name: str) -> list[str]:
        return [v for k, v in self.headers if k.lower() == name.lower()]


class _EchoRequest:
    def __init__(self) -> None:
        self.url = b""
        self.headers: list[tuple[bytes, bytes]] = []
        self.hash = hashlib.sha256()
        self.size = 0
        self.head_done = False
        self.complete = False
        self.method = b""

    def option(self, name: str) -> str | None:
        for k, v in self.headers:
            if k.decode("latin-1").lower() == name:
                return v.decode("latin-1")
        return None


class _EchoParserState:
    def __init__(self) -> None:
        self.current: _EchoRequest | None = None
        self.done: list[_EchoRequest] = []
        self.parser: httptools.HttpRequestParser | None = None

    def on_message_begin(self) -> None:
        self.current = _EchoRequest()

    def on_url(self, url: bytes) -> None:
        assert self.current is not None
        self.current.url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        assert self.current is not None
        if not self.current.head_done:
            self.current.headers.append((name, value))

    def on_headers_complete(self) -> None:
        assert self.current is not None and self.parser is not None
        self.current.head_done = True
        self.current.method = self.parser.get_method()

    def on_body(self, body: bytes) -> None:
        assert self.current is not None
        self.current.size += len(body)
        self.current.hash.update(body)

    def on_message_complete(self) -> None:
        assert self.current is not None
        self.current.complete = True
        self.done.append(self.current)


class ThreadedServer:
    """An asyncio TCP server on its own loop in a daemon thread, port chosen by the system.

    Subclasses implement `_handle(reader, writer)`; `_started` runs on the
    loop before the first connection is accepted.
    """

    what = "server"

    def __init__(self) -> None:
        self.port = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.AbstractServer | None = None
        self._thread: threading.Thread | None = None

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        raise RuntimeError("subclasses answer connections")

    async def _started(self) -> None:
        """Set-up that must happen on the server's loop."""

    def _stopping(self) -> None:
        """Tear-down that must happen on the server's loop, before tasks are cancelled."""

    def start(self) -> Any:
        ready = threading.Event()

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop

            async def main() -> None:
                await self._started()
                self._server = await asyncio.start_server(self._handle, HOST, 0)
                self.port = self._server.sockets[0].getsockname()[1]
                ready.set()

            loop.run_until_complete(main())
            loop.run_forever()
            loop.close()

        self._thread = threading.Thread(target=run, daemon=True)
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError(f"{self.what} did not start")
        return self

    def stop(self) -> None:
        loop = self._loop
        if loop is None:
            return

        async def shutdown() -> None:
            assert self._server is not None
            self._server.close()
            self._stopping()
            await _cancel_other_tasks()
            loop.stop()

        asyncio.run_coroutine_threadsafe(shutdown(), loop)
        if self._thread is not None:
            self._thread.join(10)


class EchoServer(ThreadedServer):
    """An HTTP/1.1 upstream that records what it receives and says so in its answer."""

    what = "echo server"

    def __init__(self, name: str = "echo") -> None:
        super().__init__()
        self.name = name
        self.requests: list[Recorded] = []
        self.connections = 0
        self.statuses: collections.deque[int] = collections.deque()
        self.in_flight = 0
        self.max_in_flight = 0
        self.delay_s = 0.0
        self._lock = threading.Lock()
        self._writers: set[asyncio.StreamWriter] = set()

    def _stopping(self) -> None:
        for writer in list(self._writers):
            writer.transport.abort()

    def clear(self) -> None:
        """Forget recorded requests and the script (connection ids keep counting, so they stay unique)."""
        with self._lock:
            self.requests.clear()
            self.statuses.clear()
            self.max_in_flight = self.in_flight
            self.delay_s = 0.0

    def snapshot(self) -> list[Recorded]:
        with self._lock:
            return list(self.requests)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        with self._lock:
            self.connections += 1
            conn_id = self.connections
        state = _EchoParserState()
        parser = httptools.HttpRequestParser(state)
        state.parser = parser
        stalled: set[int] = set()
        try:
            while True:
                data = await reader.read(65536)
                if not data:
                    break
                parser.feed_data(data)
                current = state.current
                if current is not None and current.head_done and not current.complete and id(current) not in stalled:
                    stall = current.option("x-echo-stall-ms")
                    if stall:
                        stalled.add(id(current))
                        await asyncio.sleep(int(stall) / 1000)
                while state.done:
                    request = state.done.pop(0)
                    if not await self._answer(request, writer, conn_id):
                        return
        except (httptools.HttpParserError, ConnectionError):
            pass
        finally:
            self._writers.discard(writer)
            writer.close()

    async def _answer(self, request: _EchoRequest, writer: asyncio.StreamWriter, conn_id: int) -> bool:
        recorded = Recorded(
            method=request.method.decode(),
            path=request.url.decode("latin-1"),
            headers=[(k.decode("latin-1"), v.decode("latin-1")) for k, v in request.headers],
            body_len=request.size,
            body_sha256=request.hash.hexdigest(),
            connection_id=conn_id,
        )
        with self._lock:
            self.requests.append(recorded)
            scripted = self.statuses.popleft() if self.statuses else None
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            return await self._respond(request, writer, recorded, scripted)
        finally:
            with self._lock:
                self.in_flight -= 1

    async def _respond(self, request: _EchoRequest, writer: asyncio.StreamWriter, recorded: Recorded, scripted: int | None) -> bool:
        if request.option("x-echo-reset"):
            writer.transport.abort()
            return False
        if request.option("x-echo-hang"):
            await asyncio.Event().wait()
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        delay = request.option("x-echo-delay-ms")
        if delay:
            await asyncio.sleep(int(delay) / 1000)
        status = scripted or int(request.option("x-echo-status") or 200)
        size = request.option("x-echo-size")
        chunked = bool(request.option("x-echo-chunked"))
        no_length = bool(request.option("x-echo-no-length"))
        close = bool(request.option("x-echo-close")) or no_length
        if size is None:
            description = {
                "server": self.name,
                "method": recorded.method,
                "path": recorded.path,
                "headers": recorded.headers,
                "body_len": recorded.body_len,
                "body_sha256": recorded.body_sha256,
            }
            body_parts = [json.dumps(description).encode()]
            total = len(body_parts[0])
        else:
            total = int(size)
            body_parts = []
        head = [f"HTTP/1.1 {status} Echo", f"x-echo-server: {self.name}", "x-meshkit-version: forged-by-app"]
        if chunked:
            head.append("transfer-encoding: chunked")
        elif not no_length:
            head.append(f"content-length: {total}")
        if close:
            head.append("connection: close")
        writer.write(("\r\n".join(head) + "\r\n\r\n").encode())
        if request.method == b"HEAD":
            await writer.drain()
            return not close
        pieces = body_parts or _pieces(total)
        for piece in pieces:
            writer.write(b"%x\r\n%s\r\n" % (len(piece), piece) if chunked else piece)
            await writer.drain()
        if chunked:
            writer.write(b"0\r\n\r\n")
        await writer.drain()
        if close:
            writer.close()
            return False
        return True


async def _cancel_other_tasks() -> None:
    """End every handler still running, so the loop closes with nothing pending."""
    tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


def _pieces(total: int, size: int = 65536) -> Iterator[bytes]:
    block = b"x" * size
    while total > 0:
        n = min(size, total)
        yield block[:n]
        total -= n


@contextmanager
def echo_server(name: str = "echo") -> Iterator[EchoServer]:
    server: EchoServer = EchoServer(name).start()
    try:
        yield server
    finally:
        server.stop()


def wait_for(predicate: Any, timeout: float = 5.0, interval: float = 0.02) -> bool:
    """Poll `predicate` until true or the timeout; returns its last value."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return bool(value)
        time.sleep(interval)


# --- bootstrap and snapshot documents ---


def endpoint(port: int, workload: str, version: str, address: str = HOST, instance: str | None = None) -> dict[str, Any]:
    return {
        "address": address,
        "port": port,
        "instance": instance or f"{workload}-{port}",
        "workload": workload,
        "version": version,
        "labels": {"version": version},
        "sidecar": False,
    }


def service(name: str, endpoints: list[dict[str, Any]], namespace: str = "default", port: int = 80) -> tuple[str, dict[str, Any]]:
    return f"{name}.{namespace}.svc.cluster.local", {"name": name, "namespace": namespace, "port": port, "endpoints": endpoints}


def snapshot(node: str, services: list[tuple[str, dict[str, Any]]], version: int = 1, **extra: Any) -> dict[str, Any]:
    return {"version": version, "node": node, "services": dict(services), **extra}


_SNAPSHOT_KEYS = {"VirtualService": "virtual_services", "DestinationRule": "destination_rules", "LocalRateLimit": "rate_limits"}


def traffic(*docs: str | dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """Snapshot keys for Istio-shaped resources (YAML text or dicts), in the
    canonical form the control plane sends (meshkit.config.canonical), so a
    static snapshot carries exactly what a lab's sidecar would get."""
    from meshkit.config import canonical, load

    found: dict[str, list[dict[str, Any]]] = {key: [] for key in _SNAPSHOT_KEYS.values()}
    for doc in docs:
        for resource in load(doc):
            form = canonical(resource)
            found[_SNAPSHOT_KEYS[form["kind"]]].append(form)
    return found


# The admin token every test sidecar is started with; `admin_headers` sends it.
ADMIN_TOKEN = "test-admin-token-0123456789"


def admin_headers() -> dict[str, str]:
    """What a request to a protected admin page carries (meshkit.sidecar.admin)."""
    return {"host": "admin", "authorization": f"Bearer {ADMIN_TOKEN}"}


def bootstrap(
    *,
    node: str = "default/client-0",
    name: str = "client",
    namespace: str = "default",
    version: str = "v1",
    app_port: int | None = None,
    static: dict[str, Any] | None = None,
    control_plane: dict[str, Any] | None = None,
    limits: dict[str, Any] | None = None,
) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "node": node,
        "workload": {
            "name": name,
            "namespace": namespace,
            "service": name.rsplit("-", 1)[0] if name.count("-") else name,
            "version": version,
            "service_account": f"sa-{name}",
            "labels": {"app": name, "version": version},
        },
        "host": HOST,
        "inbound": None if app_port is None else {"port": 0, "app_port": app_port},
        "outbound": {"port": 0},
        "admin": {"port": 0, "token": ADMIN_TOKEN},
        "control_plane": control_plane,
        "static_snapshot": static,
    }
    if limits is not None:
        doc["limits"] = limits
    return doc


# --- sidecar processes ---

_LISTENING = re.compile(r"listening (.*)$")


class SidecarProcess:
    """A running `python -m meshkit.sidecar`, its ports and its stderr."""

    def __init__(self, boot: dict[str, Any], workdir: Path) -> None:
        self.boot = boot
        self.path = workdir / f"bootstrap-{os.getpid()}-{id(self)}.json"
        self.path.write_text(json.dumps(boot))
        self.proc: subprocess.Popen[str] | None = None
        self.lines: list[str] = []
        self.ports: dict[str, int] = {}
        self._listening = threading.Event()
        self._reader: threading.Thread | None = None

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    @property
    def inbound(self) -> int:
        return self.ports["inbound"]

    @property
    def outbound(self) -> int:
        return self.ports["outbound"]

    @property
    def admin(self) -> int:
        return self.ports["admin"]

    def start(self) -> SidecarProcess:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "meshkit.sidecar", "--bootstrap", str(self.path)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        self._reader = threading.Thread(target=self._read_stderr, daemon=True)
        self._reader.start()
        if not self._listening.wait(START_TIMEOUT_S):
            self.kill()
            raise RuntimeError("sidecar did not start:\n" + "".join(self.lines))
        return self

    def _read_stderr(self) -> None:
        assert self.proc is not None and self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.append(line)
            match = _LISTENING.search(line)
            if match:
                for part in match.group(1).split():
                    name, _, address = part.partition("=")
                    self.ports[name] = int(address.rsplit(":", 1)[1])
                self._listening.set()
        self._listening.set()

    def log(self) -> str:
        return "".join(self.lines)

    def wait_log(self, pattern: str, timeout: float = 5.0) -> bool:
        return wait_for(lambda: re.search(pattern, self.log()), timeout)

    def terminate(self, timeout: float = 10.0) -> int:
        """SIGTERM and wait; returns the exit status."""
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        finally:
            self.kill()

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        if self._reader is not None:
            self._reader.join(5)


@contextmanager
def running_sidecar(boot: dict[str, Any], workdir: Path) -> Iterator[SidecarProcess]:
    sidecar = SidecarProcess(boot, workdir)
    try:
        yield sidecar.start()
    finally:
        sidecar.kill()


# --- raw HTTP on sockets ---


@dataclass
class Response:
    status: int
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""

    def header(self, name: str) -> str | None:
        for k, v in self.headers:
            if k.lower() == name.lower():
                return v
        return None

    def json(self) -> Any:
        return json.loads(self.body)


class _ResponseCollector:
    def __init__(self) -> None:
        self.parser: httptools.HttpResponseParser | None = None
        self.current: Response | None = None
        self.done: list[Response] = []
        self.parts: list[bytes] = []
        # llhttp cannot know a response answers HEAD; the client says so.
        self.answering_head = False
        self.head_answered = False

    def on_message_begin(self) -> None:
        self.current = Response(0)
        self.parts = []

    def on_header(self, name: bytes, value: bytes) -> None:
        assert self.current is not None
        self.current.headers.append((name.decode("latin-1"), value.decode("latin-1")))

    def on_headers_complete(self) -> None:
        assert self.current is not None and self.parser is not None
        self.current.status = self.parser.get_status_code()
        if self.answering_head and self.current.status >= 200:
            self.done.append(self.current)
            self.head_answered = True

    def on_body(self, body: bytes) -> None:
        self.parts.append(body)

    def on_message_complete(self) -> None:
        assert self.current is not None
        self.current.body = b"".join(self.parts)
        if self.current.status >= 200:
            self.done.append(self.current)


def parse_responses(data: bytes) -> list[Response]:
    """Every complete response in `data` (interim 1xx responses skipped)."""
    collector = _ResponseCollector()
    parser = httptools.HttpResponseParser(collector)
    collector.parser = parser
    try:
        parser.feed_data(data)
    except httptools.HttpParserError:
        pass
    return collector.done


def connect(port: int, timeout: float = 5.0) -> socket.socket:
    sock = socket.create_connection((HOST, port), timeout=timeout)
    sock.settimeout(timeout)
    return sock


def read_until_close(sock: socket.socket, timeout: float = 5.0) -> tuple[bytes, bool]:
    """All bytes until the peer closes; (data, closed) where closed is False on timeout."""
    sock.settimeout(timeout)
    chunks = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            data = sock.recv(65536)
        except TimeoutError:
            return b"".join(chunks), False
        except ConnectionResetError:
            return b"".join(chunks), True
        if not data:
            return b"".join(chunks), True
        chunks.append(data)
    return b"".join(chunks), False


def exchange_raw(port: int, data: bytes, timeout: float = 5.0) -> tuple[list[Response], bool, bytes]:
    """Send `data` on a fresh connection; (responses, closed by the server, raw bytes)."""
    with connect(port, timeout) as sock:
        sock.sendall(data)
        raw, closed = read_until_close(sock, timeout)
    return parse_responses(raw), closed, raw


class Client:
    """One keep-alive client connection that sends requests and reads responses in turn."""

    def __init__(self, port: int, timeout: float = 10.0) -> None:
        self.sock = connect(port, timeout)
        self.collector = _ResponseCollector()
        self.parser = httptools.HttpResponseParser(self.collector)
        self.collector.parser = self.parser
        self.closed = False

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def request(self, method: str, target: str, headers: dict[str, str] | None = None, body: bytes = b"") -> Response:
        lines = [f"{method} {target} HTTP/1.1"]
        all_headers = {"host": "echo", **(headers or {})}
        if body:
            all_headers["content-length"] = str(len(body))
        lines += [f"{k}: {v}" for k, v in all_headers.items()]
        self.send(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)
        self.collector.answering_head = method == "HEAD"
        try:
            return self.read_response()
        finally:
            self.collector.answering_head = False

    def read_response(self) -> Response:
        while not self.collector.done:
            data = self.sock.recv(65536)
            if not data:
                self.closed = True
                raise ConnectionError("server closed the connection before a full response")
            self.parser.feed_data(data)
        if self.collector.head_answered:
            self.collector.head_answered = False
            self.parser = httptools.HttpResponseParser(self.collector)
            self.collector.parser = self.parser
        return self.collector.done.pop(0)

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def get_json(port: int, path: str) -> Any:
    with Client(port) as client:
        response = client.request("GET", path, admin_headers())
    assert response.status == 200, response
    return response.json()


# --- a stand-in for the control plane (test-only) ---


class StandInControlPlane(ThreadedServer):
    """Speaks the documented long-poll/ACK protocol (docs/internals.md) and the certificate call.

    A stand-in so the sidecar's config client can be tested alone: it serves
    `current` to every node, records every poll and ACK, and in `down` mode
    accepts connections and closes them at once (counting the attempts). Its
    own CA signs whatever identity a CSR asks for (`certificates` counts them;
    `refuse_certificates` answers 503 instead), since a sidecar with a control
    plane is ready only with a certificate.
    """

    what = "stand-in control plane"

    def __init__(self, token: str = "node-token", max_wait_s: float = 1.0) -> None:
        super().__init__()
        self.token = token
        self.max_wait_s = max_wait_s
        self.current: dict[str, Any] | None = None
        self.acks: list[dict[str, Any]] = []
        self.polls: list[tuple[float, str | None]] = []
        self.attempts: list[float] = []
        self.down = False
        self.refuse_certificates = False
        self.certificates = 0
        self._changed: asyncio.Event | None = None
        from datetime import datetime, timezone

        from meshkit.security.ca import create_authority

        self.ca = create_authority(datetime.now(timezone.utc))

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    async def _started(self) -> None:
        self._changed = asyncio.Event()

    def publish(self, doc: dict[str, Any]) -> None:
        assert self._loop is not None

        def change() -> None:
            self.current = doc
            assert self._changed is not None
            self._changed.set()
            self._changed = asyncio.Event()

        self._loop.call_soon_threadsafe(change)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.attempts.append(time.monotonic())
        try:
            if self.down:
                return
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            method, target, _ = lines[0].split(" ", 2)
            headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:] if line)}
            body = await reader.readexactly(int(headers.get("content-length", "0")))
            status, payload = await self._answer(method, target, headers, body)
            data = b"" if payload is None else json.dumps(payload).encode()
            writer.write(b"HTTP/1.1 %d X\r\ncontent-length: %d\r\nconnection: close\r\n\r\n%s" % (status, len(data), data))
            await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    async def _answer(self, method: str, target: str, headers: dict[str, str], body: bytes) -> tuple[int, Any]:
        if headers.get("authorization") != f"Bearer {self.token}":
            return 401, {"error": "bad token"}
        path, _, query = target.partition("?")
        params = dict(part.split("=", 1) for part in query.split("&") if "=" in part)
        if method == "POST" and path == "/v1/certificates":
            if self.refuse_certificates:
                return 503, {"error": "the stand-in refuses certificates"}
            from datetime import datetime, timezone

            from meshkit.security.ca import certificates_pem, issue
            from meshkit.security.csr import load_csr, requested_identity

            csr = load_csr(json.loads(body)["csr"])
            certificate = issue(self.ca, csr, requested_identity(csr), datetime.now(timezone.utc))
            self.certificates += 1
            return 200, {
                "certificate_chain": certificates_pem([certificate]).decode(),
                "trust_bundle": self.ca.trust_bundle_pem().decode(),
                "not_after": int(certificate.not_valid_after_utc.timestamp()),
                "serial": format(certificate.serial_number, "x"),
            }
        if method == "POST" and path == "/v1/ack":
            self.acks.append(json.loads(body))
            return 200, {"ok": True}
        if method == "GET" and path == "/v1/snapshot":
            self.polls.append((time.monotonic(), params.get("version")))
            current = self.current
            if current is None or str(current.get("version")) == params.get("version"):
                assert self._changed is not None
                try:
                    await asyncio.wait_for(self._changed.wait(), min(float(params.get("wait", "30")), self.max_wait_s))
                except TimeoutError:
                    return 304, None
                current = self.current
            return 200, current
        return 404, {"error": "no such endpoint"}


@contextmanager
def stand_in_control_plane(token: str = "node-token") -> Iterator[StandInControlPlane]:
    server: StandInControlPlane = StandInControlPlane(token).start()
    try:
        yield server
    finally:
        server.stop()


# --- statistics for split and percentage checks ---


PER_REQUEST_DRAW = 0.9999
"""Confidence for shares decided by an independent draw per request (fault
and mirror percentages, as Envoy draws them). The suite holds several such
checks; at 99.9% each, one of them would fail by chance in about one full
run of 200."""


def binomial_bounds(n: int, p: float, confidence: float = 0.999) -> tuple[int, int]:
    """The central `confidence` interval of Binomial(n, p), exactly (summed pmf).

    A count outside it happens by chance with probability below
    1 - confidence, so a test asserting it fails for a real reason.
    """
    import math

    tail = (1.0 - confidence) / 2.0
    # In logs: comb(2000, 1000) does not fit a float.
    pmf = [math.exp(math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1) + k * math.log(p) + (n - k) * math.log1p(-p)) for k in range(n + 1)]
    low, total = 0, 0.0
    while total + pmf[low] <= tail:
        total += pmf[low]
        low += 1
    high, total = n, 0.0
    while total + pmf[high] <= tail:
        total += pmf[high]
        high -= 1
    return low, high
