"""The ASGI app driven in-process: what only shows between messages (a client leaving mid-poll)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from meshkit.control.api import ControlPlane
from meshkit.control.store import Store

ADMIN = "admin-token"


def scope(method: str, path: str, query: str = "", token: str = ADMIN) -> dict[str, Any]:
    return {
        "type": "http", "method": method, "path": path, "raw_path": path.encode(),
        "query_string": query.encode(), "headers": [(b"authorization", f"Bearer {token}".encode())],
    }


async def call(app: ControlPlane, method: str, path: str, body: Any = None, query: str = "") -> tuple[int, Any]:
    sent: list[dict[str, Any]] = []
    payload = b"" if body is None else json.dumps(body).encode()
    messages = [{"type": "http.request", "body": payload, "more_body": False}]

    async def receive() -> dict[str, Any]:
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(scope(method, path, query), receive, send)
    body_bytes = sent[1]["body"]
    return sent[0]["status"], json.loads(body_bytes) if body_bytes else None


RECORD = {"workload": "reviews-v1", "service": "reviews", "service_port": 9080, "service_account": "reviews",
          "address": "127.0.0.1", "port": 41000, "sidecar": True}


def test_a_client_that_leaves_mid_poll_releases_its_slot_at_once(tmp_path: Path) -> None:
    async def scenario() -> tuple[bool, int]:
        app = ControlPlane(Store.open(tmp_path / "store.json"), ADMIN, debounce=0.0)
        status, answer = await call(app, "PUT", "/v1/registry/instances/default/reviews-v1-0", RECORD)
        assert status == 200, answer
        await asyncio.sleep(0.01)  # the registration is published on the next loop turns
        assert app.publisher.published.version == 1
        leave = asyncio.Event()
        messages = [{"type": "http.request", "body": b"", "more_body": False}]

        async def receive() -> dict[str, Any]:
            if messages:
                return messages.pop(0)
            await leave.wait()
            return {"type": "http.disconnect"}

        async def send(message: dict[str, Any]) -> None:
            pass

        poll = scope("GET", "/v1/snapshot", "node=default/reviews-v1-0&version=1&wait=60")
        task = asyncio.ensure_future(app(poll, receive, send))
        await asyncio.sleep(0.05)
        polling = app.acks.nodes["default/reviews-v1-0"].open_polls == 1
        leave.set()
        await asyncio.wait_for(task, 5.0)
        return polling, app.acks.nodes["default/reviews-v1-0"].open_polls

    polling, open_after = asyncio.run(scenario())
    assert polling is True
    assert open_after == 0


def test_an_unexpected_failure_is_a_500_with_one_line_not_a_traceback(tmp_path: Path) -> None:
    async def scenario() -> tuple[int, Any]:
        store = Store.open(tmp_path / "store.json")
        app = ControlPlane(store, ADMIN)
        store.state.instances["default/broken"] = {"not": "a record"}  # damage that no API call can make
        return await call(app, "GET", "/v1/registry")

    status, answer = asyncio.run(scenario())
    assert status == 500
    assert answer == {"error": "internal error in the control plane; see its log"}
