"""The demo service as a bare ASGI application.

Per request: match the path, wait the drawn latency, fail at the error rate,
make the downstream calls, and answer JSON that says who served it:
`{"service", "version", "instance", ...role fields, "calls": [...]}`.
productpage also answers a browser with Bookinfo's page and has Bookinfo's
own routes (API, sign-in, /static): productpage.py decides them.
No web framework: the whole app is this class, and every decision in it is
a pure function from another module.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from meshkit.demo.calls import CallResult
from meshkit.demo.headers import end_user_from_cookie, header_value, prefers_html
from meshkit.demo.latency import fit_lognormal
from meshkit.demo.outbound import Downstream
from meshkit.demo.paths import match_path
from meshkit.demo.productpage import (
    LOGIN_BODY_LIMIT, OWN_PATHS, Answer, Route, api_answer, json_answer, login_answer, logout_answer, method_answer,
    page_answer, page_calls, productpage_route, route_calls, static_answer,
)
from meshkit.demo.roles import compose, outgoing_headers
from meshkit.demo.spec import AppSpec, CallSpec

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

HEALTH_PATH = "/healthz"


async def _send(send: Send, answer: Answer) -> None:
    await send({
        "type": "http.response.start",
        "status": answer.status,
        "headers": [(b"content-type", answer.content_type.encode()),
                    (b"content-length", str(len(answer.body)).encode()),
                    *((name.encode("latin-1"), value.encode("latin-1")) for name, value in answer.headers)],
    })
    await send({"type": "http.response.body", "body": answer.body})


async def _send_json(send: Send, status: int, body: dict[str, Any]) -> None:
    await _send(send, json_answer(status, body))


async def _read_body(receive: Receive, limit: int) -> bytes | None:
    """The request body, or None when it is longer than `limit` bytes or the client left."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return None
        chunk: bytes = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


class DemoService:
    """One demo workload instance; `rng` is injectable so tests can seed it."""

    def __init__(self, spec: AppSpec, *, instance: str, downstream: Downstream,
                 rng: random.Random | None = None) -> None:
        self.spec = spec
        self.instance = instance
        self.downstream = downstream
        self.rng = rng if rng is not None else random.Random()
        self.latency = fit_lognormal(spec.p50_ms, spec.p99_ms)

    def _identity(self) -> dict[str, Any]:
        return {"service": self.spec.service, "version": self.spec.version, "instance": self.instance}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
        elif scope["type"] == "http":
            await self._http(scope, receive, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        """Close the pooled client on shutdown, so no connection outlives the app."""
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.downstream.aclose()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await self._serve(scope, receive, send)
        except asyncio.CancelledError:
            # uvicorn cancels requests still running when its graceful
            # shutdown time is up. Answering 503 ends the request the way a
            # real server going away would, instead of a traceback in the log.
            await _send_json(send, 503, {**self._identity(), "error": f"{self.instance} is shutting down"})

    async def _serve(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope["path"]
        if path == HEALTH_PATH:
            await _send_json(send, 200, {"ok": True, **self._identity()})
            return
        route = productpage_route(path) if self.spec.role == "productpage" else None
        product_id = match_path(self.spec.paths, path) if route is None else route.product_id
        if product_id is None:
            own = OWN_PATHS if self.spec.role == "productpage" else ()
            served = ", ".join((*self.spec.paths, *own))
            await _send_json(send, 404, {**self._identity(),
                                         "error": f"{self.spec.service} has no path {path}; it serves {served}"})
            return
        await asyncio.sleep(self.latency.draw_ms(self.rng) / 1000.0)
        if self.rng.random() < self.spec.error_rate:
            await _send_json(send, 500, {
                **self._identity(),
                "error": f"injected failure: {self.instance} fails {self.spec.error_rate:.0%} of requests "
                         f"(error_rate {self.spec.error_rate:g})",
                "calls": [],
            })
            return
        headers = outgoing_headers(self.spec, scope["headers"])
        if route is not None:
            await _send(send, await self._productpage(route, scope, receive, headers))
            return
        calls = page_calls(self.spec.calls) if self.spec.role == "productpage" else self.spec.calls
        results = await self._calls(calls, product_id, headers)
        status, fields = compose(self.spec, product_id, results)
        body = {**self._identity(), **fields, "calls": [result.record() for result in results]}
        if self.spec.role == "productpage":
            html = prefers_html(header_value(scope["headers"], "accept"))
            await _send(send, page_answer(status, body, end_user_from_cookie(headers), html=html))
            return
        await _send_json(send, status, body)

    async def _productpage(self, route: Route, scope: Scope, receive: Receive,
                           headers: list[tuple[str, str]]) -> Answer:
        """productpage's own routes (productpage.py decides; this does the I/O)."""
        refused = method_answer(route, scope["method"])
        if refused is not None:
            return refused
        if route.name == "static":
            return static_answer(scope["path"])
        if route.name == "logout":
            return logout_answer()
        if route.name == "login":
            form = await _read_body(receive, LOGIN_BODY_LIMIT)
            if form is None:
                return json_answer(413, {"error": f"a sign-in form is at most {LOGIN_BODY_LIMIT} bytes"})
            return login_answer(form, header_value(scope["headers"], "content-type") or "",
                                html=prefers_html(header_value(scope["headers"], "accept")))
        results = await self._calls(route_calls(route, self.spec.calls), route.product_id, headers)
        return api_answer(route, results, self.spec.calls)

    async def _calls(self, calls: tuple[CallSpec, ...], product_id: str,
                     headers: list[tuple[str, str]]) -> tuple[CallResult, ...]:
        if self.spec.concurrent_calls:
            return tuple(await asyncio.gather(*(self.downstream.call(c, product_id, headers) for c in calls)))
        return tuple([await self.downstream.call(c, product_id, headers) for c in calls])
