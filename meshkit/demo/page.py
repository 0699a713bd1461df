"""Bookinfo's product page as HTML, rendered from productpage's JSON fields.

What a learner looks for in Istio's tasks is all here: the book, its
details, two reviews with black stars (reviews v2), red stars (v3) or none
(v1), Bookinfo's apologies when a service fails, "Reviews served by:" naming
the instance that answered, and the signed-in user or the sign-in form.
One static page: an inline stylesheet, no scripts, no files to fetch.

Every value taken from the fields is escaped: they come from other
services' answers. The book's description is HTML in Bookinfo's data; only
<b>, <i> and an http(s) link survive from it, the rest is shown as text.
"""

from __future__ import annotations

import re
from html import escape
from html.parser import HTMLParser
from typing import Any

_COLOR = re.compile(r"[a-z]{1,20}")
MAX_STARS = 5
DETAIL_ROWS = (
    ("Author", "author"), ("Year", "year"), ("Type", "type"), ("Pages", "pages"),
    ("Publisher", "publisher"), ("Language", "language"), ("ISBN-10", "ISBN-10"), ("ISBN-13", "ISBN-13"),
)
_STYLE = """
body{font-family:system-ui,sans-serif;margin:0;color:#1f2937;background:#fff}
nav{display:flex;justify-content:space-between;align-items:center;background:#1f2937;color:#f9fafb;
padding:.6rem 1.5rem;gap:1rem;flex-wrap:wrap}
nav .brand{font-size:1.2rem;font-weight:600}
nav a{color:#bfdbfe}
nav input{width:8rem}
main{max-width:60rem;margin:0 auto;padding:1rem 1.5rem}
h1{color:#1e3a8a;font-size:2.4rem}
table{border-collapse:collapse}
th,td{text-align:left;padding:.3rem 1rem .3rem 0;border-bottom:1px solid #e5e7eb}
.reviews{display:flex;gap:2rem;flex-wrap:wrap}
.review{flex:1 1 20rem;background:#eff6ff;padding:1rem 1.5rem;border-radius:.5rem}
.review blockquote{margin:0;font-size:1.15rem;font-weight:600}
.stars{font-size:1.4rem;letter-spacing:.1rem}
.error{color:#dc2626;font-size:1.3rem}
.apology,.rating-error{color:#dc2626}
.served-by{font-family:monospace;color:#4b5563}
footer{color:#6b7280;font-size:.85rem;margin-top:2rem}
"""


class _Description(HTMLParser):
    """Bookinfo's descriptionHtml with only harmless markup kept."""

    KEPT = frozenset({"b", "i"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.open: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        href = dict(attrs).get("href") or ""
        if tag == "a" and href.startswith(("https://", "http://")):
            self.parts.append(f'<a href="{escape(href)}" rel="noreferrer">')
        elif tag in self.KEPT:
            self.parts.append(f"<{tag}>")
        else:
            return
        self.open.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if self.open and self.open[-1] == tag:
            self.parts.append(f"</{self.open.pop()}>")

    def handle_data(self, data: str) -> None:
        self.parts.append(escape(data))

    def result(self) -> str:
        return "".join(self.parts) + "".join(f"</{tag}>" for tag in reversed(self.open))


def description_html(source: str) -> str:
    """The description's text, with <b>, <i> and http(s) links kept and closed."""
    parser = _Description()
    parser.feed(source)
    parser.close()
    return parser.result()


def _text(value: object) -> str:
    return escape(value if isinstance(value, str) else str(value))


def stars_html(rating: object) -> str:
    """One review's rating: stars in their colour, Bookinfo's apology, or nothing (v1)."""
    if not isinstance(rating, dict):
        return ""
    stars = rating.get("stars")
    if isinstance(stars, int) and not isinstance(stars, bool):
        count = max(0, min(MAX_STARS, stars))
        color = rating.get("color")
        color = color if isinstance(color, str) and _COLOR.fullmatch(color) else "black"
        return (f'<p class="stars" data-color="{color}" style="color:{color}" '
                f'aria-label="{count} of {MAX_STARS} stars">'
                f'{"&#9733;" * count}{"&#9734;" * (MAX_STARS - count)}</p>')
    if "error" in rating:
        return f'<p class="rating-error">{_text(rating["error"])}</p>'
    return ""


def _details_html(details: object) -> str:
    if not isinstance(details, dict) or "error" in details:
        error = details.get("error") if isinstance(details, dict) else None
        apology = f'<p class="apology">{_text(error)}</p>' if error else ""
        return f'<section id="details"><p class="error">Error fetching product details</p>{apology}</section>'
    rows = "".join(f"<tr><th>{escape(label)}</th><td>{_text(details[key])}</td></tr>"
                   for label, key in DETAIL_ROWS if key in details)
    return f'<section id="details"><h2>Book Details</h2><table>{rows}</table></section>'


def _reviews_html(reviews: object) -> str:
    if not isinstance(reviews, dict) or "error" in reviews or not isinstance(reviews.get("reviews"), list):
        error = reviews.get("error") if isinstance(reviews, dict) else None
        apology = f'<p class="apology">{_text(error)}</p>' if error else ""
        return f'<section id="reviews"><p class="error">Error fetching product reviews</p>{apology}</section>'
    items = "".join(
        f'<article class="review">{stars_html(review.get("rating"))}'
        f'<blockquote>&ldquo;{_text(review.get("text", ""))}&rdquo;</blockquote>'
        f'<p class="reviewer">{_text(review.get("reviewer", ""))}</p></article>'
        for review in reviews["reviews"] if isinstance(review, dict)
    )
    instance = reviews.get("instance")
    served = f'<p class="served-by">Reviews served by: {_text(instance)}</p>' if isinstance(instance, str) else ""
    return f'<section id="reviews"><h2>Book Reviews</h2><div class="reviews">{items}</div>{served}</section>'


def _user_html(user: str | None) -> str:
    if user:
        return (f'<span class="user">Signed in as <b>{_text(user)}</b></span> '
                '<a href="logout">Sign out</a>')
    return ('<form class="login" method="post" action="login">'
            '<label>User <input name="username" required autocomplete="username"></label> '
            '<label>Password <input name="passwd" type="password" autocomplete="current-password"></label> '
            '<button type="submit">Sign in</button></form>')


def _document(title: str, nav: str, main: str) -> str:
    return ('<!doctype html><html lang="en"><head><meta charset="utf-8">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{title}</title><style>{_STYLE}</style></head><body>"
            f'<nav><span class="brand">BookInfo Sample</span>{nav}</nav><main>{main}</main></body></html>')


def render_page(fields: dict[str, Any], user: str | None) -> str:
    """The whole page from productpage's JSON body and the signed-in user (None: nobody)."""
    product = fields.get("product")
    product = product if isinstance(product, dict) else {}
    description = product.get("descriptionHtml")
    instance = fields.get("instance")
    served = f"Page served by {_text(instance)}. " if isinstance(instance, str) else ""
    main = (f'<h1>{_text(product.get("title", ""))}</h1>'
            f'<p class="description">{description_html(description) if isinstance(description, str) else ""}</p>'
            f'{_details_html(fields.get("details"))}{_reviews_html(fields.get("reviews"))}'
            f'<footer>{served}The same page as JSON: ask without <code>Accept: text/html</code>; '
            'the API is at <a href="api/v1/products">api/v1/products</a>.</footer>')
    return _document("Simple Bookstore App", _user_html(user), main)


def render_notice(title: str, message: str, *, back: str) -> str:
    """A short page saying what went wrong (a refused sign-in), with a way back."""
    main = f'<h1>{_text(title)}</h1><p>{_text(message)}</p><p><a href="{escape(back)}">Back to the book</a></p>'
    return _document(_text(title), "", main)
