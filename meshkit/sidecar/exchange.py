"""One request through the sidecar and the response that answers it.

An `Exchange` is the meeting point of the two connections of a proxied
request: the client's (`DownstreamProtocol`) and the endpoint's
(`UpstreamProtocol`). It streams the request body up and the response body
down as the bytes arrive, never holding a whole body, and it turns every way
the upstream side can fail into the response the learner sees: the mesh's
own reply with its Envoy flag (UF, UC, UPE, ...) when nothing has been sent
yet, or a closed connection when a response was already under way.

Who decides where the request goes is the listener's handler. An inbound
request is simply forwarded (`forward`). An outbound request is *routed*
(`route`): the handler has picked a rule and a cluster, and the exchange
carries out the rule's policies, Envoy's router filter in miniature:

    fault delay -> fault abort (FI) -> circuit breaker on requests (UO)
    -> mirror copy -> attempt: pick endpoint (UH), get a connection (UO)
    -> response head: retry? (policy, budget, max_retries) -> relay
    route timeout (UT) over the whole; per-try timeout over each attempt

The decisions are pure functions in meshkit.core (what next after a
failed attempt: meshkit.core.attempts; circuit breakers, and when each
timeout runs and what its firing does: meshkit.core.limits; retry
conditions, backoff and budget: meshkit.core.retry; outlier detection,
balancing); the exchange only carries them out. Timers are one
`loop.call_later` per armed timeout, so a timeout fires when it is due
rather than on the coarse clock's next tick. Retrying a request with a
body needs the body again: it is kept (up to `REPLAY_LIMIT`, Envoy's
default buffer limit of 1 MiB) only when the route could retry after the
request reached the upstream, or mirrors it; a bigger body is not retried,
as in Envoy.

An exchange's state is explicit, changed only along a transition table (as
h11 keeps each side of a connection). Its life, `Phase` (`TRANSITIONS`):

    QUEUED -> DISPATCHED -> RESPONDING -> DONE
                  |                        ^
                  +------------------------+  (the client left before any answer)

QUEUED: parsed, behind earlier requests on its connection. DISPATCHED: its
turn came; with its handler, waiting (a delay, a backoff, a connection) or
on an attempt. RESPONDING: a response head went to the client (relayed, or
the sidecar's own), so nothing but closing can change the answer now.
DONE: answered or abandoned (the client left), telemetry recorded, what it
held given back.

The request side, `RequestBody` (`BODY_TRANSITIONS`), moves on its own: a
body may still be arriving in any phase.

    ARRIVING -> COMPLETE      all read: the connection may carry the next request
        |
        +-----> STOPPED       a malformed body: nothing more is read (a refused head starts here)

What a routed request holds of its cluster's circuit breakers, `Slots`
(`SLOT_TRANSITIONS`), so that DONE gives back exactly that:

    NO_SLOT -> REQUEST_SLOT -> RETRY_SLOT     admitted; then its first retry
       ^            |               |
       +------------+---------------+         given back when it is DONE

The other fields are facts about framing and connections (how the response
is framed, whether either connection may be used again), each with its
reason beside it in `__init__`.
"""

from __future__ import annotations

import asyncio
import enum
import random
import time
from typing import TYPE_CHECKING, Protocol, TypeVar

from meshkit.core.edits import CompiledOps
from meshkit.core.framing import (
    BODY_CHUNKED,
    BODY_NONE,
    Rejection,
    RequestHead,
    build_response_head,
    relay_response_head,
)
from meshkit.core.local_reply import FLAGS, FLAGS_HEADER, NO_FLAGS, render_local_reply, render_response
from meshkit.core.dry_run import ShadowVerdict
from meshkit.core.attempts import GIVE_UP_FLAG, OUTLIER_STATUS, next_attempt, retry_stale_connection
from meshkit.core.limits import (
    PENDING_FULL,
    STREAM_IDLE_DETAILS,
    admit_request,
    body_idle_detail,
    on_body_idle,
    on_route_timeout,
    on_try_timeout,
    pending_full_detail,
    per_try_timeout,
    per_try_timeout_detail,
    requests_full_detail,
    route_timeout_detail,
    route_timer_start,
)
from meshkit.core.retry import CONNECT_FAILURE, PER_TRY_TIMEOUT, RESET, backoff_s
from meshkit.core.routes import Rule
from meshkit.sidecar.clock import Clock
from meshkit.sidecar.flow import CONNECTING, PEER_FULL, ReadGate
from meshkit.sidecar.handling import Connection, Direction, Handler
from meshkit.sidecar.telemetry import MAX_RECORDED_TEXT, RequestRecord, Route, Telemetry

if TYPE_CHECKING:
    from meshkit.sidecar.cluster import Cluster, Host
    from meshkit.sidecar.mirror import Shadow
    from meshkit.sidecar.upstream import ConnectionLimit, Pool, UpstreamProtocol

_CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
_LAST_CHUNK = b"0\r\n\r\n"
REPLAY_LIMIT = 1024 * 1024
_jitter = random.Random()


class Phase(enum.IntEnum):
    """Where an exchange is in its life (the module docstring draws it)."""

    QUEUED = 0
    DISPATCHED = 1
    RESPONDING = 2
    DONE = 3


QUEUED, DISPATCHED, RESPONDING, DONE = Phase.QUEUED, Phase.DISPATCHED, Phase.RESPONDING, Phase.DONE

# The phases each phase may move to; anything else is a bug in the sidecar, raised at once.
TRANSITIONS: dict[Phase, frozenset[Phase]] = {
    QUEUED: frozenset({DISPATCHED}),
    DISPATCHED: frozenset({RESPONDING, DONE}),  # DONE: the client left, or a mode change refused it
    RESPONDING: frozenset({DONE}),
    DONE: frozenset(),
}




class RequestBody(enum.IntEnum):
    """How much of the request the client has sent: the request side's own state (h11 keeps one per side)."""

    ARRIVING = 0  # its body (maybe empty) has not all been read yet
    COMPLETE = 1  # all of it was read: the next request on the connection starts after it
    STOPPED = 2  # nothing more will be read: the head was refused, or the body was malformed


ARRIVING, COMPLETE, STOPPED = RequestBody.ARRIVING, RequestBody.COMPLETE, RequestBody.STOPPED

BODY_TRANSITIONS: dict[RequestBody, frozenset[RequestBody]] = {
    ARRIVING: frozenset({COMPLETE, STOPPED}),
    COMPLETE: frozenset(),
    STOPPED: frozenset(),
}


class Slots(enum.IntEnum):
    """What a routed request holds of its cluster's circuit breakers (meshkit.core.limits), given back when it is DONE."""

    NO_SLOT = 0  # not admitted (an inbound request, one refused or not yet admitted), or given back
    REQUEST_SLOT = 1  # counted among the cluster's requests in flight (http2MaxRequests)
    RETRY_SLOT = 2  # and, since its first retry, among its retries in flight (maxRetries)


NO_SLOT, REQUEST_SLOT, RETRY_SLOT = Slots.NO_SLOT, Slots.REQUEST_SLOT, Slots.RETRY_SLOT

SLOT_TRANSITIONS: dict[Slots, frozenset[Slots]] = {
    NO_SLOT: frozenset({REQUEST_SLOT}),  # admitted
    REQUEST_SLOT: frozenset({RETRY_SLOT, NO_SLOT}),  # a first retry; or answered, the slot given back
    RETRY_SLOT: frozenset({NO_SLOT}),  # answered: both given back
}

_State = TypeVar("_State", Phase, RequestBody, Slots)


def read_backwards(table: dict[_State, frozenset[_State]]) -> dict[_State, frozenset[_State]]:
    """A transition table read backwards: the states each state may be entered from."""
    return {state: frozenset(before for before, following in table.items() if state in following) for state in table}


# The moves check these inline (a method call per move would cost the hot
# path more than the check itself).
ENTERED_FROM = read_backwards(TRANSITIONS)
BODY_ENTERED_FROM = read_backwards(BODY_TRANSITIONS)
SLOT_ENTERED_FROM = read_backwards(SLOT_TRANSITIONS)
_INTO_DISPATCHED = ENTERED_FROM[DISPATCHED]
_INTO_RESPONDING = ENTERED_FROM[RESPONDING]
_INTO_DONE = ENTERED_FROM[DONE]
_INTO_COMPLETE = BODY_ENTERED_FROM[COMPLETE]
_INTO_STOPPED = BODY_ENTERED_FROM[STOPPED]
_INTO_REQUEST_SLOT = SLOT_ENTERED_FROM[REQUEST_SLOT]
_INTO_RETRY_SLOT = SLOT_ENTERED_FROM[RETRY_SLOT]

# A module constant: an enum member looked up on its class costs a Python call per request.
INBOUND = Direction.INBOUND


class ExchangeStateError(RuntimeError):
    """An exchange was asked to move to a state its current one does not lead to."""


class Side(Protocol):
    """The settings of the listener a request came to, as the exchange reads them."""

    @property
    def direction(self) -> Direction: ...
    @property
    def handler(self) -> Handler: ...
    @property
    def clock(self) -> Clock: ...
    @property
    def telemetry(self) -> Telemetry | None: ...
    @property
    def local_reply_headers(self) -> list[tuple[bytes, bytes]]: ...
    @property
    def response_extra(self) -> bytes: ...
    @property
    def drops_mesh_response_headers(self) -> bool: ...
    @property
    def principal(self) -> str: ...


class Downstream(Connection, Protocol):
    """The client connection, as the exchange uses it (meshkit.sidecar.downstream.DownstreamProtocol)."""

    @property
    def listener(self) -> Side: ...
    @property
    def gate(self) -> ReadGate: ...
    @property
    def draining(self) -> bool: ...
    @property
    def write_paused(self) -> bool: ...

    def write(self, data: bytes) -> None: ...
    def cork(self) -> None: ...
    def uncork(self) -> None: ...
    def transport_close(self) -> None: ...
    def exchange_finished(self, exchange: Exchange) -> None: ...


class Exchange:
    """A request in flight, from its parsed head to the last response byte."""

    __slots__ = (
        "down",
        "head",
        "rejection",
        "phase",
        "request_body",
        "pending",
        "up",
        "pool",
        "upstream_head",
        "reused",
        "body_mode",
        "close_delimited",
        "reusable",
        "keep_alive",
        "status",
        "flags",
        "route",
        "request_id",
        "trace_id",
        "t0",
        "span_id",
        "parent_span_id",
        "request_bytes",
        "response_bytes",
        "details",
        "dry_run",
        # routed (outbound) requests only
        "rule",
        "cluster",
        "host",
        "tried",
        "attempt",
        "retries",
        "waiting",
        "replay",
        "replay_size",
        "response_ops",
        "hash_key",
        "extra_flags",
        "slots",
        "route_timer",
        "try_timer",
        "wait_timer",
        "shadow",
    )

    def __init__(self, down: Downstream, head: RequestHead | None, rejection: Rejection | None = None) -> None:
        self.down = down
        self.head = head
        self.rejection = rejection
        self.phase = QUEUED
        self.request_body = ARRIVING if head is not None else STOPPED
        self.pending: list[bytes] | None = []
        self.up: UpstreamProtocol | None = None
        self.pool: Pool | None = None
        self.upstream_head = b""
        # Facts about framing and connections, not steps in the exchange's life:
        self.reused = False  # the attempt's connection came from the pool (the server may have closed it as we wrote)
        self.body_mode = BODY_NONE  # how the response body is framed to the client (core.framing's BODY_*)
        self.close_delimited = False  # only the upstream closing its connection ends the response body
        self.reusable = False  # the upstream connection may carry another request after this response
        self.keep_alive = head is not None and head.keep_alive  # the client's connection persists after it (downstream reads it)
        self.status = 0
        self.flags = NO_FLAGS
        self.route: Route | None = None
        self.request_id: bytes | None = None
        self.trace_id: bytes | None = None
        self.t0 = time.perf_counter()
        self.span_id: bytes | None = None
        self.parent_span_id: bytes | None = None
        self.request_bytes = 0
        self.response_bytes = 0
        self.details = ""  # Envoy's response code details, for the sidecar's own decisions (RBAC)
        self.dry_run: tuple[ShadowVerdict, ...] = ()  # dry-run AuthorizationPolicy verdicts (admission), for telemetry
        self.rule: Rule[Cluster] | None = None
        self.cluster: Cluster | None = None
        self.host: Host | None = None
        self.tried: set[Host] | None = None
        self.attempt = 0
        self.retries = 0
        self.waiting: ConnectionLimit | None = None
        self.replay: list[bytes] | None = None
        self.replay_size = 0
        self.response_ops: CompiledOps | None = None
        self.hash_key: bytes | None = None
        self.extra_flags = ""
        self.slots = NO_SLOT
        self.route_timer: asyncio.TimerHandle | None = None
        self.try_timer: asyncio.TimerHandle | None = None
        self.wait_timer: asyncio.TimerHandle | None = None
        self.shadow: Shadow | None = None

    # --- its state ---

    @property
    def started(self) -> bool:
        """Its turn has come (it is no longer queued)."""
        return self.phase is not QUEUED

    @property
    def finished(self) -> bool:
        """Answered or abandoned: nothing more is sent for it."""
        return self.phase is DONE

    def _wrong_move(self, to: Phase | RequestBody | Slots) -> ExchangeStateError:
        now = self.phase if isinstance(to, Phase) else self.request_body if isinstance(to, RequestBody) else self.slots
        return ExchangeStateError(f"an exchange's {type(to).__name__} cannot go from {now.name} to {to.name}")

    # --- the request side (called by DownstreamProtocol) ---

    def start(self) -> None:
        """Begin serving: the exchange is now first in its connection's queue."""
        if self.phase not in _INTO_DISPATCHED:
            raise self._wrong_move(DISPATCHED)
        self.phase = DISPATCHED
        if self.rejection is not None:
            self.respond_local("DPE", self.rejection.reason, status=self.rejection.status)
            return
        self.down.listener.handler.dispatch(self)

    def on_request_body(self, chunk: bytes) -> None:
        assert self.head is not None
        self.request_bytes += len(chunk)
        data = b"%x\r\n%s\r\n" % (len(chunk), chunk) if self.head.chunked else chunk
        if self.replay is not None:
            self._keep(data)
        up = self.up
        if up is not None:
            assert up.transport is not None
            up.transport.write(data)
        elif self.pending is not None:
            self.pending.append(data)

    def on_request_end(self) -> None:
        if self.request_body not in _INTO_COMPLETE:
            raise self._wrong_move(COMPLETE)
        self.request_body = COMPLETE
        assert self.head is not None
        if self.head.chunked:
            if self.replay is not None:
                self._keep(_LAST_CHUNK)
            up = self.up
            if up is not None:
                assert up.transport is not None
                up.transport.write(_LAST_CHUNK)
            elif self.pending is not None:
                self.pending.append(_LAST_CHUNK)
        rule = self.rule
        if rule is not None:
            timeout = route_timer_start(rule.timeout, self.slots is not NO_SLOT, True)
            if timeout is not None:
                self._arm_route_timeout(timeout)
        shadow = self.shadow
        if shadow is not None:
            self.shadow = None
            if self.replay is not None:
                shadow.launch(self.replay)

    def abort_request(self, rejection: Rejection) -> None:
        """The request's body turned out malformed after it was dispatched."""
        if self.request_body not in _INTO_STOPPED:
            raise self._wrong_move(STOPPED)
        self.request_body = STOPPED
        self.keep_alive = False
        self.pending = None
        self.shadow = None
        if self.up is not None:
            self._drop_upstream()
        if self.phase is DONE:
            return
        if self.phase is RESPONDING:
            self.flags = "DPE"
            self.down.transport_close()
            self._finish()
        else:
            self.respond_local("DPE", rejection.reason, status=rejection.status)

    def on_body_idle_timeout(self, timeout: float) -> bool:
        """The request body stopped arriving for the stream idle timeout (meshkit.core.limits.on_body_idle).

        The upstream connection carrying the partial request is dropped, not
        pooled, and what a routed request holds of its cluster is given back
        when it is DONE. True when it acted.
        """
        phase = self.phase
        verdict = on_body_idle(self.request_body is not ARRIVING, phase is RESPONDING, phase is DONE)
        if not verdict.acts:
            return False
        if self.request_body not in _INTO_STOPPED:
            raise self._wrong_move(STOPPED)
        self.request_body = STOPPED
        self.keep_alive = False
        self.pending = None
        self.shadow = None
        self.details = STREAM_IDLE_DETAILS
        if self.wait_timer is not None:  # a delay or a backoff: no attempt follows now
            self.wait_timer.cancel()
            self.wait_timer = None
        self._abandon_attempt()
        if verdict.cut:
            self.flags = verdict.flag
            self.down.transport_close()
            self._finish()
        else:
            self.respond_local(verdict.flag, body_idle_detail(timeout), status=verdict.status)
        return True

    def on_downstream_lost(self) -> None:
        """The client went away; abandon whatever is in flight upstream."""
        self.keep_alive = False
        self.pending = None
        self.shadow = None
        if self.up is not None:
            self._drop_upstream()
        if self.phase is DISPATCHED or self.phase is RESPONDING:
            self.flags = "DC"
            self._finish(notify=False)

    # --- what a handler does with it ---

    def forward(self, pool: Pool, upstream_head: bytes) -> None:
        """Send the request to an endpoint from `pool` (the inbound side: no policies)."""
        self.pool = pool
        self.upstream_head = upstream_head
        assert self.head is not None
        if self.head.expect_continue and self.request_body is ARRIVING:
            self.down.write(_CONTINUE)
        conn = pool.acquire()
        if conn is not None:
            self.reused = True
            self._attach(conn)
        else:
            self.down.gate.hold(CONNECTING)
            pool.connect(self, self.attempt)

    def route_to(
        self,
        rule: Rule[Cluster],
        cluster: Cluster,
        upstream_head: bytes,
        response_ops: CompiledOps | None,
        delay: float | None,
        abort: int | None,
        shadow: Shadow | None,
    ) -> None:
        """Carry out `rule` for this request, sending it to `cluster` (an outbound request)."""
        head = self.head
        assert head is not None
        self.rule = rule
        self.cluster = cluster
        self.route = cluster.route
        self.upstream_head = upstream_head
        self.response_ops = response_ops
        if cluster.hash_header is not None:
            self.hash_key = _header_value(head.headers, cluster.hash_header)
        if head.has_body and (rule.retry.replays or shadow is not None):
            self.replay = list(self.pending or ())
            self.replay_size = sum(len(part) for part in self.replay)
        if delay is not None:
            self.extra_flags = "DI"
            self.wait_timer = asyncio.get_running_loop().call_later(delay, self._proceed, abort, shadow)
            return
        self._proceed(abort, shadow)

    def respond_local(self, letters: str, detail: str, status: int | None = None) -> None:
        """Answer with the mesh's own response for flag `letters` (several joined with ',')."""
        close, head_only = self._own_response_framing()
        extra = self.down.listener.local_reply_headers
        if self.request_id is not None:
            extra = extra + [(b"x-request-id", self.request_id)]
        self.flags = letters
        code = status if status is not None else FLAGS[letters.split(",")[0]].status
        self._send_own(code, render_local_reply(letters, detail, close=close, status=code, extra_headers=extra, head_only=head_only))

    def respond_denied(self, details: str) -> None:
        """403 `RBAC: access denied`, Envoy's answer when an AuthorizationPolicy refuses a request;
        `details` (which policy decided) goes to telemetry, not to the caller."""
        close, head_only = self._own_response_framing()
        headers = [(b"content-type", b"text/plain"), (FLAGS_HEADER, b"RBAC"), *self.down.listener.local_reply_headers]
        if self.request_id is not None:
            headers.append((b"x-request-id", self.request_id))
        self.flags = "RBAC"
        self.details = details
        self._send_own(403, render_response(403, headers, b"RBAC: access denied", close, head_only))

    def respond(self, status: int, content_type: bytes, body: bytes) -> None:
        """Answer with a response the sidecar made (the admin listener's pages)."""
        close, head_only = self._own_response_framing()
        self._send_own(status, render_response(status, [(b"content-type", content_type)], body, close, head_only))

    # --- the upstream side (called by Pool and UpstreamProtocol) ---

    def cork(self) -> None:
        self.down.cork()

    def uncork(self) -> None:
        self.down.uncork()

    def hold_reading(self) -> None:
        self.down.gate.hold(PEER_FULL)

    def release_reading(self) -> None:
        self.down.gate.release(PEER_FULL)

    def answers_head(self) -> bool:
        return self.head is not None and self.head.method == b"HEAD"

    def on_pooled(self, conn: UpstreamProtocol) -> None:
        """A kept-alive connection for this attempt, from the pool."""
        self.down.gate.release(CONNECTING)
        self._release_wait()
        self.reused = True
        self._attach(conn)

    def on_connected(self, conn: UpstreamProtocol, attempt: int) -> None:
        if attempt != self.attempt or self.phase is DONE or self.down.closed:
            # An attempt given up on (timeout, client gone): the connection is still good.
            if attempt == self.attempt:
                self.down.gate.release(CONNECTING)
                self._release_wait()
            conn.pool.release(conn, self.down.listener.clock.tick)
            return
        self.down.gate.release(CONNECTING)
        self._release_wait()
        self.reused = False
        self._attach(conn)

    def on_connect_failed(self, pool: Pool, reason: str, attempt: int) -> None:
        if attempt != self.attempt:
            return
        self.down.gate.release(CONNECTING)
        self._release_wait()
        if self.phase is DONE or self.down.closed:
            return
        if self.rule is not None:
            self._end_attempt(OUTLIER_STATUS[CONNECT_FAILURE])
            if self._retry(failure=CONNECT_FAILURE):
                return
        self.pending = None
        self.respond_local(self._with_extra(GIVE_UP_FLAG[CONNECT_FAILURE]), reason)

    def on_response_head(self, status: int, reason: bytes, version: str, headers: list[tuple[bytes, bytes]]) -> bool:
        """Relay the response head; True when a response body follows."""
        head = self.head
        assert head is not None
        rule = self.rule
        if rule is not None:
            self._cancel_try_timer()
            host = self.host
            if host is not None and self.cluster is not None and self.cluster.outlier is not None:
                self.cluster.report(host, status)
            if status >= 400 and rule.retry.attempts and self._retry_on_status(status):
                return False
        listener = self.down.listener
        relayed = relay_response_head(head.method, head.version, status, version, headers, listener.drops_mesh_response_headers)
        if isinstance(relayed, str):
            self.on_upstream_error(relayed)
            return False
        out_headers, mode, framing, persist, reusable, close_delimited = relayed
        keep_alive = self.keep_alive and persist and not self.down.draining
        self.keep_alive = keep_alive
        if not keep_alive:
            framing += b"connection: close\r\n"
        elif head.version == "1.0":
            framing += b"connection: keep-alive\r\n"
        self.status = status
        self.body_mode = mode
        self.reusable = reusable
        self.close_delimited = close_delimited
        if self.phase not in _INTO_RESPONDING:
            raise self._wrong_move(RESPONDING)
        self.phase = RESPONDING
        extra = listener.response_extra
        if rule is not None:
            if self.response_ops is not None:
                out_headers = self.response_ops.apply(out_headers)
            if self.extra_flags:
                out_headers, self.flags = _merge_flags(out_headers, self.extra_flags)
                extra = extra + b"%s: %s\r\n" % (FLAGS_HEADER, self.flags.encode("ascii"))
        self.down.write(build_response_head(status, reason, out_headers, framing, extra))
        return mode != BODY_NONE or close_delimited

    def on_response_body(self, chunk: bytes) -> None:
        self.response_bytes += len(chunk)
        if self.body_mode == BODY_CHUNKED:
            self.down.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        elif self.body_mode != BODY_NONE:
            self.down.write(chunk)

    def on_response_end(self) -> None:
        if self.phase is not RESPONDING:
            return  # the end of an answer dropped for a retry
        if self.body_mode == BODY_CHUNKED:
            self.down.write(_LAST_CHUNK)
        up = self.up
        self.up = None
        if up is not None:
            self.down.gate.release(PEER_FULL)
            if self.reusable and self.request_body is COMPLETE and self.pool is not None:
                self.pool.release(up, self.down.listener.clock.tick)
            else:
                up.exchange = None
                up.close()
        self._finish()

    def on_upstream_lost(self, conn: UpstreamProtocol) -> None:
        """The upstream connection closed while this exchange was using it."""
        if self.phase is DONE or conn is not self.up:
            return
        self.up = None
        self.down.gate.release(PEER_FULL)
        if self.phase is RESPONDING:
            if self.close_delimited:
                self.on_response_end()
                return
            # The response was cut short; the client can only learn it from the close.
            self.flags = "UC"
            self.keep_alive = False
            self.down.transport_close()
            self._finish()
            return
        assert self.head is not None and self.pool is not None
        if retry_stale_connection(self.reused, self.head.has_body):
            # A pooled connection the server had closed: the request cannot
            # have been acted on, so one new connection is safe (and only one:
            # a new connection is not a pooled one).
            self.reused = False
            self.down.gate.hold(CONNECTING)
            self.pool.connect(self, self.attempt)
            return
        if self.rule is not None:
            self._end_attempt(OUTLIER_STATUS[RESET])
            if self._retry(failure=RESET):
                return
        self.pending = None
        self.respond_local(self._with_extra(GIVE_UP_FLAG[RESET]), f"{self.pool.label} closed the connection before sending a response")

    def on_upstream_error(self, reason: str) -> None:
        """The upstream's response could not be parsed or relayed."""
        if self.phase is DONE:
            return
        if self.up is not None:
            self._drop_upstream()
        if self.phase is RESPONDING:
            self.flags = "UPE"
            self.keep_alive = False
            self.down.transport_close()
            self._finish()
        else:
            self.respond_local("UPE", reason)

    # --- routed requests: the router's steps ---

    def _proceed(self, abort: int | None, shadow: Shadow | None) -> None:
        """After any injected delay: abort, or admit the request and make the first attempt."""
        self.wait_timer = None
        if self.phase is DONE:
            return
        rule = self.rule
        cluster = self.cluster
        assert rule is not None and cluster is not None and self.head is not None
        if abort is not None:
            self.pending = None
            self.respond_local(
                self._with_extra("FI"),
                f"A fault rule of route {rule.name!r} aborted this request with {abort} before it was sent to {cluster.spec.host}.",
                status=abort,
            )
            return
        admission = admit_request(cluster.active_requests, cluster.max_requests)
        if not admission.admitted:
            self.pending = None
            self.respond_local(admission.flag, requests_full_detail(cluster.name, cluster.active_requests, cluster.max_requests))
            return
        if self.slots not in _INTO_REQUEST_SLOT:
            raise self._wrong_move(REQUEST_SLOT)
        self.slots = REQUEST_SLOT
        cluster.active_requests += 1
        cluster.budget.record_request(time.monotonic())
        complete = self.request_body is COMPLETE
        timeout = route_timer_start(rule.timeout, True, complete)
        if timeout is not None:
            self._arm_route_timeout(timeout)
        if shadow is not None:
            if complete:
                shadow.launch(self.replay if self.replay is not None else (self.pending or []))
            elif self.replay is not None:
                self.shadow = shadow
        if self.head.expect_continue and not complete:
            self.down.write(_CONTINUE)
        self._attempt()

    def _attempt(self) -> None:
        """One try: pick an endpoint and get a connection to it."""
        self.wait_timer = None
        if self.phase is DONE:
            return
        cluster = self.cluster
        rule = self.rule
        assert cluster is not None and rule is not None
        host = cluster.pick(self.hash_key, self.tried)
        if host is None:
            self.pending = None
            self.respond_local(self._with_extra("UH"), cluster.why_no_host())
            return
        self.attempt += 1
        self.host = host
        host.active += 1
        self.pool = host.pool
        self.route = host.route
        per_try = per_try_timeout(rule.retry)
        if per_try is not None:
            self.try_timer = asyncio.get_running_loop().call_later(per_try, self._on_try_timeout)
        if host.pool.request(self):
            if self.up is None:
                # Connecting or queued: stop reading the client until it is attached
                # (a pooled connection was attached at once, with no pause).
                self.down.gate.hold(CONNECTING)
        else:
            # The pool would not queue it: as many wait as http1MaxPendingRequests allows (PENDING_FULL).
            self._end_attempt(None)
            self.pending = None
            limit = host.pool.limit
            self.respond_local(
                self._with_extra(PENDING_FULL.flag),
                pending_full_detail(cluster.name, limit.max_pending if limit is not None else 0, cluster.spec.policy.max_connections),
            )

    def _retry_on_status(self, status: int) -> bool:
        """The answer's status asks for a retry: drop the answer (as Envoy resets it) and retry."""
        up = self.up
        if not self._retry(status=status, check_only=True):
            return False
        if up is not None:
            self._drop_upstream()
        self._end_attempt(None)
        return self._retry(status=status)

    def _retry(self, failure: int | None = None, status: int | None = None, check_only: bool = False) -> bool:
        """Schedule another attempt if meshkit.core.attempts.next_attempt says so.

        A refusal may add a flag (URX: attempts used up; UO: maxRetries or
        the retry budget); the last answer or failure then goes to the
        client. `check_only` decides without scheduling (the answer is
        still attached).
        """
        rule = self.rule
        cluster = self.cluster
        head = self.head
        assert rule is not None and cluster is not None and head is not None
        if self.phase is not DISPATCHED:
            return False
        verdict = next_attempt(
            rule.retry,
            failure,
            status or 0,
            self.retries,
            not head.has_body or self.pending is not None or self.replay is not None,
            self.slots is RETRY_SLOT,
            cluster.active_retries,
            cluster.max_retries,
            cluster.budget,
            time.monotonic(),
        )
        if not verdict.retry:
            if verdict.flag is not None:
                self._add_flag(verdict.flag)
            return False
        if check_only:
            return True
        cluster.budget.spend(time.monotonic())
        if self.slots is not RETRY_SLOT:
            if self.slots not in _INTO_RETRY_SLOT:
                raise self._wrong_move(RETRY_SLOT)
            self.slots = RETRY_SLOT
            cluster.active_retries += 1
        self.retries += 1
        if self.replay is not None:
            self.pending = list(self.replay)
        elif self.pending is None:
            self.pending = []
        delay = backoff_s(self.retries, _jitter.uniform)
        self.wait_timer = asyncio.get_running_loop().call_later(delay, self._attempt)
        return True

    def _end_attempt(self, outlier_status: int | None) -> None:
        """The current attempt is over; `outlier_status` reports a failure (503, 504) to outlier detection."""
        self._cancel_try_timer()
        host = self.host
        if host is None:
            return
        self.host = None
        host.active -= 1
        if self.tried is None:
            self.tried = set()
        self.tried.add(host)
        cluster = self.cluster
        if outlier_status is not None and cluster is not None and cluster.outlier is not None:
            cluster.report(host, outlier_status)

    def _on_try_timeout(self) -> None:
        self.try_timer = None
        phase = self.phase
        verdict = on_try_timeout(phase is RESPONDING, phase is DONE)
        if not verdict.acts:
            return
        rule = self.rule
        assert rule is not None and rule.retry.per_try_timeout is not None
        label = self.pool.label if self.pool is not None else "the endpoint"
        self._abandon_attempt()
        self._end_attempt(verdict.outlier_status)
        if verdict.may_retry and self._retry(failure=PER_TRY_TIMEOUT):
            return
        self.pending = None
        self.respond_local(self._with_extra(verdict.flag), per_try_timeout_detail(label, rule.retry.per_try_timeout))

    def _arm_route_timeout(self, timeout: float) -> None:
        if self.phase is not DONE:
            self.route_timer = asyncio.get_running_loop().call_later(timeout, self._on_route_timeout)

    def _on_route_timeout(self) -> None:
        self.route_timer = None
        phase = self.phase
        verdict = on_route_timeout(phase is RESPONDING, phase is DONE)
        if not verdict.acts:
            return
        rule = self.rule
        assert rule is not None and rule.timeout is not None
        if self.wait_timer is not None:  # a backoff before the next attempt: none follows now
            self.wait_timer.cancel()
            self.wait_timer = None
        self._abandon_attempt()
        self._end_attempt(verdict.outlier_status)
        if verdict.cut:
            # The head is out; only closing the connection can tell the client.
            self.flags = verdict.flag
            self.keep_alive = False
            self.down.transport_close()
            self._finish()
            return
        self.pending = None
        host = self.cluster.spec.host if self.cluster is not None else "the upstream"
        self.respond_local(verdict.flag, route_timeout_detail(host, rule.timeout, self.retries))

    def _abandon_attempt(self) -> None:
        """Stop waiting for the current attempt's connection or answer."""
        self.down.gate.release(CONNECTING)
        self._release_wait()
        if self.up is not None:
            self._drop_upstream()
        self.attempt += 1  # a connection still being opened for it is now stale

    def _release_wait(self) -> None:
        limit = self.waiting
        if limit is not None:
            self.waiting = None
            limit.pending -= 1
            if limit.waiting and self.pool is not None:
                try:
                    limit.waiting.remove((self, self.pool))
                except ValueError:
                    pass

    def _cancel_try_timer(self) -> None:
        if self.try_timer is not None:
            self.try_timer.cancel()
            self.try_timer = None

    def _add_flag(self, letters: str) -> None:
        if letters not in self.extra_flags.split(","):
            self.extra_flags = f"{self.extra_flags},{letters}" if self.extra_flags else letters

    def _with_extra(self, letters: str) -> str:
        return f"{letters},{self.extra_flags}" if self.extra_flags else letters

    def _keep(self, data: bytes) -> None:
        """Keep body bytes for a retry or a mirror, up to the replay limit."""
        assert self.replay is not None
        self.replay_size += len(data)
        if self.replay_size > REPLAY_LIMIT:
            self.replay = None
            self.shadow = None
        else:
            self.replay.append(data)

    # --- internals ---

    def _attach(self, conn: UpstreamProtocol) -> None:
        self.up = conn
        pending = self.pending
        self.pending = None
        if pending:
            conn.send(self, self.upstream_head + b"".join(pending))
        else:
            conn.send(self, self.upstream_head)
        if self.down.write_paused:
            assert conn.gate is not None
            conn.gate.hold(PEER_FULL)

    def _own_response_framing(self) -> tuple[bool, bool]:
        """(close after it, head only) for a response the sidecar writes itself.

        A request whose body has not fully arrived cannot be followed by
        another on this connection: where it would start is unknown.
        """
        if self.request_body is not COMPLETE:
            self.keep_alive = False
        close = not self.keep_alive or self.down.draining
        self.keep_alive = not close
        return close, self.head is not None and self.head.method == b"HEAD"

    def _send_own(self, status: int, data: bytes) -> None:
        self.status = status
        if self.phase not in _INTO_RESPONDING:
            raise self._wrong_move(RESPONDING)
        self.phase = RESPONDING
        end = data.find(b"\r\n\r\n")
        self.response_bytes = len(data) - end - 4 if end >= 0 else 0
        self.down.write(data)
        self._finish()

    def _drop_upstream(self) -> None:
        up = self.up
        self.up = None
        self.down.gate.release(PEER_FULL)
        if up is not None:
            up.abort()

    def _release_routing(self) -> None:
        """Give back what a routed request holds: timers, breaker counts, its endpoint."""
        for timer in (self.route_timer, self.try_timer, self.wait_timer):
            if timer is not None:
                timer.cancel()
        self.route_timer = self.try_timer = self.wait_timer = None
        self._release_wait()
        host = self.host
        if host is not None:
            self.host = None
            host.active -= 1
        slots = self.slots
        cluster = self.cluster
        if slots is not NO_SLOT and cluster is not None:
            self.slots = NO_SLOT  # from either slot state, by the table
            cluster.active_requests -= 1
            if slots is RETRY_SLOT:
                cluster.active_retries -= 1

    def _finish(self, notify: bool = True) -> None:
        if self.phase is DONE:
            return
        if self.phase not in _INTO_DONE:
            raise self._wrong_move(DONE)
        self.phase = DONE
        self.pending = None
        self.shadow = None
        if self.rule is not None:
            self._release_routing()
        listener = self.down.listener
        telemetry = listener.telemetry
        head = self.head
        if telemetry is not None and self.route is not None and head is not None:
            pool = self.pool
            elapsed = time.perf_counter() - self.t0
            # How the hop was secured, and the SPIFFE ids of its ends ("" unknown).
            if listener.direction is INBOUND:  # the connection the caller made
                peer = self.down.peer
                secured = peer is not None
                source_principal = peer.uri if peer is not None else ""
                destination_principal = listener.principal if peer is not None else ""
            else:  # outbound: the connection this sidecar made to the endpoint
                tls = pool.tls if pool is not None else None
                secured = tls is not None
                source_principal = listener.principal if tls is not None else ""
                destination_principal = tls.expected_uri if tls is not None else ""
            telemetry.record(
                RequestRecord(
                    time.time() - elapsed,
                    head.method,
                    head.path[:MAX_RECORDED_TEXT],
                    head.authority[:MAX_RECORDED_TEXT],
                    self.status,
                    self.flags,
                    elapsed * 1000.0,
                    pool.label if pool is not None else None,
                    self.request_id,
                    self.trace_id,
                    self.route,
                    self.retries,
                    self.span_id,
                    self.parent_span_id,
                    request_bytes=self.request_bytes,
                    response_bytes=self.response_bytes,
                    protocol="HTTP/1.0" if head.version == "1.0" else "HTTP/1.1",
                    connection_security_policy="mutual_tls" if secured else "none",
                    source_principal=source_principal,
                    destination_principal=destination_principal,
                    response_code_details=self.details,
                    dry_run=self.dry_run,
                )
            )
        if self.request_body is not COMPLETE:
            # The response is complete but the request is not: where the next
            # request would start is unknown, so the connection ends here.
            self.keep_alive = False
        if notify:
            self.down.exchange_finished(self)


def _header_value(headers: list[tuple[bytes, bytes]], name: bytes) -> bytes | None:
    """The first value of a request header (name lower-case), for consistent hashing."""
    for key, value in headers:
        if key.lower() == name:
            return value
    return None


def _merge_flags(headers: list[tuple[bytes, bytes]], ours: str) -> tuple[list[tuple[bytes, bytes]], str]:
    """Join the flags an upstream sidecar set with the ones this hop adds; one header remains."""
    theirs = [value.decode("latin-1") for name, value in headers if name.lower() == FLAGS_HEADER]
    if not theirs:
        return headers, ours
    kept = [h for h in headers if h[0].lower() != FLAGS_HEADER]
    return kept, ",".join([*theirs, ours])
