"""Which request headers a demo service copies onto its downstream calls.

A mesh can only stitch one request's hops into one trace, and route a user's
whole request the same way (Istio's `end-user: jason` rules match at reviews
and ratings, not only at productpage), if the application passes these headers
on. Sidecars cannot do it: they do not know which outbound call belongs to
which inbound request.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

_USER_NAME = re.compile(r"[A-Za-z0-9._-]{1,64}")

FORWARDED_HEADERS: frozenset[str] = frozenset({
    "x-request-id",
    "x-ot-span-context",
    "x-datadog-trace-id",
    "x-datadog-parent-id",
    "x-datadog-sampling-priority",
    "traceparent",
    "tracestate",
    "x-cloud-trace-context",
    "grpc-trace-bin",
    "x-b3-traceid",
    "x-b3-spanid",
    "x-b3-parentspanid",
    "x-b3-sampled",
    "x-b3-flags",
    "b3",
    "sw8",
    "end-user",
    "user-agent",
    "cookie",
    "authorization",
    "jwt",
})
"""The headers Bookinfo propagates (istio/istio samples/bookinfo: productpage.py
`getForwardHeaders` and the reviews service's `headers_to_propagate`): request
id, Lightstep, Datadog, W3C trace context, Cloud Trace, gRPC binary trace,
Zipkin B3, SkyWalking, and the application's end-user, user-agent, cookie,
authorization and jwt. `b3`, the single-header form of B3 that Zipkin defines
beside the x-b3-* family, is added so Zipkin's compact form survives too."""


def forwarded_headers(incoming: Iterable[tuple[bytes, bytes]]) -> list[tuple[str, str]]:
    """The (name, value) pairs of an ASGI request head that go downstream.

    Names arrive lower-cased from the server; repeated headers (two cookies)
    are kept in order. Latin-1 maps every byte, so no value can fail to decode.
    """
    picked: list[tuple[str, str]] = []
    for raw_name, raw_value in incoming:
        name = raw_name.decode("latin-1").lower()
        if name in FORWARDED_HEADERS:
            picked.append((name, raw_value.decode("latin-1")))
    return picked


def is_user_name(name: str) -> bool:
    """A name that may become a `user` cookie and an `end-user` header.

    Letters, digits, '.', '_', '-' (at most 64): nothing that could end the
    cookie, add a header, or be read differently by a routing rule.
    """
    return _USER_NAME.fullmatch(name) is not None


def end_user_from_cookie(headers: list[tuple[str, str]]) -> str | None:
    """The signed-in user a `user=<name>` cookie names, as Bookinfo's login sets it.

    Only a plain name is taken (letters, digits, '.', '_', '-'): the value
    becomes a header that routing rules match, so nothing else gets through.
    """
    for name, value in headers:
        if name != "cookie":
            continue
        for pair in value.split(";"):
            key, _, user = pair.strip().partition("=")
            if key == "user" and is_user_name(user):
                return user
    return None


def with_end_user(headers: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """Add `end-user` from the login cookie when the request has none.

    Bookinfo's productpage does this after "Sign in": the header, not the
    cookie, is what Istio's routing tasks match (`end-user: jason`).
    """
    if any(name == "end-user" for name, _ in headers):
        return headers
    user = end_user_from_cookie(headers)
    return headers if user is None else [*headers, ("end-user", user)]


def _quality(params: list[str]) -> float | None:
    """The q of one Accept element: 1 when absent, None when unreadable."""
    for param in params:
        key, _, value = param.strip().partition("=")
        if key.strip().lower() == "q":
            try:
                q = float(value.strip())
            except ValueError:
                return None
            return q if 0.0 <= q <= 1.0 else None
    return 1.0


def _accepted(accept: str, media_type: str) -> float:
    """How much `accept` wants `media_type`: the q of its most specific range.

    RFC 9110 12.5.1: `text/html` beats `text/*` beats `*/*`. An element whose
    q cannot be read is skipped, as if it were not there.
    """
    kind = media_type.split("/", 1)[0]
    best_rank, best_q = -1, 0.0
    for element in accept.split(","):
        range_, *params = element.split(";")
        range_ = range_.strip().lower()
        rank = {media_type: 2, f"{kind}/*": 1, "*/*": 0}.get(range_, -1)
        q = _quality(params)
        if rank > best_rank and q is not None:
            best_rank, best_q = rank, q
    return best_q


def prefers_html(accept: str | None) -> bool:
    """Whether a client asked for the page (HTML) rather than the JSON.

    Only a client that wants text/html more than application/json gets the
    page: a browser (`text/html,...,*/*;q=0.8`). No Accept, `*/*` (curl,
    httpx, meshkit's load generator, lab.call) and anything undecided keep
    the JSON that programs and the lessons read.
    """
    if not accept:
        return False
    html = _accepted(accept, "text/html")
    return html > 0.0 and html > _accepted(accept, "application/json")


def header_value(incoming: Iterable[tuple[bytes, bytes]], name: str) -> str | None:
    """The first value of header `name` (lower-case) in an ASGI request head."""
    wanted = name.encode("latin-1")
    for raw_name, raw_value in incoming:
        if raw_name.lower() == wanted:
            return raw_value.decode("latin-1")
    return None
