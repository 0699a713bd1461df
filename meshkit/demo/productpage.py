"""productpage's routes besides the page: Bookinfo's API, its sign-in, /static.

Istio's productpage (samples/bookinfo/src/productpage/productpage.py) serves
the page at /productpage, JSON for programs at /api/v1/products,
/api/v1/products/<id> (the book's details), .../<id>/reviews and
.../<id>/ratings, a sign-in form posted to /login and /logout. Bookinfo keeps
the user in its session; meshkit keeps it in a `user` cookie, the one
headers.end_user_from_cookie turns into `end-user` on the calls onward, so
signing in as jason in a browser is what Istio's `end-user: jason` routes
match. Bookinfo's /static holds its stylesheet and images; meshkit's page
needs neither (its style is inline), so /static answers 404 saying so.

Every function here decides an Answer; the service only sends it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

from meshkit.demo import bookinfo
from meshkit.demo.calls import CallResult
from meshkit.demo.headers import is_user_name
from meshkit.demo.page import render_notice, render_page
from meshkit.demo.paths import match_path
from meshkit.demo.spec import CallSpec

PAGE_PATH = "productpage"
"""Where sign-in and sign-out send the browser back to, relative to them, so
the page still works behind a path prefix (a JupyterHub proxy)."""
LOGIN_BODY_LIMIT = 4096
FORM_TYPE = "application/x-www-form-urlencoded"
LOGOUT_COOKIE = "user=; Path=/; Max-Age=0; HttpOnly; SameSite=Lax"
API_SERVICE = {"product": "details", "reviews": "reviews", "ratings": "ratings"}
API_FAILURE = {
    "details": bookinfo.DETAILS_UNAVAILABLE,
    "reviews": bookinfo.REVIEWS_UNAVAILABLE,
    "ratings": bookinfo.PRODUCT_RATINGS_UNAVAILABLE,
}
_API_TEMPLATES = (
    ("products", "/api/v1/products"),
    ("product", "/api/v1/products/{id}"),
    ("reviews", "/api/v1/products/{id}/reviews"),
    ("ratings", "/api/v1/products/{id}/ratings"),
)

OWN_PATHS = ("/api/v1/products[/{id}[/reviews|/ratings]]", "/login (POST)", "/logout", "/static/...")
"""productpage's own routes, as its 404 lists them beside the spec's paths."""


@dataclass(frozen=True)
class Route:
    """One of productpage's own routes, with the product id its path carries."""

    name: str
    product_id: str = "0"
    methods: tuple[str, ...] = ("GET", "HEAD")


@dataclass(frozen=True)
class Answer:
    """A whole response: what the service sends, decided without I/O."""

    status: int
    content_type: str
    body: bytes
    headers: tuple[tuple[str, str], ...] = field(default=())


def json_answer(status: int, body: Any, headers: tuple[tuple[str, str], ...] = ()) -> Answer:
    """JSON as every demo service answers it."""
    return Answer(status, "application/json", json.dumps(body).encode(), headers)


def html_answer(status: int, page: str, headers: tuple[tuple[str, str], ...] = ()) -> Answer:
    """A page for a browser."""
    return Answer(status, "text/html; charset=utf-8", page.encode(), headers)


def productpage_route(path: str) -> Route | None:
    """Which of productpage's own routes `path` is; None leaves it to the spec's paths."""
    if path == "/login":
        return Route("login", methods=("POST",))
    if path == "/logout":
        return Route("logout")
    if path == "/static" or path.startswith("/static/"):
        return Route("static")
    for name, template in _API_TEMPLATES:
        product_id = match_path((template,), path)
        if product_id is not None:
            return Route(name, product_id)
    return None


def page_calls(calls: tuple[CallSpec, ...]) -> tuple[CallSpec, ...]:
    """The calls the page makes: all but ratings, which only its API route calls
    (Bookinfo's page gets the stars through reviews)."""
    return tuple(call for call in calls if call.service != "ratings")


def route_calls(route: Route, calls: tuple[CallSpec, ...]) -> tuple[CallSpec, ...]:
    """The one call an API route makes (none for the others, or when the spec lacks it)."""
    service = API_SERVICE.get(route.name)
    return tuple(call for call in calls if call.service == service)


def api_answer(route: Route, results: tuple[CallResult, ...], calls: tuple[CallSpec, ...]) -> Answer:
    """An API route's JSON, as Bookinfo answers it.

    The callee's body is passed on as it came (Bookinfo returns details' and
    reviews' JSON unchanged); a failed call answers its status (500 when
    there was none) with Bookinfo's apology.
    """
    if route.name == "products":
        return json_answer(200, bookinfo.products())
    service = API_SERVICE[route.name]
    result = next((r for r in results if r.service == service), None)
    if result is None:
        known = ", ".join(call.service for call in calls) or "none"
        return json_answer(404, {"error": f"productpage makes no call to {service} "
                                          f"(its calls: {known}), so it cannot answer this route"})
    if result.ok:
        return json_answer(result.status or 200, result.body)
    return json_answer(result.status or 500, {"error": API_FAILURE[service]})


def login_user(body: bytes, content_type: str) -> str | None:
    """The user name a sign-in form carries, when it is one that may be signed in.

    Bookinfo takes any password, and so does this: the form's `passwd` is
    not read.
    """
    if content_type.split(";", 1)[0].strip().lower() != FORM_TYPE:
        return None
    try:
        form = parse_qs(body.decode("utf-8"), max_num_fields=8)
    except (UnicodeDecodeError, ValueError):
        return None
    names = form.get("username", [])
    return names[0] if len(names) == 1 and is_user_name(names[0]) else None


def login_answer(body: bytes, content_type: str, *, html: bool) -> Answer:
    """Sign in: set the `user` cookie and send the browser back to the page."""
    user = login_user(body, content_type)
    if user is None:
        reason = (f"Sign-in needs a form ({FORM_TYPE}) with one username of letters, digits, "
                  "'.', '_' or '-' (at most 64); any password will do.")
        if html:
            return html_answer(400, render_notice("Cannot sign in", reason, back=PAGE_PATH))
        return json_answer(400, {"error": reason})
    cookie = f"user={user}; Path=/; HttpOnly; SameSite=Lax"
    return Answer(302, "text/plain; charset=utf-8", b"", (("location", PAGE_PATH), ("set-cookie", cookie)))


def logout_answer() -> Answer:
    """Sign out: the cookie expires and the page shows the sign-in form again."""
    return Answer(302, "text/plain; charset=utf-8", b"", (("location", PAGE_PATH), ("set-cookie", LOGOUT_COOKIE)))


def static_answer(path: str) -> Answer:
    """/static: nothing to serve, said plainly."""
    return json_answer(404, {"error": f"meshkit's productpage serves no static files ({path}): "
                                      "its page has an inline stylesheet and no images or scripts"})


def method_answer(route: Route, method: str) -> Answer | None:
    """405 when the route does not take this method (Bookinfo's /login is POST only)."""
    if method in route.methods:
        return None
    allowed = ", ".join(route.methods)
    return json_answer(405, {"error": f"{method} is not allowed here; use {allowed}"}, (("allow", allowed),))


def page_answer(status: int, body: dict[str, Any], user: str | None, *, html: bool) -> Answer:
    """The page: HTML for a browser, today's JSON for everyone else.

    `Vary: Accept` tells caches the two are different answers to one URL.
    """
    vary = (("vary", "accept"),)
    if html:
        return html_answer(status, render_page(body, user), vary)
    return json_answer(status, body, vary)
