"""The demo service as a bare ASGI application.

Per request: match the path, wait the drawn latency, fail at the error rate,
make the downstream calls, and answer JSON that says who served it:
`{"service", "version", "instance", ...role fields, "calls": [...]}`.
No web framework: the whole app is this class, and every decision in it is
a pure function from another module.
"""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from meshkit.demo.calls import CallResult
from meshkit.demo.latency import fit_lognormal
from meshkit.demo.outbound import Downstream
from meshkit.demo.paths import match_path
from meshkit.demo.roles import compose, outgoing_headers
from meshkit.demo.spec import AppSpec

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

HEALTH_PATH = "/healthz"


async def _send_json(send: Send, status: int, body: dict[str, Any]) -> None:
    payload = json.dumps(body).encode()
    await send({
        "type": "http.response.start",
        "status": status,
        "headers": [(b"content-type", b"application/json"),
                    (b"content-length", str(len(payload)).encode())],
    })
    await send({"type": "http.response.body", "body": payload})


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
            await self._http(scope, send)

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

    async def _http(self, scope: Scope, send: Send) -> None:
        try:
            await self._serve(scope, send)
        except asyncio.CancelledError:
            # uvicorn cancels requests still running when its graceful
            # shutdown time is up. Answering 503 ends the request the way a
            # real server going away would, instead of a traceback in the log.
            await _send_json(send, 503, {**self._identity(), "error": f"{self.instance} is shutting down"})

    async def _serve(self, scope: Scope, send: Send) -> None:
        path: str = scope["path"]
        if path == HEALTH_PATH:
            await _send_json(send, 200, {"ok": True, **self._identity()})
            return
        product_id = match_path(self.spec.paths, path)
        if product_id is None:
            served = ", ".join(self.spec.paths)
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
        results = await self._calls(product_id, outgoing_headers(self.spec, scope["headers"]))
        status, fields = compose(self.spec, product_id, results)
        await _send_json(send, status, {**self._identity(), **fields,
                                        "calls": [result.record() for result in results]})

    async def _calls(self, product_id: str, headers: list[tuple[str, str]]) -> tuple[CallResult, ...]:
        calls = self.spec.calls
        if self.spec.concurrent_calls:
            return tuple(await asyncio.gather(*(self.downstream.call(c, product_id, headers) for c in calls)))
        return tuple([await self.downstream.call(c, product_id, headers) for c in calls])
