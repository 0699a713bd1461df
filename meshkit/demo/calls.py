"""The outcome of one downstream call, as the response body shows it.

Kept apart from the HTTP client so that composing a response (roles.py,
bookinfo.py) is a pure function of these values, testable without sockets.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


def should_retry(status: int | None, error: str | None) -> bool:
    """Whether an attempt's outcome is worth another try.

    Bookinfo retries whatever went wrong; a 4xx is the caller's mistake and
    would fail the same way again, so only transport errors and 5xx retry.
    """
    return error is not None or status is None or status >= 500


@dataclass(frozen=True)
class CallResult:
    """A call after all its attempts: the last attempt's answer or error."""

    service: str
    url: str
    address: str | None
    status: int | None
    body: Any
    error: str | None
    attempts: int
    duration_ms: float

    @property
    def ok(self) -> bool:
        """A 2xx answer: the caller can use the body."""
        return self.error is None and self.status is not None and 200 <= self.status < 300

    def failure(self) -> str:
        """One line saying why the call did not succeed."""
        if self.error is not None:
            return self.error
        return f"answered {self.status}"

    def record(self) -> dict[str, Any]:
        """The call as listed under "calls" in the response body.

        `served_by` is the instance that answered, when it says so: the line a
        learner reads to see traffic split between versions.
        """
        served_by = self.body.get("instance") if isinstance(self.body, dict) else None
        return {
            "service": self.service,
            "url": self.url,
            "address": self.address,
            "status": self.status,
            "served_by": served_by if isinstance(served_by, str) else None,
            "attempts": self.attempts,
            "duration_ms": round(self.duration_ms, 3),
            "error": self.error,
        }
