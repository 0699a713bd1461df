"""Open-loop HTTP/1.1 load generator: fixed arrival rate, latency from the intended send time.

Why open loop. A closed-loop tool (wrk, hey, ab) sends a connection's next
request only when the previous one has returned, so when the server stalls the
tool stops sending, and a 300 ms stall shows up as one slow request instead of
the hundreds that real users, who do not wait for each other, would have
suffered. Gil Tene named this "coordinated omission"; wrk2
(github.com/giltene/wrk2) fixes it by scheduling request i at t0 + i/rate and
measuring latency from that intended time. This module does the same: request
i is due at ``t0 + i / rate`` whatever happened to the requests before it, and
its latency counts from then. When the concurrency cap is full the arrival
waits for a free slot, and the wait is part of its latency (``latency_ms``);
``service_ms`` is measured from the moment it was really sent, so the two side
by side show how much of the latency was queueing.

Shape: the scheduler is one coroutine; each connection is an asyncio Protocol
that parses responses with httptools and reports back by plain method calls,
so the hot path has no task, future or lock per request (a task is spawned
only to open a connection). Keep-alive connections are pooled up to the cap.
Failures never raise: a refused connection, a reset or a timeout is a row with
``code`` 0 and the reason in ``error``.

Three ways to address the target:

- direct: connect to the URL's host and port, send origin-form
  (``GET /productpage``);
- ``proxy=(host, port)``: connect to an HTTP proxy (a sidecar's outbound
  listener) and send absolute-form (``GET http://productpage:9080/productpage``);
- ``connect_to=(host, port)``: connect there but send origin-form with the
  URL's Host, the way to reach a service's port without a sidecar.

``run_load`` runs on whatever loop is running (the Lab's background loop
thread, a notebook's loop); only the ``__main__`` block starts a loop. A
``stop`` event must be set from its own loop's thread
(``loop.call_soon_threadsafe(stop.set)`` from elsewhere).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import socket
import string
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import urlsplit

import httptools

from meshkit.errors import LabError

if TYPE_CHECKING:
    import pandas

# A typo such as rate=1e6 with the default 10 s would otherwise allocate
# millions of rows before the first request is sent.
MAX_REQUESTS = 10_000_000
# Each slot may hold a socket; beyond this the process runs out of descriptors.
MAX_CONCURRENCY = 10_000
# The learner's progress bar needs no more than this, and calling it more
# often would cost the generator time it needs for sending.
PROGRESS_INTERVAL_S = 0.1
# A request lost on a reused keep-alive connection before any byte of its
# response came back is sent once more on a fresh connection (the server may
# have closed the idle connection as we wrote), but only when repeating it is
# harmless.
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS", "TRACE"})
# Content-Length and Transfer-Encoding are derived from the body; Host from the
# URL unless the caller sets it.
DERIVED_HEADERS = frozenset({"content-length", "transfer-encoding", "connection"})
TOKEN_CHARS = frozenset(string.ascii_letters + string.digits + "!#$%&'*+-.^_`|~")
FLAGS_HEADER = b"x-meshkit-response-flags"
VERSION_HEADER = b"x-meshkit-version"


@dataclass(frozen=True)
class LoadSpec:
    """What to send, how fast and for how long."""

    url: str
    rate: float
    duration_s: float | None = 10.0
    requests: int | None = None
    concurrency: int = 64
    proxy: tuple[str, int] | None = None
    connect_to: tuple[str, int] | None = None
    method: str = "GET"
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes = b""
    timeout_s: float = 10.0


@dataclass(frozen=True, slots=True)
class Result:
    """One request. Times are ``time.perf_counter()`` seconds.

    ``bytes`` counts the response body; ``code`` is 0 when no response came
    (``error`` says why).
    """

    intended_at: float
    sent_at: float
    done_at: float
    code: int
    flags: str
    version: str
    bytes: int
    error: str


@dataclass(frozen=True)
class Plan:
    """A validated spec, reduced to what the sending loop needs."""

    address: tuple[str, int]
    request: bytes
    total: int
    rate: float
    concurrency: int
    timeout_s: float
    retry_on_reused: bool
    head: bool


def plan(spec: LoadSpec) -> Plan:
    """Validate ``spec`` and build the request bytes once for the whole run.

    Raises LabError naming the field and the reason, so the learner sees what
    to fix before any socket is opened.
    """
    rate = _positive_number("rate", spec.rate)
    total = _total_requests(spec, rate)
    concurrency = _whole_number("concurrency", spec.concurrency, 1, MAX_CONCURRENCY)
    timeout_s = _positive_number("timeout_s", spec.timeout_s)
    method = _method(spec.method)
    host, port, authority, target = _split_url(spec.url)
    if spec.proxy is not None and spec.connect_to is not None:
        raise LabError("load spec: proxy and connect_to cannot both be set (pick one way to reach the target)")
    if spec.proxy is not None:
        address = _address("proxy", spec.proxy)
        target = f"http://{authority}{target}"
    elif spec.connect_to is not None:
        address = _address("connect_to", spec.connect_to)
    else:
        address = (host, port)
    request = build_request(method, target, authority, spec.headers, spec.body)
    return Plan(
        address=address,
        request=request,
        total=total,
        rate=rate,
        concurrency=concurrency,
        timeout_s=timeout_s,
        retry_on_reused=method in IDEMPOTENT_METHODS,
        head=method == "HEAD",
    )


def build_request(method: str, target: str, authority: str, headers: Mapping[str, str], body: bytes) -> bytes:
    """The request's bytes on the wire; every request of a run is the same."""
    if not isinstance(body, (bytes, bytearray)):
        raise LabError(f"load spec: body must be bytes, not {type(body).__name__}")
    lines = [f"{method} {target} HTTP/1.1"]
    names = set()
    for name, value in _checked_headers(headers):
        names.add(name.lower())
        lines.append(f"{name}: {value}")
    if "host" not in names:
        lines.insert(1, f"Host: {authority}")
    if "user-agent" not in names:
        lines.append("User-Agent: meshkit-loadgen")
    if body or method in ("POST", "PUT", "PATCH"):
        lines.append(f"Content-Length: {len(body)}")
    head = "\r\n".join(lines) + "\r\n\r\n"
    return head.encode("latin-1") + bytes(body)


def _checked_headers(headers: Mapping[str, str]) -> list[tuple[str, str]]:
    if not isinstance(headers, Mapping):
        raise LabError(f"load spec: headers must be a mapping of name to value, not {type(headers).__name__}")
    checked = []
    seen: set[str] = set()
    for name, value in headers.items():
        if not isinstance(name, str) or not name or not set(name) <= TOKEN_CHARS:
            raise LabError(f"load spec: header name {name!r} is not a valid HTTP token")
        if name.lower() in DERIVED_HEADERS:
            raise LabError(f"load spec: header {name!r} is set by the load generator and cannot be given")
        if name.lower() in seen:
            raise LabError(f"load spec: header {name!r} is given twice (header names ignore case)")
        seen.add(name.lower())
        if not isinstance(value, str) or any(c in value for c in "\r\n\x00"):
            raise LabError(f"load spec: header {name!r} must be a string without CR, LF or NUL")
        try:
            value.encode("latin-1")
        except UnicodeEncodeError as exc:
            raise LabError(f"load spec: header {name!r} has characters that HTTP/1.1 cannot carry") from exc
        checked.append((name, value.strip()))
    return checked


def _split_url(url: str) -> tuple[str, int, str, str]:
    """(host to connect to, port, Host header value, origin-form target)."""
    if not isinstance(url, str) or not url:
        raise LabError("load spec: url must be a non-empty string such as http://productpage:9080/productpage")
    if any(c.isspace() or ord(c) < 0x20 or ord(c) == 0x7F for c in url):
        raise LabError(f"load spec: url {url!r} contains whitespace or control characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise LabError(f"load spec: url {url!r} is not valid: {exc}") from exc
    if parts.scheme != "http":
        scheme = parts.scheme or "(none)"
        raise LabError(f"load spec: url scheme {scheme!r} is not supported; use http://host:port/path")
    if not parts.hostname:
        raise LabError(f"load spec: url {url!r} has no host")
    if parts.username is not None or parts.password is not None:
        raise LabError(f"load spec: url {url!r} carries credentials; send an Authorization header instead")
    try:
        url.encode("ascii")
    except UnicodeEncodeError as exc:
        raise LabError(f"load spec: url {url!r} must be ASCII (percent-encode the rest)") from exc
    authority = parts.netloc
    target = parts.path or "/"
    if parts.query:
        target += "?" + parts.query
    return parts.hostname, port if port is not None else 80, authority, target


def _address(name: str, value: object) -> tuple[str, int]:
    if (
        not isinstance(value, tuple)
        or len(value) != 2
        or not isinstance(value[0], str)
        or not value[0]
        or isinstance(value[1], bool)
        or not isinstance(value[1], int)
        or not 0 < value[1] < 65536
    ):
        raise LabError(f"load spec: {name} must be (host, port) with a port from 1 to 65535, not {value!r}")
    return value[0], value[1]


def _method(method: object) -> str:
    if not isinstance(method, str) or not method or not set(method) <= TOKEN_CHARS:
        raise LabError(f"load spec: method {method!r} is not a valid HTTP method")
    return method


def _positive_number(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise LabError(f"load spec: {name} must be a number, not {type(value).__name__}")
    if not math.isfinite(value) or value <= 0:
        raise LabError(f"load spec: {name} must be a finite number above 0, not {value!r}")
    return float(value)


def _whole_number(name: str, value: object, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise LabError(f"load spec: {name} must be a whole number, not {value!r}")
    if not low <= value <= high:
        raise LabError(f"load spec: {name} must be between {low} and {high}, not {value}")
    return value


def _total_requests(spec: LoadSpec, rate: float) -> int:
    if spec.requests is not None:
        return _whole_number("requests", spec.requests, 1, MAX_REQUESTS)
    if spec.duration_s is None:
        raise LabError("load spec: give duration_s or requests (both are None)")
    duration = _positive_number("duration_s", spec.duration_s)
    # Request i is due at i / rate; count those due before the end.
    total = max(1, math.ceil(duration * rate - 1e-9))
    if total > MAX_REQUESTS:
        raise LabError(
            f"load spec: rate {rate:g}/s for {duration:g} s is {total} requests, above the limit of {MAX_REQUESTS}"
        )
    return total


class _Pending:
    """A request between its dispatch and its row."""

    __slots__ = ("intended", "sent", "timer", "conn", "connecting", "retried")

    def __init__(self, intended: float, sent: float) -> None:
        self.intended = intended
        self.sent = sent
        self.timer: asyncio.TimerHandle | None = None
        self.conn: _Connection | None = None
        self.connecting: asyncio.Task[None] | None = None
        self.retried = False


class _Connection(asyncio.Protocol):
    """One keep-alive connection carrying one request at a time."""

    def __init__(self, run: _Run) -> None:
        self._run = run
        self._parser = httptools.HttpResponseParser(self)
        self.transport: asyncio.Transport | None = None
        self.pending: _Pending | None = None
        self.served = 0
        self._reset_response()

    def _reset_response(self) -> None:
        self._flags = ""
        self._version = ""
        self._bytes = 0
        self._got_bytes = False
        self._headers_done = False
        self._framed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports do not subclass asyncio.Transport; they have its methods.
        self.transport = cast(asyncio.Transport, transport)
        self._run.conns.add(self)

    def send(self, pending: _Pending) -> None:
        assert self.transport is not None
        self.pending = pending
        pending.conn = self
        self._reset_response()
        self.transport.write(self._run.plan.request)

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()

    def abort(self) -> None:
        """Drop the connection at once; its request has already been recorded."""
        self.pending = None
        if self.transport is not None:
            self.transport.abort()

    def data_received(self, data: bytes) -> None:
        if self.pending is None:
            # Bytes nobody asked for: the connection's framing cannot be trusted.
            self._run.forget(self)
            self.abort()
            return
        self._got_bytes = True
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._fail("the server switched protocols (101), which the load generator does not follow")
        except httptools.HttpParserError as exc:
            self._fail(f"bad response: {exc}")

    def on_header(self, name: bytes, value: bytes) -> None:
        name = name.lower()
        if name == FLAGS_HEADER:
            self._flags = value.decode("latin-1")
        elif name == VERSION_HEADER:
            self._version = value.decode("latin-1")
        elif name in (b"content-length", b"transfer-encoding"):
            self._framed = True

    def on_headers_complete(self) -> None:
        self._headers_done = True
        if self._run.plan.head and self._parser.get_status_code() >= 200:
            # The parser cannot know a HEAD response has no body; finish here
            # and do not reuse the connection, whose framing is now unknown.
            self._complete(keep_alive=False)

    def on_body(self, body: bytes) -> None:
        self._bytes += len(body)

    def on_message_complete(self) -> None:
        if self.pending is None:
            return
        if self._parser.get_status_code() < 200:
            self._reset_response()  # an interim 1xx; the final response follows
            return
        self._complete(keep_alive=self._parser.should_keep_alive())

    def _complete(self, keep_alive: bool) -> None:
        pending = self.pending
        assert pending is not None
        self.pending = None
        self.served += 1
        self._run.completed(
            self, pending, self._parser.get_status_code(), self._flags, self._version, self._bytes, keep_alive
        )

    def _fail(self, reason: str) -> None:
        pending = self.pending
        self._run.forget(self)
        self.abort()
        if pending is not None:
            self._run.failed(pending, reason)

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        self._run.forget(self)
        self._run.conns.discard(self)
        pending = self.pending
        if pending is None:
            return
        if self._headers_done and not self._framed:
            # A response without Content-Length or chunking ends when the
            # connection does (RFC 9112 section 6.3).
            self._complete(keep_alive=False)
            return
        self.pending = None
        if not self._got_bytes and self.served > 0 and self._run.plan.retry_on_reused and not pending.retried:
            self._run.retry(pending)
            return
        where = "in the middle of the response" if self._got_bytes else "before the response"
        self._run.failed(pending, f"connection closed {where}" + (f": {exc}" if exc is not None else ""))


class _Run:
    """The state of one run: the pool, the rows, the slots in flight."""

    def __init__(
        self, plan_: Plan, loop: asyncio.AbstractEventLoop, on_result: Callable[[Result], None] | None = None
    ) -> None:
        self.plan = plan_
        self.loop = loop
        self.on_result = on_result
        self.results: list[Result] = []
        self.in_flight = 0
        self.idle: dict[_Connection, None] = {}
        # Every open connection, so that closing the run leaves none behind,
        # even one whose connect finished just as its request timed out.
        self.conns: set[_Connection] = set()
        self.pending: set[_Pending] = set()
        self._slot_waiter: asyncio.Future[None] | None = None

    def dispatch(self, intended: float) -> None:
        pending = _Pending(intended, time.perf_counter())
        self.in_flight += 1
        self.pending.add(pending)
        pending.timer = self.loop.call_later(self.plan.timeout_s, self._timed_out, pending)
        if self.idle:
            conn, _ = self.idle.popitem()
            conn.send(pending)
        else:
            self._open(pending)

    def _open(self, pending: _Pending) -> None:
        pending.conn = None
        pending.connecting = self.loop.create_task(self._connect(pending))

    async def _connect(self, pending: _Pending) -> None:
        host, port = self.plan.address
        try:
            _, conn = await self.loop.create_connection(lambda: _Connection(self), host, port)
        except OSError as exc:
            pending.connecting = None
            self.failed(pending, f"connect to {host}:{port} failed: {_os_reason(exc)}")
            return
        pending.connecting = None
        conn.send(pending)

    def retry(self, pending: _Pending) -> None:
        pending.retried = True
        self._open(pending)

    def completed(
        self, conn: _Connection, pending: _Pending, code: int, flags: str, version: str, nbytes: int, keep: bool
    ) -> None:
        done = time.perf_counter()
        self._record(Result(pending.intended, pending.sent, done, code, flags, version, nbytes, ""))
        self._release(pending)
        if keep and conn.transport is not None and not conn.transport.is_closing():
            self.idle[conn] = None
        else:
            conn.close()

    def failed(self, pending: _Pending, reason: str) -> None:
        if pending not in self.pending:
            return
        done = time.perf_counter()
        self._record(Result(pending.intended, pending.sent, done, 0, "", "", 0, reason))
        self._release(pending)

    def _record(self, result: Result) -> None:
        self.results.append(result)
        if self.on_result is not None:
            self.on_result(result)

    def _timed_out(self, pending: _Pending) -> None:
        pending.timer = None
        conn, task = pending.conn, pending.connecting
        self.failed(pending, f"timeout after {self.plan.timeout_s:g} s")
        if task is not None:
            task.cancel()
        if conn is not None:
            conn.abort()

    def _release(self, pending: _Pending) -> None:
        self.pending.discard(pending)
        if pending.timer is not None:
            pending.timer.cancel()
        self.in_flight -= 1
        waiter = self._slot_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def forget(self, conn: _Connection) -> None:
        self.idle.pop(conn, None)

    async def wait(self, delay: float, for_slot: bool) -> None:
        """Sleep up to ``delay`` s; with ``for_slot``, wake early when a slot frees."""
        waiter = self.loop.create_future()
        timer = self.loop.call_later(max(0.0, delay), _resolve, waiter)
        if for_slot:
            self._slot_waiter = waiter
        try:
            await waiter
        finally:
            timer.cancel()
            self._slot_waiter = None

    def close(self) -> None:
        """Abort what is in flight (those requests get no row) and close every connection."""
        for pending in list(self.pending):
            if pending.timer is not None:
                pending.timer.cancel()
            if pending.connecting is not None:
                pending.connecting.cancel()
        self.pending.clear()
        self.idle.clear()
        for conn in list(self.conns):
            conn.abort()
        self.conns.clear()


def _os_reason(exc: OSError) -> str:
    """The OS's words for a failure (asyncio's own message varies by loop)."""
    if isinstance(exc, socket.gaierror) or not exc.errno or exc.errno < 0:
        return exc.strerror or str(exc)
    return os.strerror(exc.errno)


def _resolve(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


async def run_load(
    spec: LoadSpec,
    *,
    progress: Callable[[int, int], None] | None = None,
    stop: asyncio.Event | None = None,
    on_result: Callable[[Result], None] | None = None,
) -> list[Result]:
    """Send ``spec``'s requests at its fixed rate; one Result per request, by intended time.

    Requests still in flight when ``stop`` is set are dropped rather than
    recorded as errors: the learner stopped them, the server did not fail them.
    ``on_result`` sees each Result as it completes (on the loop's thread), so
    a live chart can draw a long run while it goes; keep it cheap.
    """
    plan_ = plan(spec)
    loop = asyncio.get_running_loop()
    run = _Run(plan_, loop, on_result)
    interval = 1.0 / plan_.rate
    last_progress = time.perf_counter()
    try:
        t0 = time.perf_counter()
        for i in range(plan_.total):
            intended = t0 + i * interval
            while True:
                now = time.perf_counter()
                if stop is not None and stop.is_set():
                    return _by_intended(run.results)
                if progress is not None and now - last_progress >= PROGRESS_INTERVAL_S:
                    last_progress = now
                    progress(len(run.results), plan_.total)
                if now < intended:
                    await run.wait(min(intended - now, PROGRESS_INTERVAL_S), for_slot=False)
                elif run.in_flight >= plan_.concurrency:
                    await run.wait(PROGRESS_INTERVAL_S, for_slot=True)
                else:
                    break
            run.dispatch(intended)
        while run.in_flight > 0:
            if stop is not None and stop.is_set():
                return _by_intended(run.results)
            now = time.perf_counter()
            if progress is not None and now - last_progress >= PROGRESS_INTERVAL_S:
                last_progress = now
                progress(len(run.results), plan_.total)
            await run.wait(PROGRESS_INTERVAL_S, for_slot=True)
        if progress is not None:
            progress(len(run.results), plan_.total)
        return _by_intended(run.results)
    finally:
        run.close()


def _by_intended(results: list[Result]) -> list[Result]:
    return sorted(results, key=lambda r: r.intended_at)


FRAME_COLUMNS = {
    "intended_at": "float64",
    "sent_at": "float64",
    "latency_ms": "float64",
    "service_ms": "float64",
    "code": "int64",
    "flags": "str",
    "version": "str",
    "bytes": "int64",
    "error": "str",
}


def results_frame(results: Sequence[Result]) -> pandas.DataFrame:
    """One row per request, times in seconds from the first intended send.

    ``latency_ms`` counts from the intended send time (what a user waited);
    ``service_ms`` from the actual send (what the server took). The gap
    between them is time spent queued behind the concurrency cap or a late
    scheduler.
    """
    import pandas as pd

    start = min((r.intended_at for r in results), default=0.0)
    columns: dict[str, list[Any]] = {
        "intended_at": [r.intended_at - start for r in results],
        "sent_at": [r.sent_at - start for r in results],
        "latency_ms": [(r.done_at - r.intended_at) * 1000.0 for r in results],
        "service_ms": [(r.done_at - r.sent_at) * 1000.0 for r in results],
        "code": [r.code for r in results],
        "flags": [r.flags for r in results],
        "version": [r.version for r in results],
        "bytes": [r.bytes for r in results],
        "error": [r.error for r in results],
    }
    return pd.DataFrame(columns).astype(FRAME_COLUMNS)


def summary(df: pandas.DataFrame) -> dict[str, float | int]:
    """count, achieved rps, 2xx share, latency percentiles (ms) and error rows.

    Percentiles are over requests that got a response (code > 0): a refused
    connection fails in microseconds and would flatter them; those rows are
    counted in ``errors`` and lower ``success_rate`` instead. Achieved rps is
    rows over the span from the first intended send to the last completion, so
    a generator or server that falls behind shows a lower rate. Without any
    response the percentiles are NaN.
    """
    count = int(len(df))
    nan = float("nan")
    if count == 0:
        return {"count": 0, "rps": 0.0, "success_rate": nan, "p50_ms": nan, "p90_ms": nan, "p99_ms": nan, "errors": 0}
    done = df["intended_at"] + df["latency_ms"] / 1000.0
    span = float(done.max() - df["intended_at"].min())
    codes = df["code"]
    answered = df.loc[codes > 0, "latency_ms"]
    quantiles = answered.quantile([0.5, 0.9, 0.99]) if len(answered) else None
    return {
        "count": count,
        "rps": count / span if span > 0 else nan,
        "success_rate": float(((codes >= 200) & (codes < 300)).mean()),
        "p50_ms": float(quantiles.iloc[0]) if quantiles is not None else nan,
        "p90_ms": float(quantiles.iloc[1]) if quantiles is not None else nan,
        "p99_ms": float(quantiles.iloc[2]) if quantiles is not None else nan,
        "errors": int((codes == 0).sum()),
    }


def error_counts(results: Sequence[Result]) -> dict[str, int]:
    """How many rows failed for each reason, most frequent first."""
    counts: dict[str, int] = {}
    for r in results:
        if r.error:
            counts[r.error] = counts.get(r.error, 0) + 1
    return dict(sorted(counts.items(), key=lambda kv: -kv[1]))


# ---------------------------------------------------------------- command line


def parse_args(argv: Sequence[str]) -> tuple[LoadSpec, bool]:
    """The command line as a checked LoadSpec and whether to print JSON; bad input exits 2 with the reason."""
    parser = _argument_parser()
    args = parser.parse_args(list(argv))
    try:
        headers = dict(_header_arg(h) for h in args.header)
        spec = LoadSpec(
            url=args.url,
            rate=args.rate,
            duration_s=args.duration,
            requests=args.requests,
            concurrency=args.concurrency,
            proxy=_address_arg("--proxy", args.proxy) if args.proxy else None,
            connect_to=_address_arg("--connect-to", args.connect_to) if args.connect_to else None,
            method=args.method,
            headers=headers,
            body=args.data.encode("utf-8"),
            timeout_s=args.timeout,
        )
        plan(spec)
    except LabError as exc:
        parser.error(str(exc))
    return spec, args.json


def _argument_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m meshkit.loadgen",
        description="Open-loop HTTP/1.1 load: a fixed arrival rate, latency from the intended send time.",
    )
    parser.add_argument("url", help="target, e.g. http://productpage:9080/productpage")
    parser.add_argument("--rate", type=float, required=True, help="requests per second")
    amount = parser.add_mutually_exclusive_group(required=True)
    amount.add_argument("--duration", type=float, help="seconds to send for")
    amount.add_argument("--requests", type=int, help="exactly this many requests")
    parser.add_argument("--concurrency", type=int, default=64, help="max requests in flight (default 64)")
    parser.add_argument("--proxy", metavar="HOST:PORT", help="send absolute-form through this HTTP proxy")
    parser.add_argument("--connect-to", metavar="HOST:PORT", help="connect here, keep the URL's Host")
    parser.add_argument("-H", "--header", action="append", default=[], metavar="'NAME: VALUE'")
    parser.add_argument("-X", "--method", default="GET")
    parser.add_argument("--data", default="", help="request body (UTF-8)")
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds per request (default 10)")
    parser.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    return parser


def _header_arg(text: str) -> tuple[str, str]:
    name, sep, value = text.partition(":")
    if not sep or not name.strip():
        raise LabError(f"-H {text!r}: expected 'Name: value'")
    return name.strip(), value.strip()


def _address_arg(option: str, text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    host = host.removeprefix("[").removesuffix("]")
    if not sep or not host or not port.isascii() or not port.isdigit() or not 0 < int(port) < 65536:
        raise LabError(f"{option} {text!r}: expected HOST:PORT with a port from 1 to 65535")
    return host, int(port)


def report(results: Sequence[Result], as_json: bool) -> str:
    """The text the command prints: a short table, or one JSON object."""
    stats = summary(results_frame(results))
    if as_json:
        clean = {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in stats.items()}
        return json.dumps(clean)
    lines = [
        f"requests {stats['count']}  achieved {stats['rps']:.1f}/s  "
        f"2xx {stats['success_rate'] * 100:.1f}%  errors {stats['errors']}",
        f"latency ms (from intended send)  p50 {stats['p50_ms']:.2f}  p90 {stats['p90_ms']:.2f}  "
        f"p99 {stats['p99_ms']:.2f}",
    ]
    for reason, n in list(error_counts(results).items())[:5]:
        lines.append(f"  {n} x {reason}")
    return "\n".join(lines)


def _status_line(done: int, total: int) -> None:
    sys.stderr.write(f"\r{done}/{total} requests")
    sys.stderr.flush()


def _new_event_loop() -> asyncio.AbstractEventLoop:
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


if __name__ == "__main__":
    _spec, _json = parse_args(sys.argv[1:])
    _loop = _new_event_loop()
    try:
        _results = _loop.run_until_complete(
            run_load(_spec, progress=_status_line if sys.stderr.isatty() and not _json else None)
        )
    except KeyboardInterrupt:
        sys.exit(130)
    finally:
        _loop.close()
    if sys.stderr.isatty() and not _json:
        sys.stderr.write("\n")
    print(report(_results, _json))
