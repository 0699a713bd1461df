"""Request and response edits a route asks for: header set/add/remove and uri rewrite.

Header edits come from two levels of a VirtualService rule, the route
(`http[].headers`) and the destination (`http[].route[].headers`). Envoy
applies the more specific level first and lets the less specific one win
(`most_specific_header_mutations_wins` defaults to false: "headers are
appended to requests in the following order: weighted cluster level
headers, route level headers ..."
https://www.envoyproxy.io/docs/envoy/latest/configuration/http/http_conn_man/headers#custom-request-response-headers),
so meshkit applies the destination's edits, then the route's. Within one
level: remove, then set (replacing every value), then add (appending), as
Istio's HeaderOperations describes them.

A uri rewrite replaces the matched prefix when the rule matched by prefix,
and the whole path otherwise; the query string is kept ("If the original URI
was matched based on prefix, the value provided in this field will replace
the corresponding matched prefix",
https://istio.io/latest/docs/reference/config/networking/virtual-service/#HTTPRewrite).
Like Envoy's prefix_rewrite, nothing else is changed: prefix `/old` with
rewrite `/` turns `/old/x` into `//x`; match `/old/` to get `/x`.
"""

from __future__ import annotations

from meshkit.core.rules import HeaderOps

Header = tuple[bytes, bytes]


class CompiledOps:
    """Header edits as bytes, ready to apply to a parsed header list."""

    __slots__ = ("remove", "set", "add", "touched", "authority")

    def __init__(self, ops: tuple[HeaderOps, ...]) -> None:
        remove: list[bytes] = []
        set_: dict[bytes, bytes] = {}
        add: list[Header] = []
        for level in ops:
            for name in level.remove:
                key = name.encode("ascii")
                remove.append(key)
                set_.pop(key, None)
                add = [h for h in add if h[0] != key]
            for name, value in level.set:
                key = name.encode("ascii")
                set_[key] = value.encode("latin-1")
                add = [h for h in add if h[0] != key]
            for name, value in level.add:
                add.append((name.encode("ascii"), value.encode("latin-1")))
        # The Host header is the request's authority, which the sidecar writes
        # itself: setting it changes the authority; adding or removing it does nothing.
        self.authority = set_.pop(b"host", None)
        self.remove = frozenset(remove) - {b"host"}
        self.set = set_
        self.add = tuple(h for h in add if h[0] != b"host")
        # Every name whose existing values go away (removed or replaced).
        self.touched = self.remove | frozenset(set_)

    def apply(self, headers: list[Header]) -> list[Header]:
        """A new header list with the edits made; names compared case-insensitively."""
        touched = self.touched
        kept = [h for h in headers if h[0].lower() not in touched] if touched else list(headers)
        kept.extend(self.set.items())
        kept.extend(self.add)
        return kept


def compile_ops(*levels: HeaderOps) -> CompiledOps | None:
    """The edits of these levels, applied in order; None when there are none."""
    chosen = tuple(level for level in levels if not level.empty)
    return CompiledOps(chosen) if chosen else None


def rewrite_path(target: bytes, replacement: bytes, prefix_length: int | None) -> bytes:
    """The request target after a uri rewrite.

    `prefix_length` is the length of the prefix the rule matched, or None
    when it did not match by prefix (then the whole path is replaced).
    """
    path, mark, query = target.partition(b"?")
    new_path = replacement + path[prefix_length:] if prefix_length is not None else replacement
    return new_path + mark + query
