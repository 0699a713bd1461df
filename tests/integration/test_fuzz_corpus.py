"""The HTTP/1.1 fuzz corpus (tests/fuzz/http1-corpus) replayed on a real sidecar's three listeners.

Each entry is sent as it is, on a fresh connection, to the inbound, outbound
and admin ports of one sidecar process. Whatever the bytes, the sidecar must:

- answer with well-formed HTTP/1.1 responses only, then close, within a
  bounded time once the client has nothing more to send (never a hang);
- answer as the pure parser predicts (tests/fuzz/http1.py, meshkit_reading):
  a response for each request it serves, in order, and one refusal flagged DPE
  with `connection: close` where the reading refuses; on the inbound port, the
  app receives exactly the requests served there;
- still serve a good request afterwards, with its process alive (never a crash).
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from typing import NamedTuple

import httptools
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from meshkit.sidecar.sniffing import TLS_HANDSHAKE
from tests.fuzz.http1 import INCOMPLETE, REJECTED, Entry, Message, corpus, inbound_refuses, keep_failure, meshkit_reading, mutated
from tests.integration.sidecar_fixtures import (
    EchoServer,
    SidecarProcess,
    bootstrap,
    connect,
    echo_server,
    endpoint,
    exchange_raw,
    running_sidecar,
    service,
    snapshot,
)

NODE = "default/echo-v1-0"
LISTENERS = ["inbound", "outbound", "admin"]
# How long a listener may take to answer what it was sent, and to close once the client stops.
BOUND_S = 5.0
# What a good request is on each port, after every entry.
GOOD = {
    "inbound": b"GET /good HTTP/1.1\r\nHost: echo\r\nConnection: close\r\n\r\n",
    "outbound": b"GET /good HTTP/1.1\r\nHost: echo\r\nConnection: close\r\n\r\n",
    "admin": b"GET /stats/prometheus HTTP/1.1\r\nHost: admin\r\nConnection: close\r\n\r\n",  # open without the admin token
}
ENTRIES = corpus()


class Answer:
    """One response read off the wire: its status and lower-case headers."""

    def __init__(self, status: int, headers: dict[bytes, bytes]) -> None:
        self.status = status
        self.headers = headers

    @property
    def refused(self) -> bool:
        """The sidecar refused the request as malformed (its DPE flag), rather than serving it."""
        return self.headers.get(b"x-meshkit-response-flags") == b"DPE"

    def __repr__(self) -> str:
        return f"{self.status}{' DPE' if self.refused else ''}"


class Answers:
    """Strict parse of what a listener sent: every byte must belong to a complete, well-formed response."""

    def __init__(self, data: bytes) -> None:
        self.done: list[Answer] = []
        self.begun = 0
        self.headers: dict[bytes, bytes] = {}
        self.error: str | None = None
        self.interim = 0
        parser = httptools.HttpResponseParser(self)
        self.parser = parser
        try:
            parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self.error = f"{type(exc).__name__}: {exc}"

    def on_message_begin(self) -> None:
        self.begun += 1
        self.headers = {}

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers[name.lower()] = value

    def on_message_complete(self) -> None:
        status = self.parser.get_status_code()
        if status >= 200:
            self.done.append(Answer(status, self.headers))
        else:
            self.interim += 1  # 100 Continue, before the answer to an Expect

    @property
    def well_formed(self) -> bool:
        """Nothing malformed, and no response left unfinished when the server closed."""
        return self.error is None and self.begun == len(self.done) + self.interim


def expected(listener: str, reading_messages: tuple[Message, ...], end: str) -> list[bool]:
    """Refused or not, response by response, as the reading predicts on `listener`."""
    refusals = [listener == "inbound" and inbound_refuses(m) for m in reading_messages]
    return refusals + ([True] if end == REJECTED else [])


class Replayed(NamedTuple):
    data: bytes  # every byte the listener sent
    closed: bool  # it closed the connection (FIN or RST) within the bound
    reset: bool  # it closed with an RST: answers in flight may be lost
    took: float  # seconds from connecting to the close


def replay(port: int, raw: bytes, responses: int) -> Replayed:
    """Send `raw`; read until `responses` answers have arrived or the listener closed, then stop
    sending and read until it closes, each wait bounded by BOUND_S."""
    started = time.monotonic()
    data = b""
    with connect(port, timeout=BOUND_S) as sock:
        try:
            sock.sendall(raw)
        except (BrokenPipeError, ConnectionResetError):
            pass  # it refused early and closed; what it answered is still readable
        shut = False
        deadline = started + BOUND_S
        while True:
            if not shut and len(Answers(data).done) >= responses:
                try:
                    sock.shutdown(socket.SHUT_WR)
                except OSError:
                    pass
                shut = True
                deadline = time.monotonic() + BOUND_S
            sock.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                chunk = sock.recv(65536)
            except TimeoutError:
                if shut:
                    return Replayed(data, False, False, time.monotonic() - started)
                responses = 0  # fewer answers than the reading predicts: stop sending, see what comes
                continue
            except ConnectionResetError:
                return Replayed(data, True, True, time.monotonic() - started)
            if not chunk:
                return Replayed(data, True, False, time.monotonic() - started)
            data += chunk


@pytest.fixture(scope="module")
def echo() -> Iterator[EchoServer]:
    with echo_server("app") as server:
        yield server


@pytest.fixture(scope="module")
def sidecar(echo: EchoServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[SidecarProcess]:
    services = [service("echo", [endpoint(echo.port, "echo-v1", "v1")])]
    # Timeouts well inside BOUND_S, so a connection the sidecar left open would show as a hang.
    limits = {"request_headers_timeout_s": 1, "idle_timeout_s": 2, "upstream_idle_timeout_s": 60}
    boot = bootstrap(node=NODE, name="echo-v1", app_port=echo.port, static=snapshot(NODE, services), limits=limits)
    with running_sidecar(boot, tmp_path_factory.mktemp("fuzz-corpus")) as proc:
        yield proc


def check_replay(sidecar: SidecarProcess, echo: EchoServer, raw: bytes, listener: str) -> str | None:
    """Replay `raw` on `listener`; what went wrong, or None."""
    port: int = getattr(sidecar, listener)
    reading = meshkit_reading(raw)
    want = expected(listener, reading.messages, reading.end)
    tls = listener == "inbound" and raw[:1] == bytes([TLS_HANDSHAKE])
    if tls:  # the inbound port takes these bytes for a TLS handshake: no HTTP answer, a close
        want = []
    # A request whose head is in but whose body is not may already be answered (and the connection
    # closed) when the sidecar answers it itself: the admin pages, or a 404 NR for an unknown host.
    extra_allowed = reading.end == INCOMPLETE and reading.pending_head
    echo.clear()

    data, closed, reset, took = replay(port, raw, len(want))

    answers = Answers(data)
    if not closed:
        return f"still open {took:.1f} s after the client stopped sending: {data[:300]!r}"
    if reset and not tls:
        return f"closed with a reset, not a FIN, after {answers.done}"
    if not answers.well_formed:
        return f"not well-formed HTTP/1.1: {answers.error} in {data[:500]!r}"
    got = [a.refused for a in answers.done]
    if extra_allowed and len(got) == len(want) + 1 and not got[-1]:
        got = got[:-1]
    if got != want:
        return f"answers {answers.done}, the reading {reading}"
    if any(a.status == 500 for a in answers.done):
        return f"500, the sidecar failing inside its parser callbacks: {answers.done}"
    if reading.end == REJECTED and not tls and (answers.done[-1].status, answers.done[-1].headers.get(b"connection")) != (reading.status, b"close"):
        return f"refused with {answers.done[-1].status} {answers.done[-1].headers}, the reading says {reading.status} and close"
    if listener == "inbound" and not tls:
        seen = [(r.method.encode(), r.body_len) for r in echo.snapshot()]
        served = [(m.method, len(m.body)) for m in reading.messages if not inbound_refuses(m)]
        if seen != served:
            return f"the app received {seen}, the reading serves {served}"
    if sidecar.proc is None or sidecar.proc.poll() is not None:
        return "the sidecar exited"
    answers_after, _, raw_after = exchange_raw(port, GOOD[listener])
    if [r.status for r in answers_after] != [200]:
        return f"a good request afterwards got {raw_after[:300]!r}"
    return None


@pytest.mark.parametrize("listener", LISTENERS)
@pytest.mark.parametrize("entry", ENTRIES, ids=[e.name for e in ENTRIES])
def test_entry_is_answered_as_the_parser_reads_it(sidecar: SidecarProcess, echo: EchoServer, entry: Entry, listener: str) -> None:
    assert check_replay(sidecar, echo, entry.raw, listener) is None


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large])
@given(data=mutated(ENTRIES), listener=st.sampled_from(LISTENERS))
def test_mutated_entries_are_answered_as_the_parser_reads_them(sidecar: SidecarProcess, echo: EchoServer, data: bytes, listener: str) -> None:
    """The corpus mutated as the unit fuzz tests mutate it, on real listeners; a failure joins the corpus."""
    problem = check_replay(sidecar, echo, data, listener)
    if problem is not None:
        keep_failure(data)
    assert problem is None, problem


def test_no_request_in_the_corpus_raised_inside_the_sidecar(sidecar: SidecarProcess) -> None:
    """Runs after the replays (pytest keeps file order): a traceback in the log is a crash that was caught."""
    log = sidecar.log()
    assert "Traceback" not in log and "internal error" not in log, log[-3000:]
