"""The request path that authorization judges, and that the app then receives.

A path policy is only as good as the agreement between the proxy and the app
about what a path means: if `/public/..%2fadmin` passes a DENY on `/admin*`
and the app resolves it to `/admin`, the policy was bypassed (CVE-2021-31920,
CVE-2021-39156). So the sidecar normalises the path once, judges the
normalised path, and forwards that same path; a path it cannot normalise
unambiguously is refused with 400. Istio does the same: "The normalized
request will be used for both the evaluation of authorization policies and the
request that is ultimately sent to the backend server"
(https://istio.io/latest/docs/reference/config/security/normalization/).

Which normalisation: Istio's meshConfig.pathNormalization defaults to BASE
(Envoy's normalize_path, RFC 3986 plus backslash to slash), which leaves
`//admin` and `/%2fadmin` alone: Envoy's path_with_escaped_slashes_action
defaults to KEEP_UNCHANGED. Istio's security best practices call
DECODE_AND_MERGE_SLASHES "the strictest setting when you allow all traffic by
default" and recommend it
(https://istio.io/latest/docs/ops/best-practices/security/#customize-your-system-on-path-normalization);
it is Envoy's normalize_path + merge_slashes + UNESCAPE_AND_FORWARD for %2F
and %5C. meshkit always applies that strictest setting, in Istio's order:

1. decode %2F and %5C (either case) to `/` and `\\`;
2. RFC 3986 normalisation (6.2.2): decode percent-encoded unreserved
   characters (ALPHA, DIGIT, `-`, `.`, `_`, `~`), write every other escape
   with upper-case hex, turn `\\` into `/`, and remove dot segments (5.2.4);
3. merge runs of slashes into one.

Decoding happens once (`%252e` stays `%252E`), as Istio's "no double
decoding". On top of that, these are refused with 400 rather than rewritten:

- `#` anywhere: a fragment is never part of a request target (RFC 9112 3.2);
  Envoy rejects it by default since 1.19.1 (runtime guard
  http_reject_path_with_fragment), after Istio's fragment bypass
  (GHSA-hqxw-mm44-gc4r);
- `%00`: Istio always rejects it with 400;
- `;` in the path: Tomcat, Jetty and Spring drop `;params` from path
  segments, so `/admin;x=1` reaches them as `/admin` while a proxy matching
  an exact path sees something else; Envoy keeps `;` as part of the segment.
  Refusing it is meshkit's choice, stricter than Istio;
- a `%` not followed by two hex digits, and any byte outside printable ASCII
  (controls, space, non-ASCII), which have no single reading;
- a target that is not origin-form (`/...`) after backslashes are turned
  into slashes, except `*` (OPTIONS *, RFC 9112 3.2.4).

The query is passed through untouched (Istio's policies ignore it) and never
decides a path match.
"""

from __future__ import annotations

import re
from typing import NamedTuple

from meshkit.core.framing import Rejection

_PRINTABLE = re.compile(rb"[\x21-\x7e]*")
_ESCAPE = re.compile(rb"%(..)?", re.S)
_HEX = re.compile(rb"[0-9A-Fa-f]{2}")
_UNRESERVED = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
_DECODED_SLASHES = frozenset(b"/\\")
_SLASHES = re.compile(r"/{2,}")
# A path already in normal form, as nearly every request's is: segments of
# unreserved characters, `:`, `@` and the sub-delims other than `;` (nothing
# to decode, refuse or rewrite), no empty segment, at most a trailing `/`. A
# path with `/.` anywhere (a dot segment, or merely a name starting with a
# dot) takes the general route.
_NORMAL_PATH = re.compile(rb"(?:/[A-Za-z0-9\-._~!$&'()*+,=:@]+)*/?")
# A query that passes as it is: printable ASCII without `#`.
_PLAIN_QUERY = re.compile(rb"[\x21\x22\x24-\x7e]*")


class NormalizedPath(NamedTuple):
    """`path` is what policies match (no query); `target` is what the sidecar forwards."""

    path: str
    target: bytes


# Targets normalised lately and their answers: a service is asked for the
# same few paths again and again, and the answer depends on the target's bytes
# alone. Refusals are not kept. When full it starts over, so it follows the
# paths in use now and never grows past this many.
MAX_REMEMBERED_TARGETS = 1024
_remembered: dict[bytes, NormalizedPath] = {}


def normalize_target(target: bytes) -> NormalizedPath | Rejection:
    """The normalised form of an origin-form request target, or the 400 that refuses it."""
    known = _remembered.get(target)
    if known is not None:
        return known
    raw_path, _, query = target.partition(b"?")
    if raw_path[:1] == b"/" and b"/." not in raw_path and _NORMAL_PATH.fullmatch(raw_path) and _PLAIN_QUERY.fullmatch(query):
        answer: NormalizedPath | Rejection = NormalizedPath(raw_path.decode("ascii"), target)
    else:
        answer = _normalize_any_target(target)
    if not isinstance(answer, Rejection):
        if len(_remembered) >= MAX_REMEMBERED_TARGETS:
            _remembered.clear()
        _remembered[target] = answer
    return answer


def _normalize_any_target(target: bytes) -> NormalizedPath | Rejection:
    """normalize_target's general route, for every target."""
    if not _PRINTABLE.fullmatch(target):
        return Rejection(400, "request path holds a control, space or non-ASCII byte")
    if b"#" in target:
        return Rejection(400, "request path holds a fragment ('#'), which is never sent to a server (RFC 9112 3.2)")
    raw_path, question, query = target.partition(b"?")
    if target == b"*":
        return NormalizedPath("*", target)
    if b";" in raw_path:
        return Rejection(400, "request path holds ';' (path parameters), which servers disagree about; meshkit refuses it")
    decoded = _decode_once(raw_path)
    if isinstance(decoded, Rejection):
        return decoded
    path = decoded.replace("\\", "/")
    if not path.startswith("/"):
        return Rejection(400, "request path must start with '/'")
    path = _SLASHES.sub("/", remove_dot_segments(path))
    return NormalizedPath(path, path.encode("ascii") + question + query)


def remove_dot_segments(path: str) -> str:
    """RFC 3986 5.2.4: resolve `.` and `..` segments; `..` never climbs above the root."""
    output: list[str] = []
    segments = path.split("/")[1:]
    for index, segment in enumerate(segments):
        last = index == len(segments) - 1
        if segment == ".":
            if last:
                output.append("")
        elif segment == "..":
            if output:
                output.pop()
            if last:
                output.append("")
        else:
            output.append(segment)
    return "/" + "/".join(output)


def _decode_once(raw_path: bytes) -> str | Rejection:
    """Decode escapes of unreserved characters, `/` and `\\`; keep the rest, hex in upper case."""
    pieces: list[bytes] = []
    position = 0
    for escape in _ESCAPE.finditer(raw_path):
        hex_digits = escape.group(1)
        if hex_digits is None or not _HEX.fullmatch(hex_digits):
            return Rejection(400, "request path holds a '%' that is not followed by two hex digits")
        value = int(hex_digits, 16)
        if value == 0:
            return Rejection(400, "request path holds %00 (NUL), which Istio always refuses")
        pieces.append(raw_path[position : escape.start()])
        if value in _UNRESERVED or value in _DECODED_SLASHES:
            pieces.append(bytes([value]))
        else:
            pieces.append(b"%" + hex_digits.upper())
        position = escape.end()
    pieces.append(raw_path[position:])
    return b"".join(pieces).decode("ascii")
