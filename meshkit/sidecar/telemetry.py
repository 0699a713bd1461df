"""What the sidecar saw: Istio's request metrics, a ring of recent requests,
and the buffer of finished requests waiting to be logged and sent.

Recording must cost next to nothing, because it happens on every request:
the label text of each (source, destination) pair is rendered once, when its
`Route` is made (at snapshot apply for outbound endpoints, at the first request
from a new peer inbound), and a request adds to the counters of its
(route, code, flags, security, principals) series: a dict lookup, three
bisects and a few increments, then two deque appends (the /requests ring and
the export buffer). Nothing is formatted, written or sent on the hot path:
the text exposition is produced when someone scrapes /stats/prometheus, and
access-log lines and spans are made from the export buffer by the exporter
(meshkit.sidecar.telemetry_push), off the request's path.

Metric and label names are Istio's standard ones with the meshkit_ prefix,
so a learner's PromQL from the Istio docs works with the prefix changed.
Buckets are Envoy's defaults, which Istio uses for durations and byte sizes
alike.

The export buffer is bounded. Records are numbered in the order they are
recorded (`recorded` counts them); when the exporter falls behind by more
than the buffer holds, the oldest are dropped and counted (`dropped`), so the
loss is known and reported, never silent.
"""

from __future__ import annotations

from bisect import bisect_left
from collections import deque
from typing import Any, NamedTuple

from meshkit.core.dry_run import ShadowVerdict, describe, metric_labels

REQUESTS_TOTAL = "meshkit_requests_total"
REQUEST_DURATION = "meshkit_request_duration_milliseconds"
REQUEST_BYTES = "meshkit_request_bytes"
RESPONSE_BYTES = "meshkit_response_bytes"
TCP_OPENED = "meshkit_tcp_connections_opened_total"
TCP_CLOSED = "meshkit_tcp_connections_closed_total"
CONFIG_VERSION = "meshkit_sidecar_config_version"
DROPPED = "meshkit_sidecar_telemetry_dropped_total"
# Istio's envoy_http_inbound_<listener>_rbac{authz_dry_run_action, authz_dry_run_result}:
# Envoy's rbac.istio_dry_run_{allow,deny}_shadow_{allowed,denied} counters.
DRY_RUN = "meshkit_http_inbound_rbac"
# Envoy's listener counter downstream_cx_overflow (connections closed at the
# listener's connection limit) and HTTP connection manager counter
# downstream_rq_idle_timeout (requests ended by the stream idle timeout), one
# series per listener. Envoy has no counter for accept failures (it treats
# EMFILE as fatal): ACCEPT_PAUSED, in Envoy's naming style, counts the pauses.
CX_OVERFLOW = "meshkit_listener_downstream_cx_overflow"
ACCEPT_PAUSED = "meshkit_listener_downstream_cx_accept_paused"
RQ_IDLE_TIMEOUT = "meshkit_http_downstream_rq_idle_timeout"

# Envoy's default histogram buckets, which Istio keeps for its duration
# (milliseconds) and size (bytes) histograms.
BUCKETS_MS = (0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 300000, 600000, 1800000, 3600000)
BUCKETS_BYTES = BUCKETS_MS
_LE = tuple(f'le="{bound}"' for bound in BUCKETS_MS) + ('le="+Inf"',)

# Inbound routes are keyed by what callers claim in their peer header; a
# cap keeps a misbehaving client from growing the label sets without bound.
MAX_ROUTES = 2000
# Series per route (code x flags x security x principals); past this, new
# combinations share one overflow series.
MAX_SERIES_PER_ROUTE = 200
UNKNOWN = "unknown"
OVERFLOW = "overflow"
# Paths and authorities in the ring are cut to this, so the ring's size is bounded.
MAX_RECORDED_TEXT = 256
DEFAULT_EXPORT_BUFFER = 10000

LABEL_NAMES = (
    "reporter",
    "source_workload",
    "source_workload_namespace",
    "source_version",
    "destination_service",
    "destination_service_name",
    "destination_service_namespace",
    "destination_workload",
    "destination_workload_namespace",
    "destination_version",
    "request_protocol",
)
"""Labels fixed per Route, rendered once. response_code, response_flags,
connection_security_policy, source_principal and destination_principal come
from each request's series."""

TCP_LABEL_NAMES = ("reporter", "source_workload", "source_workload_namespace", "destination_service", "destination_workload", "destination_workload_namespace")


def escape_label(value: str) -> str:
    """A label value as the text exposition format requires."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def split_host(host: str) -> tuple[str, str]:
    """(name, namespace) of a service host `name.namespace.svc.cluster.local`; unknown parts stay 'unknown'."""
    parts = host.split(".")
    if len(parts) >= 2 and host not in (UNKNOWN, OVERFLOW):
        return parts[0], parts[1]
    return host, UNKNOWN


class Series:
    """Counters and histograms for one full label set."""

    __slots__ = ("key", "labels", "count", "sum_ms", "buckets", "req_sum", "req_buckets", "resp_sum", "resp_buckets")

    def __init__(self, key: tuple[int, str, str, str, str], labels: str) -> None:
        self.key = key
        self.labels = labels
        self.count = 0
        self.sum_ms = 0.0
        self.buckets = [0] * (len(BUCKETS_MS) + 1)
        self.req_sum = 0
        self.req_buckets = [0] * (len(BUCKETS_BYTES) + 1)
        self.resp_sum = 0
        self.resp_buckets = [0] * (len(BUCKETS_BYTES) + 1)


class Route:
    """A (reporter, source, destination) label set and its series."""

    __slots__ = ("labels", "values", "series", "reporter", "log")

    def __init__(self, values: tuple[str, ...]) -> None:
        self.values = values
        self.reporter = values[0]
        self.log: str | None = None  # this route's access-log fields, rendered once by meshkit.sidecar.accesslog
        self.labels = ",".join(f'{name}="{escape_label(value)}"' for name, value in zip(LABEL_NAMES, values))
        self.series: dict[tuple[int, str, str, str, str], Series] = {}

    def as_dict(self) -> dict[str, str]:
        return dict(zip(LABEL_NAMES, self.values))

    def new_series(self, key: tuple[int, str, str, str, str]) -> Series:
        if len(self.series) >= MAX_SERIES_PER_ROUTE:
            key = (0, OVERFLOW, OVERFLOW, OVERFLOW, OVERFLOW)
            found = self.series.get(key)
            if found is not None:
                return found
        code, flags, security, source_principal, destination_principal = key
        labels = (
            f'{self.labels},source_principal="{escape_label(source_principal or UNKNOWN)}",'
            f'destination_principal="{escape_label(destination_principal or UNKNOWN)}",'
            f'response_code="{code}",response_flags="{escape_label(flags)}",'
            f'connection_security_policy="{escape_label(security)}"'
        )
        series = self.series[key] = Series(key, labels)
        return series


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
    # Envoy's %RESPONSE_CODE_DETAILS% where the sidecar decided itself: which
    # AuthorizationPolicy denied (rbac_access_denied_matched_policy[ns/name]).
    response_code_details: str = ""
    # What dry-run AuthorizationPolicies would have decided (meshkit.core.dry_run); () when none applied.
    dry_run: tuple[ShadowVerdict, ...] = ()


class ConnectionCounter:
    """TCP connections a listener accepted: opened counts calls, closed is
    opened minus those still open (the listener's own set), read at scrape time."""

    __slots__ = ("labels", "opened", "open_now")

    def __init__(self, values: tuple[str, ...], open_now: Any) -> None:
        self.labels = ",".join(f'{name}="{escape_label(value)}"' for name, value in zip(TCP_LABEL_NAMES, values))
        self.opened = 0
        self.open_now = open_now  # a callable: connections open now

    @property
    def closed(self) -> int:
        return max(0, self.opened - int(self.open_now()))


class ListenerStats:
    """One listener's overload counters (CX_OVERFLOW, ACCEPT_PAUSED, RQ_IDLE_TIMEOUT)."""

    __slots__ = ("listener", "cx_overflow", "accept_paused", "rq_idle_timeout")

    def __init__(self, listener: str) -> None:
        self.listener = listener
        self.cx_overflow = 0
        self.accept_paused = 0
        self.rq_idle_timeout = 0


class Telemetry:
    """The sidecar's counters, histograms, recent-request ring and export buffer."""

    def __init__(self, ring_size: int, export_buffer: int | None = DEFAULT_EXPORT_BUFFER, namespace: str = UNKNOWN) -> None:
        self._routes: dict[tuple[str, ...], Route] = {}
        self.ring: deque[RequestRecord] = deque(maxlen=ring_size)
        # Records waiting for the exporter (None: nobody exports, nothing is kept).
        self.pending: deque[RequestRecord] | None = deque(maxlen=export_buffer) if export_buffer else None
        self.recorded = 0  # records ever appended to `pending`; the next record's sequence number
        self.taken = 0  # records the exporter took from `pending`
        self.dropped_later = 0  # records the exporter itself had to drop (its outbox overflowed)
        self.namespace = namespace
        self.connections: list[ConnectionCounter] = []
        self.listeners: list[ListenerStats] = []
        # Dry-run verdicts by (authz_dry_run_action, authz_dry_run_result).
        self.dry_run: dict[tuple[str, str], int] = {}

    def route(
        self,
        reporter: str,
        source_workload: str,
        source_version: str,
        destination_service: str,
        destination_workload: str,
        destination_version: str,
        security: str | None = None,
        source_namespace: str | None = None,
    ) -> Route:
        """The route for these labels, made once and shared afterwards.

        `security` is accepted for older callers and ignored: the security
        policy is a per-request label now (RequestRecord.connection_security_policy).
        The source's namespace defaults to this sidecar's for reporter
        "source"; the destination workload's is the destination service's.
        """
        if source_namespace is None:
            source_namespace = self.namespace if reporter == "source" else UNKNOWN
        key = (reporter, source_workload, source_namespace, source_version, destination_service, destination_workload, destination_version)
        route = self._routes.get(key)
        if route is None:
            if len(self._routes) >= MAX_ROUTES:
                key = (reporter, OVERFLOW, OVERFLOW, OVERFLOW, destination_service, OVERFLOW, OVERFLOW)
                route = self._routes.get(key)
                if route is not None:
                    return route
            name, namespace = split_host(destination_service)
            workload_namespace = namespace if key[5] not in (UNKNOWN, OVERFLOW) else UNKNOWN
            values = (key[0], key[1], key[2], key[3], destination_service, name, namespace, key[5], workload_namespace, key[6], "http")
            route = self._routes[key] = Route(values)
        return route

    def connection_counter(self, values: tuple[str, ...], open_now: Any) -> ConnectionCounter:
        """A TCP connection counter for one listener (labels in TCP_LABEL_NAMES order)."""
        counter = ConnectionCounter(values, open_now)
        self.connections.append(counter)
        return counter

    def listener_stats(self, listener: str) -> ListenerStats:
        """The overload counters of one listener ("inbound", "outbound", "admin"), scraped with the rest."""
        stats = ListenerStats(listener)
        self.listeners.append(stats)
        return stats

    def record(self, record: RequestRecord) -> None:
        """Count one finished request, remember it in the ring, queue it for export."""
        route = record.route
        key = (record.code, record.flags, record.connection_security_policy, record.source_principal, record.destination_principal)
        series = route.series.get(key)
        if series is None:
            series = route.new_series(key)
        series.count += 1
        duration = record.duration_ms
        series.sum_ms += duration
        series.buckets[bisect_left(BUCKETS_MS, duration)] += 1
        size = record.request_bytes
        series.req_sum += size
        series.req_buckets[bisect_left(BUCKETS_BYTES, size)] += 1
        size = record.response_bytes
        series.resp_sum += size
        series.resp_buckets[bisect_left(BUCKETS_BYTES, size)] += 1
        if record.dry_run:
            self._count_dry_run(record.dry_run)
        self.ring.append(record)
        pending = self.pending
        if pending is not None:
            pending.append(record)
            self.recorded += 1

    def _count_dry_run(self, verdicts: tuple[ShadowVerdict, ...]) -> None:
        counts = self.dry_run
        for verdict in verdicts:
            labels = metric_labels(verdict)
            if labels not in counts:
                # Both results of an engine from its first verdict on, as Envoy creates its stats.
                for result in ("allowed", "denied"):
                    counts.setdefault((labels[0], result), 0)
            counts[labels] += 1

    # -- the exporter's side ------------------------------------------------

    def take(self) -> tuple[int, list[RequestRecord]]:
        """Everything waiting for export, oldest first, and the first one's sequence number."""
        pending = self.pending
        if not pending:
            return self.recorded, []
        records = list(pending)
        pending.clear()
        self.taken += len(records)
        return self.recorded - len(records), records

    @property
    def dropped(self) -> int:
        """Records lost before export: the buffer overflowed (oldest dropped first)."""
        waiting = len(self.pending) if self.pending is not None else 0
        return self.recorded - self.taken - waiting + self.dropped_later

    # -- the exposition -------------------------------------------------------

    def prometheus(self, config_version: int | None) -> str:
        """Every series in the Prometheus text exposition format (version 0.0.4)."""
        rows = [series for route in self._routes.values() for series in route.series.values()]
        out = [
            f"# HELP {REQUESTS_TOTAL} Requests seen by this sidecar.",
            f"# TYPE {REQUESTS_TOTAL} counter",
        ]
        for series in rows:
            out.append(f"{REQUESTS_TOTAL}{{{series.labels}}} {series.count}")
        _histogram(out, REQUEST_DURATION, "Request duration from first request byte to last response byte.",
                   rows, lambda s: (s.buckets, s.sum_ms))
        _histogram(out, REQUEST_BYTES, "Request body sizes.", rows, lambda s: (s.req_buckets, s.req_sum))
        _histogram(out, RESPONSE_BYTES, "Response body sizes.", rows, lambda s: (s.resp_buckets, s.resp_sum))
        for name, text, attr in ((TCP_OPENED, "TCP connections accepted", "opened"), (TCP_CLOSED, "TCP connections closed", "closed")):
            out.append(f"# HELP {name} {text} by this sidecar's listeners.")
            out.append(f"# TYPE {name} counter")
            for counter in self.connections:
                out.append(f"{name}{{{counter.labels}}} {getattr(counter, attr)}")
        out.append(f"# HELP {DRY_RUN} Dry-run AuthorizationPolicy verdicts (Envoy's rbac.istio_dry_run_<action>_shadow_<result>).")
        out.append(f"# TYPE {DRY_RUN} counter")
        for (action, result), count in sorted(self.dry_run.items()):
            out.append(f'{DRY_RUN}{{authz_dry_run_action="{action}",authz_dry_run_result="{result}"}} {count}')
        for name, text, attr in (
            (CX_OVERFLOW, "Connections closed at once because the listener had its connection limit open (Envoy's downstream_cx_overflow).", "cx_overflow"),
            (ACCEPT_PAUSED, "Times the listener stopped accepting for a while because accept() ran out of descriptors or memory.", "accept_paused"),
            (RQ_IDLE_TIMEOUT, "Requests ended because their body stopped arriving (Envoy's downstream_rq_idle_timeout).", "rq_idle_timeout"),
        ):
            out.append(f"# HELP {name} {text}")
            out.append(f"# TYPE {name} counter")
            for stats in self.listeners:
                out.append(f'{name}{{listener="{stats.listener}"}} {getattr(stats, attr)}')
        out.append(f"# HELP {CONFIG_VERSION} Version of the snapshot this sidecar runs (-1 before the first).")
        out.append(f"# TYPE {CONFIG_VERSION} gauge")
        out.append(f"{CONFIG_VERSION} {-1 if config_version is None else config_version}")
        out.append(f"# HELP {DROPPED} Request records dropped before export because the bounded buffer overflowed.")
        out.append(f"# TYPE {DROPPED} counter")
        out.append(f"{DROPPED} {self.dropped}")
        return "\n".join(out) + "\n"

    def recent(self, limit: int) -> list[dict[str, Any]]:
        """The last `limit` requests, oldest first."""
        records = list(self.ring)[-limit:] if limit > 0 else []
        return [_record_dict(r) for r in records]


def _histogram(out: list[str], name: str, text: str, rows: list[Series], get: Any) -> None:
    out.append(f"# HELP {name} {text}")
    out.append(f"# TYPE {name} histogram")
    for series in rows:
        labels = series.labels
        buckets, total = get(series)
        running = 0
        for le, count in zip(_LE, buckets):
            running += count
            out.append(f"{name}_bucket{{{labels},{le}}} {running}")
        out.append(f"{name}_sum{{{labels}}} {total:.3f}" if isinstance(total, float) else f"{name}_sum{{{labels}}} {total}")
        out.append(f"{name}_count{{{labels}}} {series.count}")


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
        "span_id": _text(record.span_id),
        "parent_span_id": _text(record.parent_span_id),
        "retries": record.retries,
        "source_workload": labels["source_workload"],
        "source_version": labels["source_version"],
        "destination_service": labels["destination_service"],
        "destination_workload": labels["destination_workload"],
        "destination_version": labels["destination_version"],
        "connection_security_policy": record.connection_security_policy,
        "source_principal": record.source_principal,
        "destination_principal": record.destination_principal,
        "request_bytes": record.request_bytes,
        "response_bytes": record.response_bytes,
        "response_code_details": record.response_code_details,
        "dry_run": describe(record.dry_run),
    }
