"""Bookinfo's response content, as Istio's sample services produce it.

The texts are Bookinfo's own (istio/istio samples/bookinfo/src), because
Istio's tasks tell learners what to look for: black or red stars, "Ratings
service is currently unavailable", "Sorry, product reviews are currently
unavailable for this book.". Each function is pure: product id and the
results of the downstream calls in, response fields out.
"""

from __future__ import annotations

from typing import Any

from meshkit.demo.calls import CallResult

DETAILS_UNAVAILABLE = "Sorry, product details are currently unavailable for this book."
REVIEWS_UNAVAILABLE = "Sorry, product reviews are currently unavailable for this book."
RATINGS_UNAVAILABLE = "Ratings service is currently unavailable"
PRODUCT_RATINGS_UNAVAILABLE = "Sorry, product ratings are currently unavailable for this book."

PRODUCT: dict[str, Any] = {
    "title": "The Comedy of Errors",
    "descriptionHtml": (
        '<a href="https://en.wikipedia.org/wiki/The_Comedy_of_Errors">Wikipedia Summary</a>: '
        "The Comedy of Errors is one of <b>William Shakespeare's</b> early plays. It is his "
        "shortest and one of his most farcical comedies, with a major part of the humour coming "
        "from slapstick and mistaken identity, in addition to puns and word play."
    ),
}

DETAILS: dict[str, Any] = {
    "author": "William Shakespeare",
    "year": 1595,
    "type": "paperback",
    "pages": 200,
    "publisher": "PublisherA",
    "language": "English",
    "ISBN-10": "1234567890",
    "ISBN-13": "123-1234567890",
}

REVIEWS: tuple[tuple[str, str], ...] = (
    ("Reviewer1", "An extremely entertaining play by Shakespeare. The slapstick humour is refreshing!"),
    ("Reviewer2", "Absolutely fun and entertaining. The play lacks thematic depth when compared "
                  "to other plays by Shakespeare."),
)

RATINGS: dict[str, int] = {"Reviewer1": 5, "Reviewer2": 4}


def _by_service(results: tuple[CallResult, ...], service: str) -> CallResult | None:
    return next((r for r in results if r.service == service), None)


def products() -> list[dict[str, Any]]:
    """productpage's `/api/v1/products`: the one book Bookinfo sells, as a list."""
    return [{"id": 0, **PRODUCT}]


def details_fields(product_id: str) -> dict[str, Any]:
    """details: the book's facts (Bookinfo's details.rb)."""
    return {"id": int(product_id), **DETAILS}


def ratings_fields(product_id: str) -> dict[str, Any]:
    """ratings: stars per reviewer (Bookinfo's ratings.js)."""
    return {"id": int(product_id), "ratings": dict(RATINGS)}


def _rating(ratings: CallResult, reviewer: str, star_color: str) -> dict[str, Any]:
    stars = ratings.body.get("ratings", {}).get(reviewer) if ratings.ok and isinstance(ratings.body, dict) else None
    if isinstance(stars, int) and not isinstance(stars, bool):
        return {"stars": stars, "color": star_color}
    return {"error": RATINGS_UNAVAILABLE}


def reviews_fields(product_id: str, star_color: str | None, results: tuple[CallResult, ...]) -> dict[str, Any]:
    """reviews: two reviews, with stars when this version calls ratings.

    As in Bookinfo, v1 shows no rating at all, and v2/v3 answer 200 with a
    rating error when ratings fails: a reviews page without stars, not an
    error page.
    """
    ratings = _by_service(results, "ratings")
    reviews: list[dict[str, Any]] = []
    for reviewer, text in REVIEWS:
        review: dict[str, Any] = {"reviewer": reviewer, "text": text}
        if ratings is not None:
            review["rating"] = _rating(ratings, reviewer, star_color or "black")
        reviews.append(review)
    return {"id": product_id, "reviews": reviews}


def productpage_fields(product_id: str, results: tuple[CallResult, ...]) -> dict[str, Any]:
    """productpage: the product with its details and reviews, or Bookinfo's apology for each."""
    details = _by_service(results, "details")
    reviews = _by_service(results, "reviews")
    return {
        "product": {"id": int(product_id), **PRODUCT},
        "details": details.body if details is not None and details.ok else {"error": DETAILS_UNAVAILABLE},
        "reviews": reviews.body if reviews is not None and reviews.ok else {"error": REVIEWS_UNAVAILABLE},
    }
