"""Responses the mesh writes itself, and the Envoy response flags they carry.

When the sidecar answers instead of an upstream, the learner should be able
to tell why from the response alone: the status, the header
`x-meshkit-response-flags` with Envoy's letters, and one plain sentence in
the body. Every flag the sidecar can produce is one row of `FLAGS`; a new
feature (timeouts, circuit breaking, faults, rate limits) adds its row and
calls `render_local_reply` like the others.
"""

from __future__ import annotations

from dataclasses import dataclass
from http import HTTPStatus

FLAGS_HEADER = b"x-meshkit-response-flags"
NO_FLAGS = "-"


@dataclass(frozen=True, slots=True)
class Flag:
    """One of Envoy's response flags: the letters, the status and what it means."""

    letters: str
    status: int
    meaning: str


FLAGS: dict[str, Flag] = {
    flag.letters: flag
    for flag in (
        Flag("NR", 404, "no route: no service or route rule in the mesh matches this request"),
        Flag("UH", 503, "no healthy upstream: the destination has no endpoint to send to (none registered, or all ejected)"),
        Flag("UF", 503, "upstream connection failure: could not connect to the endpoint"),
        Flag("UC", 503, "upstream connection termination: the endpoint closed the connection before answering"),
        Flag("UPE", 502, "upstream protocol error: the endpoint's answer was not valid HTTP/1.1"),
        Flag("NC", 503, "no cluster: the sidecar has no upstream cluster for this request (no configuration yet, or a subset no DestinationRule defines)"),
        Flag("UO", 503, "upstream overflow: a circuit breaker of the destination's DestinationRule refused the request"),
        Flag("URX", 503, "upstream retry limit exceeded: every attempt the retry policy allows has failed"),
        Flag("UT", 504, "upstream request timeout: no complete answer within the route's timeout"),
        Flag("DI", 0, "delay injected: a fault rule held the request for a while before sending it"),
        Flag("FI", 503, "fault injected: a fault rule answered instead of the destination"),
        Flag("RL", 429, "rate limited: the destination's local rate limit had no token left for this request"),
        # Envoy sets no flag for an RBAC denial (its body is "RBAC: access denied" and the
        # response code details name the policy); meshkit marks it so the learner sees why.
        Flag("RBAC", 403, "access denied: an AuthorizationPolicy of the destination refused this request"),
        Flag("DPE", 400, "downstream protocol error: the request is not valid HTTP/1.1"),
        Flag("DC", 0, "downstream connection termination: the client went away before the response was complete"),
        Flag("SI", 408, "stream idle timeout: the request body stopped arriving for longer than the sidecar's stream idle timeout"),
    )
}


def reason_phrase(status: int) -> bytes:
    """The standard reason phrase, or a neutral one for unregistered codes."""
    try:
        return HTTPStatus(status).phrase.encode("ascii")
    except ValueError:
        return b"Status"


def render_response(status: int, headers: list[tuple[bytes, bytes]], body: bytes, close: bool, head_only: bool = False) -> bytes:
    """A complete HTTP/1.1 response with a Content-Length body.

    `head_only` answers a HEAD request: the same head, no body bytes.
    """
    lines = [b"HTTP/1.1 %d %s\r\n" % (status, reason_phrase(status))]
    for name, value in headers:
        lines.append(b"%s: %s\r\n" % (name, value))
    lines.append(b"content-length: %d\r\n" % len(body))
    if close:
        lines.append(b"connection: close\r\n")
    lines.append(b"\r\n")
    if not head_only:
        lines.append(body)
    return b"".join(lines)


def render_local_reply(
    letters: str,
    detail: str,
    *,
    close: bool,
    status: int | None = None,
    extra_headers: list[tuple[bytes, bytes]] | None = None,
    head_only: bool = False,
) -> bytes:
    """The mesh's own answer for flag `letters`, explained with `detail`.

    `status` overrides the flag's usual status where the flag covers several
    (a rejected request head is 400, 431, 501 or 505, all flagged DPE; an
    injected abort answers the status the fault names). `letters` may join
    several flags with ',' as Envoy's access log does ("UF,URX": the last
    attempt could not connect and no retry was left); the first decides the
    status.
    """
    main = letters.split(",")[0]
    flag = FLAGS[main]
    code = status if status is not None else flag.status
    also = "".join(f"\nalso {other}: {FLAGS[other].meaning}." for other in letters.split(",")[1:] if other in FLAGS)
    body = f"meshkit sidecar: {code} {letters} ({flag.meaning}).{also}\n{detail}\n".encode("utf-8", "replace")
    headers = [(b"content-type", b"text/plain; charset=utf-8"), (FLAGS_HEADER, letters.encode("ascii"))]
    if extra_headers:
        headers.extend(extra_headers)
    return render_response(code, headers, body, close, head_only)
