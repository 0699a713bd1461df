"""Request ids and W3C traceparent handling per hop (meshkit.core.tracing)."""

from __future__ import annotations

import random
import re
import uuid

import pytest

from meshkit.core import tracing
from meshkit.core.tracing import TraceContext, format_traceparent, hop_ids, ids_for_hop, new_request_id, next_hop, parse_traceparent

VALID = b"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


def bits() -> random.Random:
    return random.Random(7)


def test_request_id_is_a_version_4_uuid() -> None:
    rng = bits()
    ids = {new_request_id(rng.getrandbits) for _ in range(100)}
    assert len(ids) == 100
    for value in ids:
        parsed = uuid.UUID(value.decode())
        assert parsed.version == 4 and parsed.variant == uuid.RFC_4122


def test_valid_traceparent_is_parsed() -> None:
    assert parse_traceparent(VALID) == TraceContext(b"0af7651916cd43dd8448eb211c80319c", b"b7ad6b7169203331", b"01")


@pytest.mark.parametrize(
    "value",
    [
        None,
        b"",
        b"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331",
        b"ff-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        b"00-00000000000000000000000000000000-b7ad6b7169203331-01",
        b"00-0af7651916cd43dd8448eb211c80319c-0000000000000000-01",
        b"00-0AF7651916CD43DD8448EB211C80319C-b7ad6b7169203331-01",
        b"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-extra",
        b"00-0af7651916cd43dd8448eb211c80319c-b7ad6b716920333-01",
    ],
)
def test_invalid_traceparent_is_none(value: bytes | None) -> None:
    assert parse_traceparent(value) is None


def test_future_version_with_more_fields_is_read() -> None:
    assert parse_traceparent(b"01-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00-more") is not None


def test_next_hop_keeps_trace_and_flags_with_a_new_span() -> None:
    incoming = parse_traceparent(VALID)
    out = next_hop(incoming, bits().getrandbits)
    assert out.trace_id == b"0af7651916cd43dd8448eb211c80319c" and out.flags == b"01"
    assert out.span_id != b"b7ad6b7169203331" and re.fullmatch(rb"[0-9a-f]{16}", out.span_id)


def test_no_incoming_context_starts_a_sampled_trace() -> None:
    out = next_hop(None, bits().getrandbits)
    assert re.fullmatch(rb"00-[0-9a-f]{32}-[0-9a-f]{16}-01", format_traceparent(out))


def test_zero_random_values_are_redrawn() -> None:
    values = iter([0, 0, 5, 9])
    out = next_hop(None, lambda n: next(values))
    assert out.span_id == b"0000000000000005" and out.trace_id == b"9".rjust(32, b"0")


def test_hop_ids_keep_a_given_request_id_and_pass_tracestate_with_a_valid_parent() -> None:
    ids = hop_ids(b"req-1", VALID, b"a=1", bits().getrandbits)
    assert ids.request_id == b"req-1" and ids.trace_id == b"0af7651916cd43dd8448eb211c80319c"
    assert b"tracestate: a=1\r\n" in ids.header_lines and b"x-request-id: req-1\r\n" in ids.header_lines


def test_tracestate_is_dropped_when_the_trace_restarts() -> None:
    ids = hop_ids(None, b"garbage", b"a=1", bits().getrandbits)
    assert b"tracestate" not in ids.header_lines
    assert ids.trace_id != b"0af7651916cd43dd8448eb211c80319c"


# --- the fast paths agree with the general route -------------------------------------------------

TRACEPARENTS = [
    None,
    b"",
    VALID,
    b" " + VALID + b"\t",
    VALID.replace(b"-01", b"-00"),
    VALID[:-1],
    VALID + b"0",
    VALID + b"-extra",
    b"01" + VALID[2:],
    b"01" + VALID[2:] + b"-more",
    b"ff" + VALID[2:],
    b"0A" + VALID[2:],
    VALID.upper(),
    VALID.replace(b"-", b"_"),
    b"00-00000000000000000000000000000000-b7ad6b7169203331-01",
    b"00-0af7651916cd43dd8448eb211c80319c-0000000000000000-01",
    b"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-0g",
    b"00-0af7651916cd43dd8448eb211c80319cb7ad6b7169203331--01",
    b"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01\n",
    b"garbage",
]


def steps(request_id: bytes | None, traceparent: bytes | None, tracestate: bytes | None, draw: tracing.RandomBits) -> tuple[object, ...]:
    """ids_for_hop's answer built from the general functions, one step at a time."""
    rid = request_id if request_id is not None else new_request_id(draw)
    incoming = parse_traceparent(traceparent)
    context = next_hop(incoming, draw)
    lines = b"x-request-id: %s\r\ntraceparent: %s\r\n" % (rid, format_traceparent(context))
    if incoming is not None and tracestate:
        lines += b"tracestate: %s\r\n" % tracestate
    return rid, context.trace_id, context.span_id, None if incoming is None else incoming.span_id, lines


@pytest.mark.parametrize("traceparent", TRACEPARENTS)
def test_traceparent_fast_path_agrees_with_the_general_route(traceparent: bytes | None) -> None:
    if traceparent is not None:
        general = tracing._incoming_any_version(traceparent.strip(b" \t"))
        assert parse_traceparent(traceparent) == (None if general is None else TraceContext(*general))


@pytest.mark.parametrize("traceparent", TRACEPARENTS)
@pytest.mark.parametrize("request_id", [None, b"req-1"])
@pytest.mark.parametrize("tracestate", [None, b"", b"a=1,b=2"])
def test_ids_for_hop_and_hop_ids_say_what_the_steps_say(traceparent: bytes | None, request_id: bytes | None, tracestate: bytes | None) -> None:
    for seed in range(3):
        expected = steps(request_id, traceparent, tracestate, random.Random(seed).getrandbits)
        assert ids_for_hop(request_id, traceparent, tracestate, random.Random(seed).getrandbits) == expected
        ids = hop_ids(request_id, traceparent, tracestate, random.Random(seed).getrandbits)
        assert (ids.request_id, ids.trace_id, ids.span_id, ids.parent_span_id, ids.header_lines) == expected


def drawing(values: list[int]) -> tracing.RandomBits:
    """Random bits that are these values, in order."""
    it = iter(values)
    return lambda n: next(it)


@pytest.mark.parametrize("draws", [[0, 0, 5, 9], [5, 0, 0, 9], [0, 5, 0, 0, 0, 9]])
def test_ids_for_hop_redraws_zero_ids_as_next_hop_does(draws: list[int]) -> None:
    assert ids_for_hop(b"r", None, None, drawing(draws)) == steps(b"r", None, None, drawing(draws))
