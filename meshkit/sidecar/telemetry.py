"""What the sidecar saw: Istio's request metrics and a ring of recent requests.

Recording must cost next to nothing, because it happens on every request:
the label text of each (source, destination) pair is rendered once, when its
`Route` is made (at snapshot apply for outbound endpoints, at the first request
from a new peer inbound), and a request adds to the counters of its
(route, code, flags) series: a dict lookup and a few increments. The text
exposition format is produced only when someone scrapes /stats/prometheus.

Metric and label names are Istio's standard ones with the meshkit_ prefix,
so a learner's PromQL from the Istio docs works with the prefix changed.
"""

from __future__ import annotations

from bisect import bisect_left
from collections import deque
from typing import Any, NamedTuple

REQUESTS_TOTAL = "meshkit_requests_total"
REQUEST_DURATION = "meshkit_request_duration_milliseconds"
CONFIG_VERSION = "meshkit_sidecar_config_version"

# Istio's default buckets for request duration (milliseconds).
BUCKETS_MS = (0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 300000, 600000, 1800000, 3600000)

# Inbound routes are keyed by what callers claim in their peer header; a
# cap keeps a misbehaving client from growing the label sets without bound.
MAX_ROUTES = 2000
UNKNOWN = "unknown"
OVERFLOW = "overflow"
# Paths and authorities in the ring are cut to this, so the ring's size is bounded.
MAX_RECORDED_TEXT = 256

LABEL_NAMES = (
    "reporter",
    "source_workload",
    "source_version",
    "destination_service",
    "destination_workload",
    "destination_version",
    "connection_security_policy",
)


def escape_label(value: str) -> str:
    """A label value as the text exposition format requires."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


class Series:
    """Counters for one full label set (route labels plus code and flags)."""

    __slots__ = ("code", "flags", "count", "sum_ms", "buckets")

    def __init__(self, code: int, flags: str) -> None:
        self.code = code
        self.flags = flags
        self.count = 0
        self.sum_ms = 0.0
        self.buckets = [0] * (len(BUCKETS_MS) + 1)


class Route:
    """A (reporter, source, destination) label set and its series by (code, flags)."""

    __slots__ = ("labels", "values", "series")

    def __init__(self, values: tuple[str, ...]) -> None:
        self.values = values
        self.labels = ",".join(f'{name}="{escape_label(value)}"' for name, value in zip(LABEL_NAMES, values))
        self.series: dict[tuple[int, str], Series] = {}

    def as_dict(self) -> dict[str, str]:
        return dict(zip(LABEL_NAMES, self.values))


class RequestRecord(NamedTuple):
    """One finished request, as /requests shows it."""

    start: float
    method: bytes
    path: bytes
    authority: bytes
    code: int
    flags: str
    duration_ms: float
    upstream_host: str | None
    request_id: bytes | None
    trace_id: bytes | None
    route: Route
    retries: int = 0
    # W3C ids of this hop's span: span_id is the id this sidecar put in the
    # traceparent it sent on, parent_span_id the one it received (None: a root).
    span_id: bytes | None = None
    parent_span_id: bytes | None = None
    # mutual_tls | none, and the SPIFFE ids of the two ends ("" when unknown);
    # the sidecar's security code fills these where the request is finished.
    connection_security_policy: str = "none"
    source_principal: str = ""
    destination_principal: str = ""
    # Body bytes received from the client and sent back to it (framing excluded).
    request_bytes: int = 0
    response_bytes: int = 0
    protocol: str = "HTTP/1.1"


class Telemetry:
    """The sidecar's counters, histograms and recent-request ring."""

    def __init__(self, ring_size: int) -> None:
        self._routes: dict[tuple[str, ...], Route] = {}
        self.ring: deque[RequestRecord] = deque(maxlen=ring_size)

    def route(
        self,
        reporter: str,
        source_workload: str,
        source_version: str,
        destination_service: str,
        destination_workload: str,
        destination_version: str,
        security: str = "none",
    ) -> Route:
        """The route for these labels, made once and shared afterwards."""
        values = (reporter, source_workload, source_version, destination_service, destination_workload, destination_version, security)
        route = self._routes.get(values)
        if route is None:
            if len(self._routes) >= MAX_ROUTES:
                values = (reporter, OVERFLOW, OVERFLOW, destination_service, OVERFLOW, OVERFLOW, security)
                route = self._routes.get(values)
                if route is not None:
                    return route
            route = self._routes[values] = Route(values)
        return route

    def record(self, record: RequestRecord) -> None:
        """Count one finished request and remember it in the ring."""
        key = (record.code, record.flags)
        series = record.route.series.get(key)
        if series is None:
            series = record.route.series[key] = Series(record.code, record.flags)
        series.count += 1
        duration = record.duration_ms
        series.sum_ms += duration
        series.buckets[bisect_left(BUCKETS_MS, duration)] += 1
        self.ring.append(record)

    def prometheus(self, config_version: int | None) -> str:
        """Every series in the Prometheus text exposition format (version 0.0.4)."""
        out = [
            f"# HELP {REQUESTS_TOTAL} Requests seen by this sidecar.",
            f"# TYPE {REQUESTS_TOTAL} counter",
        ]
        rows = [(route, series) for route in self._routes.values() for series in route.series.values()]
        for route, series in rows:
            out.append(f'{REQUESTS_TOTAL}{{{_labels(route, series)}}} {series.count}')
        out.append(f"# HELP {REQUEST_DURATION} Request duration from first request byte to last response byte.")
        out.append(f"# TYPE {REQUEST_DURATION} histogram")
        for route, series in rows:
            labels = _labels(route, series)
            running = 0
            for bound, count in zip(BUCKETS_MS, series.buckets):
                running += count
                out.append(f'{REQUEST_DURATION}_bucket{{{labels},le="{bound}"}} {running}')
            out.append(f'{REQUEST_DURATION}_bucket{{{labels},le="+Inf"}} {series.count}')
            out.append(f"{REQUEST_DURATION}_sum{{{labels}}} {series.sum_ms:.3f}")
            out.append(f"{REQUEST_DURATION}_count{{{labels}}} {series.count}")
        out.append(f"# HELP {CONFIG_VERSION} Version of the snapshot this sidecar runs (-1 before the first).")
        out.append(f"# TYPE {CONFIG_VERSION} gauge")
        out.append(f"{CONFIG_VERSION} {-1 if config_version is None else config_version}")
        return "\n".join(out) + "\n"

    def recent(self, limit: int) -> list[dict[str, Any]]:
        """The last `limit` requests, oldest first."""
        records = list(self.ring)[-limit:] if limit > 0 else []
        return [_record_dict(r) for r in records]


def _labels(route: Route, series: Series) -> str:
    return f'{route.labels},response_code="{series.code}",response_flags="{escape_label(series.flags)}"'


def _text(raw: bytes | None) -> str | None:
    return None if raw is None else raw[:MAX_RECORDED_TEXT].decode("latin-1")


def _record_dict(record: RequestRecord) -> dict[str, Any]:
    labels = record.route.as_dict()
    return {
        "start": round(record.start, 6),
        "reporter": labels["reporter"],
        "method": record.method.decode("ascii", "replace"),
        "path": _text(record.path),
        "authority": _text(record.authority),
        "code": record.code,
        "flags": record.flags,
        "duration_ms": round(record.duration_ms, 3),
        "upstream_host": record.upstream_host,
        "request_id": _text(record.request_id),
        "trace_id": _text(record.trace_id),
        "retries": record.retries,
        "source_workload": labels["source_workload"],
        "source_version": labels["source_version"],
        "destination_service": labels["destination_service"],
        "destination_workload": labels["destination_workload"],
        "destination_version": labels["destination_version"],
    }
