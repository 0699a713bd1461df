"""A private event loop on a background thread: the async core behind the sync Lab.

A notebook kernel already runs an event loop in the main thread, so library
code may never call asyncio.run (it raises there) nor block that loop. The Lab
instead submits coroutines to its own loop on a daemon thread and waits on the
result, which works the same in a notebook, in a plain script and in a test.
This is how kopf and kr8s give notebooks a sync facade over an async core.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")

_lock = threading.Lock()
_loop: asyncio.AbstractEventLoop | None = None


def _start() -> asyncio.AbstractEventLoop:
    loop = asyncio.new_event_loop()
    ready = threading.Event()

    def run() -> None:
        asyncio.set_event_loop(loop)
        loop.call_soon(ready.set)
        loop.run_forever()

    threading.Thread(target=run, name="meshkit-loop", daemon=True).start()
    ready.wait()
    return loop


def loop() -> asyncio.AbstractEventLoop:
    """The shared background loop, started on first use."""
    global _loop
    with _lock:
        if _loop is None or _loop.is_closed():
            _loop = _start()
        return _loop


def submit(coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
    """Schedule `coro` on the background loop; returns a thread-safe future."""
    return asyncio.run_coroutine_threadsafe(coro, loop())


def run(coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
    """Run `coro` on the background loop and wait for its result."""
    if threading.current_thread().name == "meshkit-loop":
        coro.close()
        raise RuntimeError("meshkit.aio.run called from the meshkit loop itself; await the coroutine instead")
    return submit(coro).result(timeout)
