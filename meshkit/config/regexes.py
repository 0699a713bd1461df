"""Regexes in StringMatch: Python compiles them, RE2 must be able to.

Istio hands `regex` matches to Envoy, which runs Google's RE2: linear time,
no backtracking, and so no backreferences, lookaround, atomic groups,
possessive quantifiers or conditionals (https://github.com/google/re2/wiki/Syntax).
meshkit matches with Python's `re`, which has all of those. A pattern that
works here but that Istio would reject (or read differently) teaches the
wrong thing, so such patterns are refused with the RE2 reason.

The check walks the tree from Python's own regex parser (`re._parser`, the
parser `re.compile` itself uses) rather than scanning the text, so escapes
and character classes are read exactly as `re` reads them: `[(?=]` is a
class, not a lookahead.

Envoy matches a regex against the whole value (RE2 full match), so meshkit
uses `re.fullmatch`; docs/config.md says so.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from re import _constants as sre  # type: ignore[attr-defined]
from re import _parser as sre_parse  # type: ignore[attr-defined]
from typing import Any

_RE2_LACKS = {
    sre.GROUPREF: "backreferences such as \\1 or (?P=name)",
    sre.GROUPREF_EXISTS: "conditionals such as (?(1)a|b)",
    sre.ASSERT: "lookahead and lookbehind such as (?=...) or (?<=...)",
    sre.ASSERT_NOT: "negative lookahead and lookbehind such as (?!...) or (?<!...)",
    sre.ATOMIC_GROUP: "atomic groups (?>...)",
    sre.POSSESSIVE_REPEAT: "possessive quantifiers such as a*+",
}
_RE2_FLAGS = {
    sre.SRE_FLAG_VERBOSE: "the verbose flag (?x)",
    sre.SRE_FLAG_ASCII: "the ASCII flag (?a)",
}


def regex_problem(pattern: str) -> str | None:
    """Why `pattern` cannot be used as an Istio regex match, or None."""
    try:
        re.compile(pattern)
    except re.error as exc:
        return f"regex {pattern!r} does not compile: {exc}"
    tree = sre_parse.parse(pattern)
    for flag, what in _RE2_FLAGS.items():
        if tree.state.flags & flag:
            return _re2_reason(pattern, what)
    for op, value in _walk(tree):
        if op in _RE2_LACKS:
            return _re2_reason(pattern, _RE2_LACKS[op])
        if op == sre.AT and value == sre.AT_END_STRING:
            return _re2_reason(pattern, "\\Z (write $, or nothing: the whole value must match anyway)")
        if op == sre.SUBPATTERN:
            added_flags = value[1]
            for flag, what in _RE2_FLAGS.items():
                if added_flags & flag:
                    return _re2_reason(pattern, what)
    return None


def _re2_reason(pattern: str, what: str) -> str:
    return (
        f"regex {pattern!r} uses {what}, which RE2 does not have; Istio's proxy (Envoy) "
        "matches with RE2, so meshkit refuses it too"
    )


def _walk(tree: Any) -> Iterator[tuple[Any, Any]]:
    """Every (opcode, argument) in a parsed pattern, nested groups included."""
    for op, value in tree:
        yield op, value
        yield from _walk_children(value)


def _walk_children(value: Any) -> Iterator[tuple[Any, Any]]:
    if isinstance(value, sre_parse.SubPattern):
        yield from _walk(value)
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from _walk_children(item)
