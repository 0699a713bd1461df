"""A fixed-response HTTP/1.1 server: the upstream when HAProxy is not used.

The benchmark's upstream is normally a HAProxy instance answering with
``http-request return``; with ``--no-haproxy`` this stands in. It answers
every request with ``200 ok`` on keep-alive connections, parsing with
httptools on uvloop, and does no other work, so what it costs is the same for
every path measured. Being Python, it is slower than HAProxy: at saturation
it can be the bottleneck of the direct path (the README says so).

Run: ``python benchmarks/upstream.py PORT``; it prints ``ready`` once listening.
"""

from __future__ import annotations

import asyncio
import signal
import sys

import httptools

RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok"
CLOSING = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"


class FixedResponse(asyncio.Protocol):
    """Answers each complete request at once; no per-request allocation beyond the parser's."""

    def __init__(self) -> None:
        self._parser = httptools.HttpRequestParser(self)
        self._transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError:
            if self._transport is not None:
                self._transport.write(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                self._transport.close()

    def on_message_complete(self) -> None:
        if self._transport is None:
            return
        if self._parser.should_keep_alive():
            self._transport.write(RESPONSE)
        else:
            self._transport.write(CLOSING)
            self._transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self._transport = None


async def serve(port: int) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(FixedResponse, "127.0.0.1", port, backlog=1024)
    stopped = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stopped.set)
    print("ready", flush=True)
    async with server:
        await stopped.wait()


if __name__ == "__main__":
    try:
        import uvloop
    except ImportError:
        asyncio.run(serve(int(sys.argv[1])))
    else:
        uvloop.run(serve(int(sys.argv[1])))
