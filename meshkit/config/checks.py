"""Small value checks shared by the rules of several kinds.

Each returns the reason a value is unusable, or None. Header names and values
are checked here because they end up on the wire: a CR or LF in a configured
header would let config split a request (HARDENING.md, "Headers the mesh owns").
"""

from __future__ import annotations

import re

_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def header_name_problem(name: str, lowercase: bool = False) -> str | None:
    """Why `name` cannot be an HTTP/1.1 header name (RFC 9110 token), or None.

    Istio requires header names in matches to be lowercase; Envoy compares
    them lowercased, so `End-User` would silently never match there.
    """
    if not _TOKEN.fullmatch(name):
        return f"{name!r} is not a header name: use letters, digits and '-', such as end-user"
    if lowercase and name != name.lower():
        return f"header names in matches must be lowercase: write {name.lower()!r}"
    return None


def header_value_problem(value: str) -> str | None:
    """Why `value` cannot be sent as a header value, or None."""
    if _CONTROL.search(value.replace("\t", " ")):
        return "header values must not contain control characters such as CR, LF or NUL"
    return None


def pattern_problem(value: str) -> str | None:
    """Why `value` is not an Istio policy string match, or None.

    AuthorizationPolicy strings match exactly, by prefix (`abc*`), by suffix
    (`*abc`), or by presence (`*`)
    (https://istio.io/latest/docs/reference/config/security/authorization-policy/#Source).
    """
    if not value:
        return "must not be empty"
    if _CONTROL.search(value):
        return "must not contain control characters such as CR, LF or NUL"
    stars = value.count("*")
    if stars and not (value == "*" or (stars == 1 and (value.startswith("*") or value.endswith("*")))):
        return (
            f"{value!r}: '*' may stand alone (any value), at the end (prefix match) "
            "or at the start (suffix match), nowhere else"
        )
    return None


def port_text_problem(value: str) -> str | None:
    """Why `value` is not a port number written as a string ('9080'), or None."""
    if not (value.isascii() and value.isdigit()) or not 1 <= int(value) <= 65535:
        return f"{value!r} is not a port: write a number from 1 to 65535 in quotes, such as '9080'"
    return None
