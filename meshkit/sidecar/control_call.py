"""One HTTP call to the control plane, for the config, certificate and telemetry clients.

Off the hot path (one call per config change, certificate or telemetry
batch), so it uses asyncio streams and a fresh connection per call, which
keeps it short. Every failure (refused, reset, timeout, a response that is
not HTTP) becomes ControlPlaneError at this boundary.
"""

from __future__ import annotations

import asyncio
import json

from httptools import HttpParserError, HttpResponseParser

from meshkit.errors import ControlPlaneError
from meshkit.sidecar.bootstrap import ControlPlane

MAX_RESPONSE_BYTES = 32 * 1024 * 1024


class _Response:
    """Collects one HTTP response from httptools callbacks."""

    def __init__(self) -> None:
        self.parts: list[bytes] = []
        self.size = 0
        self.done = False

    def on_body(self, body: bytes) -> None:
        self.size += len(body)
        if self.size > MAX_RESPONSE_BYTES:
            raise ValueError("response too large")
        self.parts.append(body)

    def on_message_complete(self) -> None:
        self.done = True


async def call(cp: ControlPlane, method: str, target: str, body: bytes | None, timeout_s: float) -> tuple[int, bytes]:
    """One HTTP request to the control plane: (status, body); ControlPlaneError when there is no answer."""
    lines = [
        f"{method} {target} HTTP/1.1",
        f"host: {cp.host}:{cp.port}",
        f"authorization: Bearer {cp.token}",
        "connection: close",
    ]
    if body is not None:
        lines += ["content-type: application/json", f"content-length: {len(body)}"]
    request = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + (body or b"")
    collected = _Response()
    parser = HttpResponseParser(collected)
    try:
        async with asyncio.timeout(timeout_s):
            reader, writer = await asyncio.open_connection(cp.host, cp.port)
            try:
                writer.write(request)
                while not collected.done:
                    data = await reader.read(65536)
                    if not data:
                        break
                    parser.feed_data(data)
            finally:
                writer.close()
    except TimeoutError as exc:
        raise ControlPlaneError(f"control plane at {cp.url} did not answer within {timeout_s:g} s") from exc
    except OSError as exc:
        raise ControlPlaneError(f"control plane at {cp.url} unreachable: {exc.strerror or exc}") from exc
    except HttpParserError as exc:
        raise ControlPlaneError(f"control plane at {cp.url} sent an invalid response: {exc}") from exc
    if not collected.done:
        raise ControlPlaneError(f"control plane at {cp.url} closed the connection mid-response")
    return parser.get_status_code(), b"".join(collected.parts)


def error_text(status: int, body: bytes) -> str:
    try:
        doc = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError):
        doc = None
    if isinstance(doc, dict) and isinstance(doc.get("error"), str):
        return f"{status}: {doc['error']}"
    return f"{status}: {body[:200].decode('utf-8', 'replace')}"
