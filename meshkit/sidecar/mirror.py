"""Mirrored requests: a copy sent to another destination, its answer ignored.

Istio's `mirror` (Envoy's request_mirror_policies): "the responses of the
mirrored traffic are ignored" and the copy is "fire and forget"
(https://istio.io/latest/docs/tasks/traffic-management/mirroring/). Envoy
marks the copy by appending `-shadow` to its Host, so the mirror's own logs
and metrics can tell copies from real traffic; meshkit does the same,
before the port (`reviews-shadow:9080`).

A `Shadow` is sent once the original request is complete (its body is
needed whole) on a connection of its own, so it never waits for or delays
the original; if it cannot connect, the copy is dropped. Its answer is read
to the end (so the connection can be reused) and thrown away.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from meshkit.core.framing import parse_response_head, upstream_reusable

if TYPE_CHECKING:
    from meshkit.sidecar.upstream import Pool, UpstreamProtocol


def shadow_authority(authority: bytes) -> bytes:
    """`reviews:9080` -> `reviews-shadow:9080` (Envoy's mirror host suffix)."""
    if authority.startswith(b"["):
        return authority  # an IP literal has no name to mark
    host, colon, port = authority.partition(b":")
    return host + b"-shadow" + colon + port


class Shadow:
    """One mirrored copy of a request."""

    __slots__ = ("pool", "head", "method", "tick", "data", "conn", "reusable")

    def __init__(self, pool: Pool, head: bytes, method: bytes, tick: Callable[[], int]) -> None:
        self.pool = pool
        self.head = head
        self.method = method
        self.tick = tick
        self.data = b""
        self.conn: UpstreamProtocol | None = None
        self.reusable = False

    def launch(self, body: Iterable[bytes]) -> None:
        """Send the copy (head and the whole body)."""
        self.data = self.head + b"".join(body)
        conn = self.pool.acquire()
        if conn is not None:
            self.on_connected(conn, 0)
        else:
            self.pool.connect(self, 0)

    # what an upstream connection needs of its user

    def cork(self) -> None:
        pass

    def uncork(self) -> None:
        pass

    def hold_reading(self) -> None:
        pass

    def release_reading(self) -> None:
        pass

    def answers_head(self) -> bool:
        return self.method == b"HEAD"

    def on_connected(self, conn: UpstreamProtocol, attempt: int) -> None:
        self.conn = conn
        conn.send(self, self.data)
        self.data = b""

    def on_connect_failed(self, pool: Pool, reason: str, attempt: int) -> None:
        self.data = b""

    def on_response_head(self, status: int, reason: bytes, version: str, headers: list[tuple[bytes, bytes]]) -> bool:
        parsed = parse_response_head(version, headers, False)
        if isinstance(parsed, str):
            self.on_upstream_error(parsed)
            return False
        self.reusable = upstream_reusable(self.method, status, parsed)
        return self.method != b"HEAD"

    def on_response_body(self, chunk: bytes) -> None:
        pass

    def on_response_end(self) -> None:
        conn = self.conn
        self.conn = None
        if conn is None:
            return
        if self.reusable:
            self.pool.release(conn, self.tick())
        else:
            conn.exchange = None
            conn.close()

    def on_upstream_lost(self, conn: UpstreamProtocol) -> None:
        self.conn = None

    def on_upstream_error(self, reason: str) -> None:
        conn = self.conn
        self.conn = None
        if conn is not None:
            conn.abort()
