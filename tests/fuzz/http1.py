"""The HTTP/1.1 fuzz corpus, and two readings of each entry: meshkit's and h11's.

`meshkit_reading` is the request parser exactly as the sidecar's
`DownstreamProtocol` (meshkit.sidecar.downstream) drives it: httptools
(llhttp) with the same callbacks, the same head limits, the same
16 KiB pieces and the same bound on bytes that produce no event, and
`meshkit.core.framing.parse_request_head` on every head. It opens no socket,
so a unit test can run it thousands of times; tests/integration/test_fuzz_corpus.py
checks that a real sidecar answers every corpus entry as this reading says.

`h11_reading` is what h11, a second, independent HTTP/1.1 implementation,
makes of the same bytes as a server. Both readings come out as a `Reading`, so
they compare with ==.

`keep_failure` writes an input a Hypothesis test found failing into the
corpus (found/), so it is replayed by every run after; see README.md here.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import h11
from httptools import HttpParserCallbackError, HttpParserError, HttpParserUpgrade, HttpRequestParser
from hypothesis import currently_in_test_context
from hypothesis import strategies as st
from hypothesis.control import current_build_context

from meshkit.core.framing import MAX_HEAD_BYTES, MAX_HEADERS, Rejection, RequestHead, build_request_head, parse_request_head
from meshkit.core.paths import normalize_target
from meshkit.sidecar.downstream import PIECE

CORPUS = Path(__file__).resolve().parent / "http1-corpus"
SEEDS = CORPUS / "seeds"
FOUND = CORPUS / "found"

# How a reading of a byte stream ends, after its accepted messages.
REJECTED = "rejected"  # a request was refused: answered 4xx/5xx, then the connection closes
INCOMPLETE = "incomplete"  # the bytes end inside a request: the server waits for more
CLOSE = "close"  # a message asked for the connection to end; what follows is never read
CLEAN = "clean"  # the bytes end between requests on a persistent connection


class Message(NamedTuple):
    """One request as a server would act on it: bytes compared, not objects."""

    method: bytes
    target: bytes
    body: bytes


class Reading(NamedTuple):
    """What a server makes of a byte stream: the requests it serves, in order, and how the stream ends.

    `status` is the answer to the refused request when `end` is REJECTED
    (None otherwise); `pending_head` says, for INCOMPLETE, that the head of
    the unfinished request was accepted (a server may already act on it).
    Two readings agree when `messages` and `end` are equal: the status of a
    refusal is a detail (h11 only hints at one).
    """

    messages: tuple[Message, ...]
    end: str
    status: int | None = None
    pending_head: bool = False

    def verdict(self) -> tuple[tuple[Message, ...], str]:
        return self.messages, self.end


class Entry(NamedTuple):
    name: str
    raw: bytes


def corpus() -> list[Entry]:
    """Every entry, seeds first, each sorted by name (a stable order for test ids)."""
    entries = []
    for folder in (SEEDS, FOUND):
        for path in sorted(folder.glob("*.http")):
            entries.append(Entry(f"{folder.name}/{path.stem}", path.read_bytes()))
    return entries


class _Stop(Exception):
    """Raised in a callback, as DownstreamProtocol._stop does, to stop llhttp at a refused request."""


class _MeshkitParser:
    """DownstreamProtocol's parser callbacks, minus the exchanges: it only notes what it would serve."""

    def __init__(self) -> None:
        self.parser = HttpRequestParser(self)
        self.messages: list[Message] = []
        self.forwarded: list[tuple[Message, bytes]] = []
        self.head: RequestHead | None = None
        self.url = b""
        self.headers: list[tuple[bytes, bytes]] = []
        self.body: list[bytes] = []
        self.head_size = 0
        self.in_head = False
        self.in_message = False
        self.events = 0
        self.quiet_bytes = 0
        self.rejection: Rejection | None = None
        self.closed_by_message = False

    def on_message_begin(self) -> None:
        self.events += 1
        self.url = b""
        self.headers = []
        self.body = []
        self.head = None
        self.head_size = 0
        self.in_head = True
        self.in_message = True

    def on_url(self, url: bytes) -> None:
        self.events += 1
        self.url += url
        self.head_size += len(url)
        if self.head_size > MAX_HEAD_BYTES:
            self._stop(Rejection(431, "request line too long"))

    def on_header(self, name: bytes, value: bytes) -> None:
        self.events += 1
        if not self.in_head:
            return  # a trailer field
        self.headers.append((name, value))
        self.head_size += len(name) + len(value) + 4
        if len(self.headers) > MAX_HEADERS:
            self._stop(Rejection(431, "too many header fields"))
        if self.head_size > MAX_HEAD_BYTES:
            self._stop(Rejection(431, "request head too large"))

    def on_headers_complete(self) -> None:
        self.events += 1
        self.in_head = False
        result = parse_request_head(self.parser.get_method(), self.parser.get_http_version(), self.url, self.headers)
        if isinstance(result, Rejection):
            self._stop(result)
        self.head = result

    def on_body(self, body: bytes) -> None:
        self.events += 1
        self.body.append(body)

    def on_message_complete(self) -> None:
        self.events += 1
        self.in_message = False
        head = self.head
        assert head is not None
        if not self.closed_by_message:
            message = Message(head.method, self.url, b"".join(self.body))
            self.messages.append(message)
            self.forwarded.append((message, upstream_bytes(head, self.body)))
            self.closed_by_message = not head.keep_alive

    def _stop(self, rejection: Rejection) -> None:
        self.rejection = rejection
        raise _Stop()

    def feed_piece(self, piece: bytes) -> Rejection | None:
        """DownstreamProtocol._feed_piece: feed one piece; the refusal it ends in, if any."""
        events = self.events
        rest = piece
        while True:
            try:
                self.parser.feed_data(rest)
            except HttpParserUpgrade as exc:
                rest = rest[exc.args[0] :]
                if rest:
                    continue
            except HttpParserError as exc:
                if self.rejection is not None:
                    return self.rejection
                if isinstance(exc, HttpParserCallbackError):
                    # The sidecar answers 500 and logs the exception: a bug in a callback.
                    return Rejection(500, f"callback failed: {exc.__context__!r}")
                return Rejection(400, f"malformed request: {exc}")
            break
        if self.events != events:
            self.quiet_bytes = 0
            return None
        self.quiet_bytes += len(piece)
        if self.quiet_bytes > MAX_HEAD_BYTES:
            return Rejection(431 if self.in_head else 400, "bytes without an event past the head limit")
        return None


def upstream_bytes(head: RequestHead, body: list[bytes]) -> bytes:
    """The request as the sidecar sends it on: head rebuilt by build_request_head, each body
    piece re-chunked as meshkit.sidecar.exchange does, or passed on as it came."""
    if head.chunked:
        chunks = b"".join(b"%x\r\n%s\r\n" % (len(piece), piece) for piece in body if piece) + b"0\r\n\r\n"
    else:
        chunks = b"".join(body)
    return build_request_head(head, head.authority or b"upstream", b"") + chunks


def forwarded(data: bytes) -> list[tuple[Message, bytes]]:
    """Each request the sidecar would forward from `data`, with the bytes it would send upstream."""
    reader = _MeshkitParser()
    for offset in range(0, max(len(data), 1), PIECE):
        if reader.feed_piece(data[offset : offset + PIECE]) is not None:
            break
    return reader.forwarded


def meshkit_reading(data: bytes, split: Callable[[bytes], list[bytes]] | None = None) -> Reading:
    """What the sidecar's downstream parser makes of `data`.

    `split` cuts the stream into the reads a socket might deliver (default:
    one read); each read is fed in pieces of at most PIECE bytes, as
    DownstreamProtocol._feed does.
    """
    reader = _MeshkitParser()
    reads = [data] if split is None else split(data)
    rejection: Rejection | None = None
    for read in reads:
        for offset in range(0, max(len(read), 1), PIECE):
            rejection = reader.feed_piece(read[offset : offset + PIECE])
            if rejection is not None:
                break
        if rejection is not None:
            break
    messages = reader.messages
    if reader.closed_by_message:
        return Reading(tuple(messages), CLOSE)
    if rejection is not None:
        return Reading(tuple(messages), REJECTED, rejection.status)
    if reader.in_message:
        return Reading(tuple(messages), INCOMPLETE, pending_head=reader.head is not None)
    return Reading(tuple(messages), CLEAN)


def inbound_refuses(message: Message) -> bool:
    """The inbound listener answers this accepted request 400 itself: its path has no single reading.

    meshkit.core.paths refuses it after the head is parsed (in
    meshkit.sidecar.admission), and the connection goes on to the next request.
    """
    return message.target[:1] == b"/" and isinstance(normalize_target(message.target), Rejection)


def as_meshkit_allows(rest: bytes) -> bytes:
    """The start of the next request with the two leniencies RFC 9112 permits and meshkit takes
    undone: empty lines before the request-line dropped (2.2), runs of spaces in it made one (3)."""
    rest = rest.lstrip(b"\r\n")
    end = rest.find(b"\n")
    line = rest if end < 0 else rest[:end]
    while b"  " in line:
        line = line.replace(b"  ", b" ")
    return line if end < 0 else line + rest[end:]


def h11_reading(data: bytes, lenient: bool = False) -> Reading:
    """What h11, as a server, makes of `data`, with meshkit's head size limit.

    Every request h11 reads in full is answered (200, empty) and the next is
    read from the bytes left, as a server does with pipelined requests. With
    `lenient`, each request is first passed through `as_meshkit_allows`, so
    that h11 is held to meshkit's reading minus the leniencies the RFC allows.
    """
    messages: list[Message] = []
    rest = data
    while True:
        if lenient:
            rest = as_meshkit_allows(rest)
        if not rest:  # (receive_data(b"") would tell h11 the client closed)
            return Reading(tuple(messages), CLEAN)
        conn = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_HEAD_BYTES)
        conn.receive_data(rest)
        method = target = b""
        body: list[bytes] = []
        head_seen = False
        while True:
            try:
                event = conn.next_event()
            except h11.RemoteProtocolError as exc:
                return Reading(tuple(messages), REJECTED, exc.error_status_hint)
            if isinstance(event, h11.Request):
                method, target, head_seen = event.method, event.target, True
            elif isinstance(event, h11.Data):
                body.append(event.data)
            elif isinstance(event, h11.EndOfMessage):
                break
            elif event is h11.NEED_DATA:
                if head_seen or conn.trailing_data[0]:
                    return Reading(tuple(messages), INCOMPLETE, pending_head=head_seen)
                return Reading(tuple(messages), CLEAN)
            else:  # PAUSED (a protocol switch h11 will not make) or ConnectionClosed
                return Reading(tuple(messages), CLOSE)
        messages.append(Message(method, target, b"".join(body)))
        conn.send(h11.Response(status_code=200, headers=[(b"content-length", b"0")]))
        if conn.our_state is h11.SEND_BODY:  # not after a 200 to CONNECT, which switched protocols
            conn.send(h11.EndOfMessage())
        if conn.our_state is not h11.DONE or conn.their_state is not h11.DONE:
            return Reading(tuple(messages), CLOSE)
        rest = conn.trailing_data[0]


# Bytes that matter to HTTP/1.1 framing: controls, separators, digits, hex, obs-text.
INTERESTING = [0, 9, 10, 11, 13, 32, 34, 44, 45, 48, 53, 58, 59, 95, 102, 127, 128, 255]


@st.composite
def mutated(draw: st.DrawFn, entries: list[Entry]) -> bytes:
    """An entry with a few bytes replaced, inserted or cut, two entries spliced, or random bytes."""
    seeds = [e.raw for e in entries]
    kind = draw(st.sampled_from(["mutate", "splice", "random"]))
    if kind == "random":
        return draw(st.binary(min_size=1, max_size=300))
    data = bytearray(draw(st.sampled_from(seeds)))
    if kind == "splice":
        other = draw(st.sampled_from(seeds))
        return bytes(data[: draw(st.integers(0, len(data)))]) + other[draw(st.integers(0, len(other))) :]
    for _ in range(draw(st.integers(1, 4))):
        position = draw(st.integers(0, max(0, len(data) - 1)))
        action = draw(st.sampled_from(["replace", "insert", "delete"]))
        byte = draw(st.sampled_from(INTERESTING) | st.integers(0, 255))
        if action == "replace" and data:
            data[position] = byte
        elif action == "insert":
            data.insert(position, byte)
        elif data:
            del data[position]
    return bytes(data)


def keep_failure(data: bytes) -> None:
    """Write `data` into the corpus when Hypothesis is replaying its final, shrunk failing example.

    Called by a fuzz test just before it fails; the intermediate examples
    Hypothesis tries while shrinking are not kept, only the one it reports.
    The name is the content's hash, so a failure found twice is one file.
    """
    if not currently_in_test_context() or not current_build_context().is_final:
        return
    FOUND.mkdir(parents=True, exist_ok=True)
    path = FOUND / f"{hashlib.sha256(data).hexdigest()[:16]}.http"
    if not path.exists():
        path.write_bytes(data)
