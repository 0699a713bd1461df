"""Request ids and W3C trace context, as each sidecar hop rewrites them.

Every request leaves a sidecar with an `x-request-id` (kept if the client sent
a sane one, else a new uuid4) and a `traceparent` (W3C Trace Context level 1):
the trace id and flags are kept from a valid incoming header, the parent id
becomes a new span id for this hop, so a trace shows one span per sidecar. An
absent or invalid traceparent starts a new trace, and then an incoming
`tracestate` is dropped, as the spec requires.

Randomness comes from the caller (`bits(n)` returns an n-bit integer) so tests
can pin it; the sidecar passes random.getrandbits, which is fast and, unlike
uuid.uuid4, makes no system call per request.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import NamedTuple

RandomBits = Callable[[int], int]

_TRACEPARENT = re.compile(rb"([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?")
_ZERO_TRACE = b"0" * 32
_ZERO_SPAN = b"0" * 16
SAMPLED = b"01"


class TraceContext(NamedTuple):
    """The parts of a traceparent header, as lower-case hex bytes."""

    trace_id: bytes
    span_id: bytes
    flags: bytes


def new_request_id(bits: RandomBits) -> bytes:
    """A random (version 4, RFC 4122 variant) UUID in its usual text form."""
    v = bits(128)
    return b"%08x-%04x-4%03x-%04x-%012x" % (
        v >> 96,
        (v >> 80) & 0xFFFF,
        (v >> 68) & 0xFFF,
        0x8000 | ((v >> 48) & 0x3FFF),
        v & 0xFFFFFFFFFFFF,
    )


def parse_traceparent(value: bytes | None) -> TraceContext | None:
    """The incoming context, or None when absent or not valid per the spec.

    Version ff is forbidden; a future version may carry more fields after a
    dash, and only the four we know are read.
    """
    if value is None:
        return None
    match = _TRACEPARENT.fullmatch(value.strip(b" \t"))
    if match is None:
        return None
    version, trace_id, span_id, flags, rest = match.groups()
    if version == b"ff" or (version == b"00" and rest) or trace_id == _ZERO_TRACE or span_id == _ZERO_SPAN:
        return None
    return TraceContext(trace_id, span_id, flags)


def _nonzero_hex(bits: RandomBits, width: int) -> bytes:
    value = 0
    while value == 0:
        value = bits(width * 4)
    return b"%0*x" % (width, value)


def next_hop(incoming: TraceContext | None, bits: RandomBits) -> TraceContext:
    """The context this hop sends on: same trace, new span; or a new trace."""
    span_id = _nonzero_hex(bits, 16)
    if incoming is None:
        return TraceContext(_nonzero_hex(bits, 32), span_id, SAMPLED)
    return TraceContext(incoming.trace_id, span_id, incoming.flags)


def format_traceparent(context: TraceContext) -> bytes:
    """The header value, always written as version 00."""
    return b"00-%s-%s-%s" % (context.trace_id, context.span_id, context.flags)


class HopIds(NamedTuple):
    """The ids a request carries out of this hop, and the header lines saying so."""

    request_id: bytes
    trace_id: bytes
    header_lines: bytes
    span_id: bytes = b""
    parent_span_id: bytes | None = None


def hop_ids(request_id: bytes | None, traceparent: bytes | None, tracestate: bytes | None, bits: RandomBits) -> HopIds:
    """Keep or make the request id, start this hop's span, pass tracestate on.

    The span this hop starts is `span_id`; its parent is the span id of the
    incoming traceparent (None when this hop starts the trace)."""
    rid = request_id if request_id is not None else new_request_id(bits)
    incoming = parse_traceparent(traceparent)
    context = next_hop(incoming, bits)
    lines = b"x-request-id: %s\r\ntraceparent: %s\r\n" % (rid, format_traceparent(context))
    if incoming is not None and tracestate:
        lines += b"tracestate: %s\r\n" % tracestate
    return HopIds(rid, context.trace_id, lines, context.span_id, incoming.span_id if incoming is not None else None)
