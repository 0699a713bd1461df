"""How each kind of demo service turns its calls' results into a response.

A role is a pure function (spec, product id, call results) -> (status,
fields). Bookinfo's services degrade the way the real ones do (a page with
an apology, status 200); a generic service needs every call to succeed and
answers 502 naming the call that did not, so a failing dependency shows up
in the caller's success rate. `outgoing_headers` is the one header
difference between roles: productpage signs the user in from a cookie.
"""

from __future__ import annotations

from typing import Any

from meshkit.demo import bookinfo
from meshkit.demo.calls import CallResult
from meshkit.demo.headers import forwarded_headers, with_end_user
from meshkit.demo.spec import AppSpec


def _generic(results: tuple[CallResult, ...]) -> tuple[int, dict[str, Any]]:
    fields: dict[str, Any] = {}
    failures: list[str] = []
    for result in results:
        if result.ok:
            fields[result.service] = result.body
        else:
            fields[result.service] = {"error": result.failure()}
            failures.append(f"{result.service}: {result.failure()}")
    if failures:
        fields["error"] = "downstream call failed: " + "; ".join(failures)
        return 502, fields
    return 200, fields


def outgoing_headers(spec: AppSpec, incoming: list[tuple[bytes, bytes]]) -> list[tuple[str, str]]:
    """The headers this service's downstream calls carry.

    productpage also turns Bookinfo's login cookie into `end-user`, as the
    real one does with its session.
    """
    headers = forwarded_headers(incoming)
    return with_end_user(headers) if spec.role == "productpage" else headers


def compose(spec: AppSpec, product_id: str, results: tuple[CallResult, ...]) -> tuple[int, dict[str, Any]]:
    """Status and app-specific body fields for one request."""
    if spec.role == "productpage":
        return 200, bookinfo.productpage_fields(product_id, results)
    if spec.role == "details":
        return 200, bookinfo.details_fields(product_id)
    if spec.role == "reviews":
        return 200, bookinfo.reviews_fields(product_id, spec.star_color, results)
    if spec.role == "ratings":
        return 200, bookinfo.ratings_fields(product_id)
    return _generic(results)
