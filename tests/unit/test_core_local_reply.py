"""Mesh-generated responses carry their flag and explain themselves (meshkit.core.local_reply)."""

from __future__ import annotations

import pytest

from meshkit.core.local_reply import FLAGS, render_local_reply, render_response


@pytest.mark.parametrize("letters", [f for f in FLAGS if FLAGS[f].status])
def test_every_flag_renders_a_complete_response(letters: str) -> None:
    wire = render_local_reply(letters, "what happened", close=False)
    head, _, body = wire.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 %d " % FLAGS[letters].status)
    assert b"\r\nx-meshkit-response-flags: %s\r\n" % letters.encode() in head + b"\r\n"
    assert b"content-length: %d" % len(body) in head
    assert b"what happened" in body and letters.encode() in body
    assert b"connection: close" not in head


def test_status_override_close_and_extra_headers() -> None:
    wire = render_local_reply("DPE", "too big", close=True, status=431, extra_headers=[(b"x-meshkit-version", b"v2")])
    assert wire.startswith(b"HTTP/1.1 431 Request Header Fields Too Large\r\n")
    assert b"connection: close\r\n" in wire and b"x-meshkit-version: v2\r\n" in wire


def test_head_only_keeps_the_length_without_the_body() -> None:
    wire = render_response(200, [], b"hello", close=False, head_only=True)
    assert wire.endswith(b"content-length: 5\r\n\r\n")


def test_unregistered_status_still_has_a_reason_phrase() -> None:
    assert render_response(599, [], b"", close=False).startswith(b"HTTP/1.1 599 Status\r\n")


def test_several_flags_take_the_first_ones_status_and_explain_each() -> None:
    wire = render_local_reply("UF,URX", "connect to 127.0.0.1:1 failed", close=False)
    head, _, body = wire.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 503 ") and b"x-meshkit-response-flags: UF,URX" in head
    assert b"upstream connection failure" in body and b"also URX: upstream retry limit exceeded" in body


def test_the_flags_the_traffic_features_add_have_envoys_statuses() -> None:
    assert {letters: FLAGS[letters].status for letters in ("UO", "URX", "UT", "FI", "RL", "NC", "UH", "NR")} == {
        "UO": 503, "URX": 503, "UT": 504, "FI": 503, "RL": 429, "NC": 503, "UH": 503, "NR": 404,
    }
