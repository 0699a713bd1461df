"""What a direction handler sees of a request, and what a listener asks of its handler.

The request path reads top to bottom: a listener's connection
(meshkit.sidecar.downstream) makes an `Exchange` per request
(meshkit.sidecar.exchange), which, when its turn comes, hands itself to the
listener's handler: outbound (meshkit.sidecar.outbound), inbound
(meshkit.sidecar.inbound) or the admin pages (meshkit.sidecar.admin). A
handler decides and calls back into the exchange only through `Request`,
so the handlers import nothing above them; the exchange carries out what
they chose (forward, route_to, or a response of the sidecar's own).
"""

from __future__ import annotations

import enum
from typing import TYPE_CHECKING, Protocol

from meshkit.core.tracing import RandomBits, ids_for_hop

if TYPE_CHECKING:
    from meshkit.core.dry_run import ShadowVerdict
    from meshkit.core.edits import CompiledOps
    from meshkit.core.framing import RequestHead
    from meshkit.core.routes import Rule
    from meshkit.sidecar.cluster import Cluster
    from meshkit.sidecar.mirror import Shadow
    from meshkit.sidecar.peer_check import PeerInfo
    from meshkit.sidecar.telemetry import Route
    from meshkit.sidecar.upstream import Pool

NO_CONFIG_DETAIL = (
    "The sidecar has not received a configuration yet, so it does not know where anything is. "
    "Check that the control plane is running; the sidecar keeps retrying."
)


class Direction(enum.Enum):
    """Which way a listener's traffic goes (its name in logs, metrics and the admin pages)."""

    INBOUND = "inbound"  # peer sidecars and plain callers -> this workload's app
    OUTBOUND = "outbound"  # this workload's app -> the mesh
    ADMIN = "admin"  # the sidecar's own pages; no proxied traffic


class Connection(Protocol):
    """The client connection a request came on, as a handler sees it."""

    @property
    def peer(self) -> PeerInfo | None:
        """The verified mTLS caller; None on plaintext."""

    @property
    def closed(self) -> bool:
        """The client has gone."""

    def refuse(self) -> None:
        """Close at once, answering nothing."""


class Request(Protocol):
    """One request, as a handler decides about it (an Exchange)."""

    route: Route | None  # the metric labels its telemetry goes under
    dry_run: tuple[ShadowVerdict, ...]  # dry-run AuthorizationPolicy verdicts, for its telemetry record
    request_id: bytes | None
    trace_id: bytes | None
    span_id: bytes | None
    parent_span_id: bytes | None

    @property
    def head(self) -> RequestHead | None: ...

    @property
    def down(self) -> Connection: ...

    @property
    def finished(self) -> bool:
        """Answered (or abandoned): nothing more may be sent for it."""

    def respond_local(self, letters: str, detail: str, status: int | None = None) -> None: ...

    def respond_denied(self, details: str) -> None: ...

    def respond(self, status: int, content_type: bytes, body: bytes) -> None: ...

    def forward(self, pool: Pool, upstream_head: bytes) -> None: ...

    def route_to(
        self,
        rule: Rule[Cluster],
        cluster: Cluster,
        upstream_head: bytes,
        response_ops: CompiledOps | None,
        delay: float | None,
        abort: int | None,
        shadow: Shadow | None,
    ) -> None: ...


class Handler(Protocol):
    """What a listener does with a request once it is its turn."""

    def dispatch(self, exchange: Request) -> None: ...


def stamp_ids(exchange: Request, head: RequestHead, bits: RandomBits) -> bytes:
    """Give the exchange its request and trace ids; the header lines carrying them on.

    ids_for_hop answers with a plain tuple: on every request, unpacking it is
    cheaper than building and reading a named one."""
    (
        exchange.request_id,
        exchange.trace_id,
        exchange.span_id,
        exchange.parent_span_id,
        lines,
    ) = ids_for_hop(head.request_id, head.traceparent, head.tracestate, bits)
    return lines
