"""Bodies stream through the sidecar: 20 MB passes without 20 MB of memory.

The far side stalls (the app stops reading, or the client stops reading)
while 20 MB are offered. A sidecar without flow control would read it all
into a write buffer; this one pauses reading at the buffer's high-water mark,
so its resident memory stays within a few MB of where it started.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from tests.integration.sidecar_fixtures import (
    EchoServer,
    SidecarProcess,
    bootstrap,
    connect,
    echo_server,
    endpoint,
    parse_responses,
    read_until_close,
    running_sidecar,
    service,
    snapshot,
)

NODE = "default/client-0"
SIZE = 20 * 1024 * 1024
BLOCK = bytes(range(256)) * 256  # 64 KiB
# Generous: buffers, pools and allocator slack, far below the 20 MB a copy would cost.
MAX_GROWTH = 8 * 1024 * 1024


@pytest.fixture(scope="module")
def echo() -> Iterator[EchoServer]:
    with echo_server() as server:
        yield server


@pytest.fixture(scope="module")
def sidecar(echo: EchoServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[SidecarProcess]:
    boot = bootstrap(node=NODE, static=snapshot(NODE, [service("echo", [endpoint(echo.port, "echo-v1", "v1")])]))
    with running_sidecar(boot, tmp_path_factory.mktemp("streaming")) as proc:
        yield proc


class PeakRss:
    """Samples a process's resident memory in the background."""

    def __init__(self, pid: int) -> None:
        self.process = psutil.Process(pid)
        self.start = self.process.memory_info().rss
        self.peak = self.start
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.process.memory_info().rss)
            time.sleep(0.02)

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def growth(self) -> int:
        return self.peak - self.start


def body_blocks(chunked: bool) -> Iterator[bytes]:
    for _ in range(SIZE // len(BLOCK)):
        yield b"%x\r\n%s\r\n" % (len(BLOCK), BLOCK) if chunked else BLOCK
    if chunked:
        yield b"0\r\n\r\n"


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_20_mb_upload_to_a_stalled_app_streams_without_buffering(sidecar: SidecarProcess, echo: EchoServer, chunked: bool) -> None:
    echo.clear()
    framing = b"Transfer-Encoding: chunked" if chunked else b"Content-Length: %d" % SIZE
    head = b"POST http://echo/upload HTTP/1.1\r\nHost: echo\r\nx-echo-stall-ms: 1500\r\n%s\r\n\r\n" % framing
    with PeakRss(sidecar.pid) as rss, connect(sidecar.outbound, timeout=30) as sock:
        sock.sendall(head)
        for block in body_blocks(chunked):
            sock.sendall(block)
        sock.sendall(b"GET http://echo/done HTTP/1.1\r\nHost: echo\r\nConnection: close\r\n\r\n")
        raw, closed = read_until_close(sock, timeout=30)
    responses = parse_responses(raw)
    assert [r.status for r in responses] == [200, 200]
    seen = echo.snapshot()[0]
    assert seen.body_len == SIZE
    assert seen.body_sha256 == hashlib.sha256(BLOCK * (SIZE // len(BLOCK))).hexdigest()
    assert rss.growth < MAX_GROWTH, f"sidecar RSS grew by {rss.growth / 1e6:.1f} MB"


@pytest.mark.parametrize("mode", ["x-echo-size", "x-echo-chunked"])
def test_20_mb_download_to_a_stalled_client_streams_without_buffering(sidecar: SidecarProcess, mode: str) -> None:
    extra = b"x-echo-chunked: 1\r\n" if mode == "x-echo-chunked" else b""
    request = b"GET http://echo/download HTTP/1.1\r\nHost: echo\r\nConnection: close\r\nx-echo-size: %d\r\n%s\r\n" % (SIZE, extra)
    with PeakRss(sidecar.pid) as rss, connect(sidecar.outbound, timeout=30) as sock:
        sock.sendall(request)
        time.sleep(1.5)  # the client does not read: the sidecar must stop reading the app
        received = 0
        head = b""
        sock.settimeout(30)
        while True:
            data = sock.recv(1 << 20)
            if not data:
                break
            if not head:
                head, _, data = data.partition(b"\r\n\r\n")
            received += len(data)
    assert head.startswith(b"HTTP/1.1 200")
    if mode == "x-echo-size":
        assert received == SIZE
    else:
        assert received > SIZE  # plus chunk framing
    assert rss.growth < MAX_GROWTH, f"sidecar RSS grew by {rss.growth / 1e6:.1f} MB"
