"""The ASGI edge of the admin API: requests in, JSON responses out.

Handlers see a `Request` with the body already read and return a `Response`;
they signal client mistakes by raising `HttpError`. This keeps ASGI's message
protocol in one place, so the handlers read as plain functions.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

MAX_BODY_BYTES = 1 << 20  # a resource or record is a few KiB; a MiB is a mistake, not a config


class HttpError(Exception):
    """A request the API refuses: status, a one-line message, and extra JSON fields."""

    def __init__(self, status: int, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.extra = extra


@dataclass
class Response:
    """A JSON response; `body` None sends no body (304)."""

    status: int
    body: Any = None
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)


@dataclass
class Request:
    """One request with its body read; `receive` is kept to notice a disconnect."""

    method: str
    raw_path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes
    receive: Receive
    params: dict[str, str] = field(default_factory=dict)

    def json(self) -> Any:
        """The body as JSON, or a 400 saying where it stops being JSON."""
        if not self.body:
            raise HttpError(400, "request body is empty; expected a JSON document")
        try:
            # Decode first: json.loads(bytes) would guess UTF-16/32 from the
            # first bytes, and the API speaks UTF-8 only.
            return json.loads(self.body.decode("utf-8"), parse_constant=_refuse_constant)
        except UnicodeDecodeError as exc:
            raise HttpError(400, f"request body is not UTF-8: {exc.reason} at byte {exc.start}") from None
        except json.JSONDecodeError as exc:
            raise HttpError(400, f"request body is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
        except RecursionError:
            raise HttpError(400, "request body is not valid JSON: nested too deeply") from None

    def bearer_token(self) -> str | None:
        scheme, _, token = self.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return None
        return token.strip()

    async def disconnected(self) -> None:
        """Complete when the client goes away (the body has been read, so nothing else arrives)."""
        while (await self.receive())["type"] != "http.disconnect":
            pass


def _refuse_constant(name: str) -> None:
    """Python's json accepts NaN and Infinity; JSON does not, and the sidecars' parsers may not."""
    raise HttpError(400, f"request body is not valid JSON: {name} is not a JSON number")


async def read_request(scope: Scope, receive: Receive) -> Request:
    """Collect the request, refusing a body over MAX_BODY_BYTES with 413."""
    chunks: list[bytes] = []
    size = 0
    more = True
    while more:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise HttpError(413, f"request body is larger than {MAX_BODY_BYTES} bytes")
        chunks.append(chunk)
        more = message.get("more_body", False)
    raw_path = scope.get("raw_path") or scope["path"].encode()
    query = dict(parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True))
    headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
    return Request(scope["method"], raw_path.decode("latin-1"), query, headers, b"".join(chunks), receive)


def encode(response: Response) -> tuple[list[tuple[bytes, bytes]], bytes]:
    """Headers and body bytes for a response."""
    if response.body is None:
        return list(response.headers), b""
    body = json.dumps(response.body, separators=(",", ":")).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    return headers + response.headers, body


def error_response(error: HttpError) -> Response:
    return Response(error.status, {"error": error.message, **error.extra})


async def send_response(send: Send, response: Response) -> None:
    headers, body = encode(response)
    await send({"type": "http.response.start", "status": response.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
