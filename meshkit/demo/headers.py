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
            if key == "user" and _USER_NAME.fullmatch(user):
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
