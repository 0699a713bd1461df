"""The load generator form: header lines, and rows streaming out of a run while it goes."""

from __future__ import annotations

import asyncio

import pytest

from meshkit.loadgen import LoadSpec
from meshkit.notebook.load import parse_headers, run_streaming


def test_header_lines_become_a_dict() -> None:
    assert parse_headers("end-user: jason\n\n  x-canary:yes  \n") == {"end-user": "jason", "x-canary": "yes"}
    assert parse_headers("") == {}
    assert parse_headers("x-empty:") == {"x-empty": ""}


def test_a_bad_header_line_is_named_by_its_number() -> None:
    with pytest.raises(ValueError, match=r"line 2: expected 'Name: value', got 'oops'"):
        parse_headers("a: b\noops")
    with pytest.raises(ValueError, match="line 1"):
        parse_headers(": value")


async def _serve_ok() -> tuple[asyncio.AbstractServer, int]:
    """A minimal keep-alive HTTP/1.1 server answering 200 to every request."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while await reader.readuntil(b"\r\n\r\n"):
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
            await writer.drain()

    server = await asyncio.start_server(lambda r, w: _quietly(handle(r, w)), "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1]


async def _quietly(coro: object) -> None:
    try:
        await coro  # type: ignore[misc]
    except (asyncio.IncompleteReadError, ConnectionError):
        pass


def test_rows_stream_out_in_batches_while_the_run_goes_and_add_up_to_the_run() -> None:
    async def scenario() -> list[int]:
        server, port = await _serve_ok()
        batches: list[int] = []
        spec = LoadSpec(url=f"http://127.0.0.1:{port}/", rate=40.0, requests=60)
        async with server:
            await run_streaming(spec, asyncio.Event(), lambda rows: batches.append(len(rows)), flush_s=0.25)
        return batches

    batches = asyncio.run(scenario())
    assert sum(batches) == 60
    assert len(batches) >= 3, batches
