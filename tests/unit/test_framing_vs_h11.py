"""meshkit's HTTP/1.1 request parser beside h11's, on the fuzz corpus and on random mutations of it.

The parser is meshkit.core.framing with httptools as the sidecar's
downstream drives them (tests/fuzz/http1.py: `meshkit_reading`). h11 is an
independent implementation of the same RFCs; where the two read an entry of
the corpus differently, DIFFERENCES below says why meshkit's reading is right
or deliberately stricter. A difference that is not in the table fails, and so
does a row whose difference has gone: the table stays true.

The Hypothesis tests mutate the corpus and hold the parser to three rules;
an input that breaks one is written into the corpus (tests/fuzz/http1-corpus/found)
before the test fails, so it is replayed here and on real sidecars forever after.
"""

from __future__ import annotations

import h11
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from meshkit.core.framing import Rejection, RequestHead, parse_request_head
from tests.fuzz.http1 import (
    CLEAN,
    REJECTED,
    Entry,
    Reading,
    corpus,
    forwarded,
    h11_reading,
    keep_failure,
    meshkit_reading,
    mutated,
)

ENTRIES = corpus()


def summary(reading: Reading) -> str:
    """A reading in the words of the table: how many requests are served, then how the bytes end."""
    return f"{len(reading.messages)} served, {reading.end}"


# Entry -> (meshkit's reading, h11's reading, why meshkit's is right or stricter).
# RFC 9110 is HTTP semantics, RFC 9112 HTTP/1.1, RFC 6585 status 431.
DIFFERENCES: dict[str, tuple[str, str, str]] = {
    # --- smuggling: two readings of where a body ends
    "seeds/cl-and-te": ("0 served, rejected", "2 served, clean",
        "RFC 9112 6.1: a server MAY reject CL with TE, and if it reads on MUST close after responding; "
        "h11 reads on and keeps the connection, so the bytes after the body become a second request"),
    "seeds/te-and-cl": ("0 served, rejected", "2 served, clean", "as cl-and-te (RFC 9112 6.1), header order swapped"),
    "seeds/cl-and-te-with-smuggled-get": ("0 served, rejected", "2 served, clean",
        "RFC 9112 6.1 / 11.2: the classic CL.TE smuggle; h11 serves the hidden GET /smuggled"),
    "seeds/te-on-http10": ("0 served, rejected", "1 served, close",
        "RFC 9112 6.1: TE on an HTTP/1.0 request MUST be treated as faulty framing; meshkit refuses it "
        "(HARDENING), h11 reads it and closes"),
    "seeds/te-on-http10-smuggle": ("0 served, rejected", "1 served, close", "as te-on-http10, with a CL that disagrees (RFC 9112 6.1)"),
    "seeds/http10-no-host-te-chunked": ("0 served, rejected", "1 served, close",
        "as te-on-http10 (RFC 9112 6.1), on a head with no Host, which HTTP/1.0 allows"),
    "seeds/content-length-same-value-list": ("0 served, rejected", "1 served, clean",
        "RFC 9110 8.6: a recipient MAY reject `5, 5` or fold it to one value; meshkit rejects any list (HARDENING)"),
    "seeds/content-length-same-value-twice": ("0 served, rejected", "1 served, clean",
        "RFC 9110 8.6 as above, for two Content-Length fields that agree"),
    "seeds/content-length-16-digits": ("0 served, rejected", "0 served, incomplete",
        "RFC 9110 8.6: recipients MUST guard against overflow in large numerals; meshkit refuses more than "
        "15 digits at once, h11 waits for a petabyte"),
    "seeds/chunk-size-huge": ("0 served, rejected", "0 served, incomplete",
        "RFC 9112 7.1: recipients MUST prevent overflow in large hex numerals; llhttp refuses a size past "
        "64 bits, h11 waits for the data"),
    "seeds/chunk-size-2-to-the-64": ("0 served, rejected", "0 served, incomplete", "as chunk-size-huge: 2**64 overflows (RFC 9112 7.1)"),
    "seeds/chunk-size-space-before-crlf": ("0 served, rejected", "1 served, clean",
        "RFC 9112 7.1: chunk = chunk-size [ chunk-ext ] CRLF; whitespace (BWS) is allowed only before a `;`"),
    "seeds/chunk-extension-cr": ("0 served, rejected", "2 served, clean",
        "RFC 9112 7.1.1: a chunk-ext is tokens or quoted-strings; a bare CR in one is a framing error "
        "(HARDENING); h11 skips extensions unread"),
    "seeds/chunk-extension-nul": ("0 served, rejected", "2 served, clean", "as chunk-extension-cr, for NUL (RFC 9112 7.1.1)"),
    # --- line endings and folding
    "seeds/request-line-bare-lf": ("0 served, rejected", "1 served, clean",
        "RFC 9112 2.2: a recipient MAY take a bare LF as a line end; meshkit does not, since a server "
        "behind that does not would read the head differently"),
    "seeds/header-line-bare-lf": ("0 served, rejected", "1 served, clean", "as request-line-bare-lf (RFC 9112 2.2)"),
    "seeds/header-value-lf": ("0 served, rejected", "2 served, clean",
        "RFC 9110 5.5: a field value with LF MUST be rejected or the LF replaced by SP; h11 ends the line "
        "at the LF and reads `2: 3` as a second field"),
    "seeds/obs-fold": ("0 served, rejected", "2 served, clean",
        "RFC 9112 5.2: obs-fold MUST be rejected with 400 or replaced by SP; both are allowed, meshkit "
        "rejects (HARDENING), h11 unfolds"),
    "seeds/te-folded-chunked": ("0 served, rejected", "2 served, clean",
        "RFC 9112 5.2 as obs-fold; here the fold hides `chunked` from a reader that does not unfold"),
    "seeds/te-line-starts-with-space": ("0 served, rejected", "1 served, rejected",
        "RFC 9112 5.2: h11 unfolds ` Transfer-Encoding: chunked` into the Host value, so it reads no body "
        "and then refuses the chunk bytes as a request; meshkit refuses the fold"),
    # --- field names and values
    "seeds/header-value-control": ("0 served, rejected", "2 served, clean",
        "RFC 9110 5.5: CTLs other than HTAB are invalid in a field value (recipients MAY keep them); "
        "meshkit refuses them"),
    "seeds/underscore-header-name": ("0 served, rejected", "2 served, clean",
        "RFC 9110 5.1 allows `_` in a name; meshkit refuses it (as Envoy's headers_with_underscores_action "
        "REJECT_REQUEST) because CGI and nginx fold `_` into `-`"),
    "seeds/underscore-and-dash-same-name": ("0 served, rejected", "1 served, clean", "as underscore-header-name: X_User would pose as X-User"),
    "seeds/host-with-userinfo": ("0 served, rejected", "2 served, clean",
        "RFC 9110 7.2: Host = uri-host [\":\" port], no userinfo; RFC 9112 3.2: a server MUST answer 400 "
        "to an invalid Host"),
    "seeds/host-with-bad-char": ("0 served, rejected", "1 served, clean", "RFC 9112 3.2: invalid Host MUST get 400; `\"` is not a reg-name character (RFC 3986 3.2.2)"),
    # --- request line
    "seeds/request-line-double-space": ("1 served, clean", "0 served, rejected",
        "RFC 9112 3: recipients MAY split the request-line on any run of whitespace; llhttp does, and the "
        "sidecar rebuilds the line with single spaces (build_request_head), so no server behind sees it"),
    "seeds/empty-line-only": ("0 served, clean", "0 served, rejected",
        "RFC 9112 2.2: a server SHOULD ignore at least one empty line before a request-line; h11 does not"),
    "seeds/leading-crlf-before-request": ("1 served, clean", "0 served, rejected", "RFC 9112 2.2, as empty-line-only"),
    "found/687236d50ee25e7b": ("3 served, clean", "2 served, rejected",
        "RFC 9112 2.2, as empty-line-only: the CRLF after a body (the chunked-looking `0` is a 1-byte "
        "Content-Length body) is an empty line before the next request-line, which meshkit skips"),
    "seeds/method-lowercase": ("0 served, rejected", "1 served, clean",
        "RFC 9110 9.1: methods are case-sensitive, `get` is an unknown method; llhttp knows only the "
        "registered ones and refuses the rest (400; 9.1 suggests 501)"),
    "seeds/method-unknown-token": ("0 served, rejected", "1 served, clean", "as method-lowercase (RFC 9110 9.1)"),
    "seeds/request-line-http08": ("0 served, rejected", "1 served, close",
        "RFC 9112 2.3: HTTP/0.8 is no version of HTTP/1; h11 reads any digit.digit"),
    "seeds/request-line-http2": ("0 served, rejected", "2 served, clean",
        "RFC 9110 15.6.6: 505 for a major version the server does not speak over this syntax; h11 reads "
        "2.0 as HTTP/1.1"),
    "seeds/h2-preface": ("0 served, rejected", "1 served, rejected",
        "RFC 9113 3.4: the preface exists to fail on HTTP/1 servers; h11 serves `PRI * HTTP/2.0` first "
        "(see request-line-http2), meshkit refuses at once"),
    "seeds/request-target-junk": ("0 served, rejected", "2 served, clean",
        "RFC 9112 3.2: `junk` is none of the four request-target forms; invalid request-line SHOULD get "
        "400 (RFC 9112 3); h11 checks only the characters"),
    "seeds/star-target-on-get": ("0 served, rejected", "1 served, clean", "RFC 9112 3.2.4: the asterisk-form is only for OPTIONS"),
    "seeds/absolute-form-https": ("0 served, rejected", "1 served, clean",
        "RFC 9110 9.3.6: a plain HTTP proxy reaches https only through CONNECT, which the sidecar does not "
        "offer; h11 does not read targets"),
    "seeds/absolute-form-userinfo": ("0 served, rejected", "1 served, clean",
        "RFC 9110 4.2.4: userinfo in an http URI is deprecated, and a recipient SHOULD treat it as an error"),
    "seeds/connect-method": ("0 served, rejected", "1 served, close",
        "RFC 9110 9.3.6: CONNECT is optional; the sidecar offers no tunnels and answers 501 (15.6.2); h11 "
        "hands the connection over"),
    "seeds/http10-no-host-expect-unknown": ("0 served, rejected", "1 served, close", "as expect-unknown (RFC 9110 10.1.1), on HTTP/1.0"),
    "seeds/http10-keep-alive-with-host-pipelined": ("2 served, close", "1 served, close",
        "RFC 9112 9.3 and C.2.2: an HTTP/1.0 client asks to keep the connection with Connection: "
        "keep-alive, and meshkit does; h11 closes every HTTP/1.0 connection (a documented limit of h11)"),
    "seeds/http10-no-host-keep-alive-pipelined": ("2 served, close", "1 served, close", "as http10-keep-alive-with-host-pipelined, with no Host"),
    "seeds/expect-unknown": ("0 served, rejected", "1 served, clean",
        "RFC 9110 10.1.1: a server MAY answer 417 to an expectation other than 100-continue; h11 ignores Expect"),
    # --- limits (h11's only limit bounds an event still arriving, not a complete head)
    "seeds/header-over-60-kib": ("0 served, rejected", "2 served, clean",
        "RFC 6585 5: 431 for a head over the limit (60 KiB, Envoy's max_request_headers_kb); h11 enforces "
        "its limit only while a head is incomplete"),
    "seeds/headers-over-60-kib-total": ("0 served, rejected", "2 served, clean", "as header-over-60-kib (RFC 6585 5)"),
    "seeds/more-than-100-headers": ("0 served, rejected", "2 served, clean",
        "RFC 6585 5: 431 past 100 fields (Envoy's max_headers_count); h11 has no count limit"),
}


@pytest.mark.parametrize("entry", ENTRIES, ids=[e.name for e in ENTRIES])
def test_meshkit_and_h11_agree_on_every_entry_or_the_table_says_why(entry: Entry) -> None:
    ours, theirs = meshkit_reading(entry.raw), h11_reading(entry.raw)
    if ours.verdict() == theirs.verdict():
        assert entry.name not in DIFFERENCES, f"{entry.name}: meshkit and h11 now agree ({summary(ours)}); drop its row"
        return
    assert entry.name in DIFFERENCES, (
        f"{entry.name}: unexplained difference: meshkit {ours}, h11 {theirs}. "
        "Fix the parser, or add a row saying why meshkit is right (with the RFC section)"
    )
    expected_ours, expected_theirs, _ = DIFFERENCES[entry.name]
    assert (summary(ours), summary(theirs)) == (expected_ours, expected_theirs)


def test_every_row_of_the_table_names_an_entry_of_the_corpus() -> None:
    assert set(DIFFERENCES) <= {e.name for e in ENTRIES}


def test_where_meshkit_is_more_lenient_than_h11_the_table_says_so() -> None:
    """The rows where meshkit serves more requests than h11 are the ones to watch: they are listed here by name."""
    lenient = {e.name for e in ENTRIES if len(meshkit_reading(e.raw).messages) > len(h11_reading(e.raw).messages)}
    assert lenient == {
        "seeds/request-line-double-space",
        "seeds/leading-crlf-before-request",
        "found/687236d50ee25e7b",
        "seeds/http10-keep-alive-with-host-pipelined",
        "seeds/http10-no-host-keep-alive-pipelined",
    }


@pytest.mark.parametrize(
    ("field", "expected"),
    [
        ((b"Content-Length", b"5"), (5, False, False)),
        ((b"Transfer-Encoding", b"chunked"), None),
        ((b"Connection", b"keep-alive"), (None, False, True)),
    ],
)
def test_an_http10_head_without_host_has_its_one_framing_field_read(field: tuple[bytes, bytes], expected: tuple[object, ...] | None) -> None:
    """Found by the fuzzing below (found/5887578a7446bfc3): with no Host and one special field, the
    field was skipped, so `POST / HTTP/1.0` with a Content-Length had its body sent upstream
    unframed, where it was read as the next request (smuggled past routing and policy)."""
    head = parse_request_head(b"POST", "1.0", b"/", [field])
    if expected is None:
        assert isinstance(head, Rejection) and head.status == 400
    else:
        assert isinstance(head, RequestHead) and (head.content_length, head.chunked, head.keep_alive) == expected


def test_no_entry_makes_the_parser_fail_inside_a_callback() -> None:
    """A 500 is the sidecar's answer to an exception in its own parser callbacks: a bug, never a verdict."""
    assert [e.name for e in ENTRIES if meshkit_reading(e.raw).status == 500] == []


def forwarded_as_read(data: bytes) -> list[str]:
    """Each request meshkit would forward from `data` that h11, reading the bytes sent upstream,
    does not see as exactly one request with the same method and body: a smuggling route."""
    wrong = []
    for message, sent in forwarded(data):
        upstream = h11_reading(sent)
        read = upstream.messages[0] if len(upstream.messages) == 1 else None
        if upstream.end != CLEAN or read is None or (read.method, read.body) != (message.method, message.body) or not (read.target[:1] == b"/" or read.target == b"*"):
            wrong.append(f"sent {sent!r}, h11 read {upstream}")
    return wrong


@pytest.mark.parametrize("entry", ENTRIES, ids=[e.name for e in ENTRIES])
def test_each_request_meshkit_forwards_from_an_entry_is_one_request_upstream(entry: Entry) -> None:
    assert forwarded_as_read(entry.raw) == []


# --- fuzzing: mutations of the corpus ---

FUZZ = settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@FUZZ
@given(data=mutated(ENTRIES), cuts=st.lists(st.integers(0, 10**6), max_size=6))
def test_the_reading_does_not_depend_on_how_the_bytes_arrive(data: bytes, cuts: list[int]) -> None:
    """TCP may deliver a request in any pieces; the sidecar must read the same requests whatever they are."""
    points = sorted({c % (len(data) + 1) for c in cuts})

    def split(raw: bytes) -> list[bytes]:
        edges = [0, *points, len(raw)]
        return [raw[a:b] for a, b in zip(edges, edges[1:], strict=False)]

    whole, pieces = meshkit_reading(data), meshkit_reading(data, split)
    if whole.verdict() != pieces.verdict() or whole.status == 500 or pieces.status == 500:
        keep_failure(data)
    assert pieces.verdict() == whole.verdict(), f"cut at {points}"
    assert 500 not in (whole.status, pieces.status), "an exception in a parser callback"


# Request heads from the fields that decide framing, each there or not, once or twice, on HTTP/1.0
# and 1.1: random bytes rarely produce a head without Host but with one framing field.
FIELDS = [
    b"Host: echo\r\n",
    b"Content-Length: 5\r\n",
    b"Content-Length: 0\r\n",
    b"Transfer-Encoding: chunked\r\n",
    b"Transfer-Encoding: identity\r\n",
    b"Connection: keep-alive\r\n",
    b"Connection: close\r\n",
    b"Connection: x-a\r\n",
    b"Expect: 100-continue\r\n",
    b"X-A: 1\r\n",
    b"Upgrade: websocket\r\n",
]
BODIES = [b"", b"hello", b"5\r\nhello\r\n0\r\n\r\n", b"0\r\n\r\n", b"GET /smuggled HTTP/1.1\r\nHost: echo\r\n\r\n"]


@st.composite
def framed_requests(draw: st.DrawFn) -> bytes:
    """One to three requests whose heads combine the framing fields at random."""
    parts = []
    for _ in range(draw(st.integers(1, 3))):
        method = draw(st.sampled_from([b"GET", b"POST", b"OPTIONS"]))
        version = draw(st.sampled_from([b"1.0", b"1.1"]))
        fields = draw(st.lists(st.sampled_from(FIELDS), max_size=5))
        parts.append(b"%s /f HTTP/%s\r\n%s\r\n%s" % (method, version, b"".join(fields), draw(st.sampled_from(BODIES))))
    return b"".join(parts)


@FUZZ
@given(data=mutated(ENTRIES) | framed_requests())
def test_what_meshkit_forwards_h11_reads_as_the_same_one_request(data: bytes) -> None:
    """No smuggling past the sidecar: each request it forwards, as rebuilt for the upstream, is one
    request to an independent parser, with the method and body meshkit read."""
    wrong = forwarded_as_read(data)
    if wrong:
        keep_failure(data)
    assert wrong == []


@FUZZ
@given(data=mutated(ENTRIES) | framed_requests())
def test_meshkit_never_serves_a_request_h11_refuses_in_the_same_place(data: bytes) -> None:
    """Where h11 refuses the n-th request outright, meshkit serves at most n-1 requests, once the two
    leniencies the table explains (empty lines before a request-line, runs of spaces in it) are
    granted to h11 as well."""
    theirs = h11_reading(data, lenient=True)
    ours = meshkit_reading(data)
    if theirs.end == REJECTED and len(ours.messages) > len(theirs.messages):
        keep_failure(data)
        pytest.fail(f"meshkit serves {ours.messages}, h11 refuses after {theirs.messages}")


def test_the_leniencies_granted_to_h11_are_the_two_the_table_explains() -> None:
    """Granting them makes h11 agree with meshkit on exactly those rows, and on no entry does it make
    h11 refuse where it did not."""
    changed = {e.name for e in ENTRIES if h11_reading(e.raw, lenient=True) != h11_reading(e.raw)}
    assert changed == {"seeds/request-line-double-space", "seeds/leading-crlf-before-request", "seeds/empty-line-only", "found/687236d50ee25e7b"}
    for name in changed:
        raw = next(e.raw for e in ENTRIES if e.name == name)
        assert h11_reading(raw, lenient=True).verdict() == meshkit_reading(raw).verdict()


def test_h11_is_the_version_the_comparison_was_written_against() -> None:
    """The table records h11 0.16's readings (it tightened chunk parsing after CVE-2025-43859)."""
    assert tuple(int(part) for part in h11.__version__.split(".")[:2]) >= (0, 16)
