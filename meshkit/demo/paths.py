"""Path templates a demo service answers, and the product id they carry.

Bookinfo's services take the product id from the path (`/reviews/0`) and pass
it on to the next hop (`/ratings/0`). A template such as `/reviews/{id}` says
both things at once: which paths the service answers, and where the id sits.
The same placeholder in a downstream call's path is filled with that id.

Only `{id}` exists, and it matches ASCII digits only: Python's `str.isdigit`
accepts digits from other scripts ("٣") that no real service would route.
"""

from __future__ import annotations

ID_PLACEHOLDER = "{id}"
DEFAULT_ID = "0"
MAX_ID_DIGITS = 9
_ASCII_DIGITS = frozenset("0123456789")


def template_problem(template: str) -> str | None:
    """Why `template` is not a usable path template, or None when it is.

    Returned as text rather than raised so the spec parser can attach the
    field path of the template to its own error.
    """
    if not template.startswith("/"):
        return "must start with '/'"
    if any(ord(ch) < 0x21 or ord(ch) == 0x7F for ch in template):
        return "must not contain spaces or control characters"
    for segment in template.split("/"):
        if ("{" in segment or "}" in segment) and segment != ID_PLACEHOLDER:
            return f"segment {segment!r}: the only placeholder is a whole segment {ID_PLACEHOLDER}"
    return None


def _is_id(segment: str) -> bool:
    return 0 < len(segment) <= MAX_ID_DIGITS and all(ch in _ASCII_DIGITS for ch in segment)


def match_path(templates: tuple[str, ...], path: str) -> str | None:
    """The product id `path` carries under the first matching template.

    None means no template matches (the service answers 404). A template
    without `{id}` matches its path exactly and carries the default id 0, as
    Bookinfo's `/productpage` always shows product 0.
    """
    segments = path.split("/")
    for template in templates:
        wanted = template.split("/")
        if len(wanted) != len(segments):
            continue
        product_id = DEFAULT_ID
        for want, got in zip(wanted, segments):
            if want == ID_PLACEHOLDER and _is_id(got):
                product_id = str(int(got))
            elif want != got:
                break
        else:
            return product_id
    return None


def fill_path(template: str, product_id: str) -> str:
    """A downstream call's path with the request's product id filled in."""
    return template.replace(ID_PLACEHOLDER, product_id)
