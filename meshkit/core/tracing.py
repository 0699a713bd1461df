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
# What nearly every hop receives: version 00, exactly 55 bytes, the parts at
# fixed places, so they are sliced out rather than captured.
_TRACEPARENT_00 = re.compile(rb"00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}")
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


def _incoming(value: bytes) -> tuple[bytes, bytes, bytes] | None:
    """(trace id, span id, flags) of a traceparent value, or None when it is not valid per the spec.

    Version ff is forbidden; a future version may carry more fields after a
    dash, and only the four we know are read.
    """
    value = value.strip(b" \t")
    if len(value) != 55 or not _TRACEPARENT_00.fullmatch(value):
        return _incoming_any_version(value)
    trace_id, span_id = value[3:35], value[36:52]
    if trace_id == _ZERO_TRACE or span_id == _ZERO_SPAN:
        return None
    return trace_id, span_id, value[53:55]


def _incoming_any_version(value: bytes) -> tuple[bytes, bytes, bytes] | None:
    """_incoming's general route, for every value (already stripped)."""
    match = _TRACEPARENT.fullmatch(value)
    if match is None:
        return None
    version, trace_id, span_id, flags, rest = match.groups()
    if version == b"ff" or (version == b"00" and rest) or trace_id == _ZERO_TRACE or span_id == _ZERO_SPAN:
        return None
    return trace_id, span_id, flags


def parse_traceparent(value: bytes | None) -> TraceContext | None:
    """The incoming context, or None when absent or not valid per the spec."""
    if value is None:
        return None
    parts = _incoming(value)
    return None if parts is None else TraceContext(*parts)


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


# What ids_for_hop returns: (request id, trace id, span id, parent span id or
# None, header lines).
HopIdTuple = tuple[bytes, bytes, bytes, bytes | None, bytes]


def ids_for_hop(request_id: bytes | None, traceparent: bytes | None, tracestate: bytes | None, bits: RandomBits) -> HopIdTuple:
    """Keep or make the request id, start this hop's span, pass tracestate on; as a plain tuple.

    hop_ids' answer without the named tuple, for the request path: the span
    this hop starts, its parent (the incoming span, None when this hop starts
    the trace) and the header lines. Random numbers are drawn in the same
    order as new_request_id and next_hop draw them: request id, span, trace.
    """
    rid = request_id if request_id is not None else new_request_id(bits)
    incoming = None if traceparent is None else _incoming(traceparent)
    span = bits(64)
    while span == 0:  # all-zero ids are invalid; a chance of 2**-64
        span = bits(64)
    span_id = b"%016x" % span
    if incoming is None:
        trace = bits(128)
        while trace == 0:
            trace = bits(128)
        trace_id = b"%032x" % trace
        lines = b"x-request-id: %s\r\ntraceparent: 00-%s-%s-%s\r\n" % (rid, trace_id, span_id, SAMPLED)
        return rid, trace_id, span_id, None, lines
    trace_id, parent_span_id, flags = incoming
    lines = b"x-request-id: %s\r\ntraceparent: 00-%s-%s-%s\r\n" % (rid, trace_id, span_id, flags)
    if tracestate:
        lines += b"tracestate: %s\r\n" % tracestate
    return rid, trace_id, span_id, parent_span_id, lines


def hop_ids(request_id: bytes | None, traceparent: bytes | None, tracestate: bytes | None, bits: RandomBits) -> HopIds:
    """Keep or make the request id, start this hop's span, pass tracestate on.

    The span this hop starts is `span_id`; its parent is the span id of the
    incoming traceparent (None when this hop starts the trace)."""
    rid, trace_id, span_id, parent_span_id, lines = ids_for_hop(request_id, traceparent, tracestate, bits)
    return HopIds(rid, trace_id, lines, span_id, parent_span_id)
