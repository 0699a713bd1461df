"""A small explicit router: (method, path pattern) -> handler.

Patterns are literal segments and `{name}` captures, one segment each; that is
all the admin API needs, and it keeps the whole table readable in one place
(see api.py). Matching is a pure function so it is tested without a server.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Literal
from urllib.parse import unquote

from meshkit.control.asgi import HttpError, Request, Response

Handler = Callable[[Request], Awaitable[Response]]
Auth = Literal["none", "admin", "node"]


@dataclass(frozen=True)
class Route:
    """One entry of the table; `auth` says which token the route accepts."""

    method: str
    pattern: tuple[str, ...]
    handler: Handler
    auth: Auth


def split_pattern(pattern: str) -> tuple[str, ...]:
    return tuple(pattern.strip("/").split("/"))


def match_path(pattern: tuple[str, ...], raw_path: str) -> dict[str, str] | None:
    """The captures if `raw_path` fits `pattern`, else None.

    Segments are split on the raw path and decoded one by one, so an encoded
    slash (%2F) stays inside its segment instead of adding one.
    """
    segments = raw_path.strip("/").split("/")
    if len(segments) != len(pattern):
        return None
    params: dict[str, str] = {}
    for want, raw in zip(pattern, segments):
        got = unquote(raw, errors="strict") if "%" in raw else raw
        if want.startswith("{") and want.endswith("}"):
            if not got:
                return None
            params[want[1:-1]] = got
        elif want != got:
            return None
    return params


class Router:
    """Finds the route for a request: 404 for an unknown path, 405 for a known path and wrong method."""

    def __init__(self) -> None:
        self.routes: list[Route] = []

    def add(self, method: str, pattern: str, handler: Handler, auth: Auth) -> None:
        self.routes.append(Route(method, split_pattern(pattern), handler, auth))

    def resolve(self, method: str, raw_path: str) -> tuple[Route, dict[str, str]]:
        allowed: list[str] = []
        for route in self.routes:
            try:
                params = match_path(route.pattern, raw_path)
            except UnicodeDecodeError:
                raise HttpError(400, f"path {raw_path!r} is not valid UTF-8 after percent-decoding") from None
            if params is None:
                continue
            if route.method == method:
                return route, params
            allowed.append(route.method)
        if allowed:
            raise HttpError(405, f"{method} is not allowed on {raw_path}; use {', '.join(sorted(set(allowed)))}")
        raise HttpError(404, f"no such endpoint: {method} {raw_path}")
