"""Export the mesh's spans to an OpenTelemetry collector (OTLP/HTTP, protobuf).

The sidecars already record one span per request per hop (a record with
trace_id, span_id and parent_span_id, meshkit.control.telemetry). When the
lab is given an OTLP endpoint, the control plane forwards each accepted
record as an OTLP span, so a learner can open the same traces in Jaeger,
Tempo or any OpenTelemetry backend next to the notebook's `lab.trace()`.

Why here and not in each sidecar: the records already reach the control
plane with their loss accounting (gaps, drops); exporting from one place
adds no work to the request path and one connection, not one per sidecar.

The mapping follows what Istio's Envoy sidecars send:

- one span per record; the caller's sidecar (reporter=source) reports a
  CLIENT span, the callee's (reporter=destination) a SERVER span, with the
  ids the sidecars propagated in traceparent;
- span name `<destination host>:<port>/*`, Envoy's default operation name;
- resource `service.name` = `<canonical service>.<namespace>` (Istio's
  "productpage.default"), the canonical service being the workload's name
  without its `-<version>` suffix;
- Envoy's tags as attributes (http.method, http.url, http.status_code,
  response_flags, upstream_cluster, guid:x-request-id, node_id, ...); a 5xx
  or no response at all marks the span as an error, as Envoy's `error` tag.

Encoding is OTLP/HTTP's default, binary protobuf (the opentelemetry-proto
package's own messages), POSTed to `<endpoint>/v1/traces`. Delivery is
best-effort with a bounded buffer: an unreachable collector costs retries
with backoff, and what the buffer cannot hold is counted, never hidden
(`status()`, in the control plane's /v1/telemetry/status).
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

from meshkit.control.telemetry import COLUMNS

log = logging.getLogger("meshkit.control")

TRACES_PATH = "/v1/traces"
SCOPE_NAME = "meshkit.sidecar"
BUFFER_SPANS = 20_000
BATCH_SPANS = 512
FLUSH_INTERVAL_S = 1.0
POST_TIMEOUT_S = 5.0
MAX_BACKOFF_S = 30.0
RETRYABLE = frozenset({429, 502, 503, 504})  # the OTLP/HTTP specification's retryable codes

_HEX32 = re.compile(r"[0-9a-f]{32}")
_HEX16 = re.compile(r"[0-9a-f]{16}")
_INDEX = {name: i for i, name in enumerate(COLUMNS)}


class BadEndpoint(ValueError):
    """An OTLP endpoint that is not an http(s) URL."""


def traces_url(endpoint: str) -> str:
    """The URL to POST spans to, from an endpoint as OpenTelemetry's variables give it.

    OTEL_EXPORTER_OTLP_ENDPOINT is a base URL to which the signal's path is
    appended; a URL that already ends in /v1/traces (as
    OTEL_EXPORTER_OTLP_TRACES_ENDPOINT does) is used as it is.
    """
    text = endpoint.strip()
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise BadEndpoint(f"OTLP endpoint {endpoint!r} must be an http:// or https:// URL with a host, such as http://127.0.0.1:4318")
    try:
        parts.port  # noqa: B018 - raises on a port out of range
    except ValueError:
        raise BadEndpoint(f"OTLP endpoint {endpoint!r} has an invalid port") from None
    if parts.query or parts.fragment:
        raise BadEndpoint(f"OTLP endpoint {endpoint!r} must not carry a query or fragment")
    if parts.path.rstrip("/").endswith(TRACES_PATH):
        return text
    return text.rstrip("/") + TRACES_PATH


def canonical_service(workload: str, version: str | None) -> str:
    """Istio's canonical service for a workload: its name without the `-<version>` suffix."""
    if version and workload.endswith(f"-{version}") and len(workload) > len(version) + 1:
        return workload[: -len(version) - 1]
    return workload


def _set_attributes(target: Any, pairs: Iterable[tuple[str, Any]]) -> None:
    """Append key/value attributes in place: building KeyValue objects and passing
    them in would copy each one again (a third of the export's time)."""
    add = target.add
    for key, value in pairs:
        slot = add(key=key).value
        if isinstance(value, bool):
            slot.bool_value = value
        elif isinstance(value, int):
            slot.int_value = value
        elif isinstance(value, float):
            slot.double_value = value
        else:
            slot.string_value = str(value)


def _field(row: Sequence[Any], name: str) -> Any:
    return row[_INDEX[name]]


def _number(value: Any) -> float | None:
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value == value and abs(value) != float("inf"):
        return float(value)
    return None


def _own(row: Sequence[Any]) -> tuple[str, str, str | None]:
    """The reporting sidecar's workload, namespace and version."""
    side = "source" if _field(row, "reporter") == "source" else "destination"
    workload = _field(row, f"{side}_workload")
    namespace = _field(row, f"{side}_namespace")
    version = _field(row, f"{side}_version")
    return (
        workload if isinstance(workload, str) and workload else "unknown",
        namespace if isinstance(namespace, str) and namespace else "unknown",
        version if isinstance(version, str) and version else None,
    )


def span_of(row: Sequence[Any]) -> Span | None:
    """One record as an OTLP span; None for a record that carries no valid trace context."""
    span = Span()
    return span if fill_span(span, row, _own(row)) else None


def fill_span(span: Span, row: Sequence[Any], own: tuple[str, str, str | None]) -> bool:
    """Write one record into `span` (fresh, in place); False for a record without a valid trace context.
    `own` is the record's reporting workload (`_own(row)`), which the caller has already worked out."""
    trace_id, span_id, parent = _field(row, "trace_id"), _field(row, "span_id"), _field(row, "parent_span_id")
    start = _number(_field(row, "start"))
    if not (isinstance(trace_id, str) and _HEX32.fullmatch(trace_id) and trace_id != "0" * 32):
        return False
    if not (isinstance(span_id, str) and _HEX16.fullmatch(span_id) and span_id != "0" * 16) or start is None:
        return False
    duration_ms = max(_number(_field(row, "duration")) or 0.0, 0.0)
    start_ns = round(start * 1e6) * 1000  # microseconds, as recorded: float nanoseconds would be off by hundreds
    client = _field(row, "reporter") == "source"
    authority = str(_field(row, "authority") or "")
    host = str(_field(row, "destination_service") or authority or "unknown")
    port = authority.rsplit(":", 1)[1] if ":" in authority else ""
    code = _field(row, "response_code")
    code = int(code) if isinstance(code, int) and not isinstance(code, bool) else 0
    workload, namespace, version = own
    error = code == 0 or code >= 500
    span.trace_id = bytes.fromhex(trace_id)
    span.span_id = bytes.fromhex(span_id)
    if isinstance(parent, str) and _HEX16.fullmatch(parent):
        span.parent_span_id = bytes.fromhex(parent)
    span.name = f"{host}:{port}/*" if port else f"{host}/*"
    span.kind = Span.SPAN_KIND_CLIENT if client else Span.SPAN_KIND_SERVER
    span.start_time_unix_nano = start_ns
    span.end_time_unix_nano = start_ns + round(duration_ms * 1e3) * 1000
    if error:
        span.status.code = Status.STATUS_CODE_ERROR
        span.status.message = f"HTTP {code}"
    _set_attributes(span.attributes, (
        ("node_id", _field(row, "node") or ""),
        ("component", "proxy"),
        ("http.method", _field(row, "method") or ""),
        ("http.url", f"http://{authority}{_field(row, 'path') or ''}"),
        ("http.protocol", _field(row, "protocol") or ""),
        ("http.status_code", code),
        ("response_flags", _field(row, "response_flags") or "-"),
        ("request_size", _field(row, "bytes_received") or 0),
        ("response_size", _field(row, "bytes_sent") or 0),
        ("upstream_cluster", _field(row, "upstream_host") or ""),
        ("guid:x-request-id", _field(row, "request_id") or ""),
        ("istio.canonical_service", canonical_service(workload, version)),
        ("istio.namespace", namespace),
        ("peer.principal", (_field(row, "destination_principal") if client else _field(row, "source_principal")) or ""),
        ("connection_security_policy", _field(row, "connection_security_policy") or "none"),
        ("retries", _field(row, "retries") or 0),
    ))  # fmt: skip
    return True


def export_request(rows: Iterable[Sequence[Any]]) -> tuple[ExportTraceServiceRequest, int]:
    """An OTLP request with a ResourceSpans per reporting workload, and how many records had no valid span.

    Spans are written straight into the request (no copies), one resource per
    reporting workload, in the order the workloads first appear."""
    request = ExportTraceServiceRequest()
    scopes: dict[tuple[str, str, str | None], Any] = {}
    skipped = 0
    for row in rows:
        key = _own(row)
        scope = scopes.get(key)
        if scope is None:
            resource_spans = request.resource_spans.add()
            workload, namespace, version = key
            _set_attributes(resource_spans.resource.attributes, (
                ("service.name", f"{canonical_service(workload, version)}.{namespace}"),
                ("service.version", version or ""),
                ("k8s.namespace.name", namespace),
                ("k8s.deployment.name", workload),
            ))  # fmt: skip
            scope = scopes[key] = resource_spans.scope_spans.add()
            scope.scope.name = SCOPE_NAME
        span = scope.spans.add()
        try:
            filled = fill_span(span, row, key)
        except (ValueError, TypeError, OverflowError):  # a time protobuf's uint64 cannot hold, say
            filled = False
        if not filled:
            del scope.spans[-1]
            skipped += 1
    # A workload whose every record was skipped leaves no empty resource behind.
    for index in reversed(range(len(request.resource_spans))):
        if not request.resource_spans[index].scope_spans[0].spans:
            del request.resource_spans[index]
    return request, skipped


@dataclass
class OtlpExporter:
    """Forwards records to one collector in batches, from the control plane's event loop.

    `offer` is called by the telemetry sink with each accepted batch; it only
    appends (the request that carried the batch is not kept waiting). A task
    started on the first offer sends up to BATCH_SPANS spans per POST, at
    least every FLUSH_INTERVAL_S; a failed POST keeps its spans and waits
    (1, 2, 4 ... 30 s) before the next try.
    """

    endpoint: str
    buffer_spans: int = BUFFER_SPANS
    url: str = field(init=False)
    pending: deque[tuple[Any, ...]] = field(default_factory=deque)
    exported: int = 0
    skipped: int = 0
    dropped: int = 0
    failures: int = 0
    last_error: str | None = None
    last_export: float | None = None
    _task: asyncio.Task[None] | None = None
    _wake: asyncio.Event | None = None

    def __post_init__(self) -> None:
        self.url = traces_url(self.endpoint)

    def offer(self, rows: Sequence[tuple[Any, ...]]) -> None:
        room = self.buffer_spans - len(self.pending)
        if len(rows) > room:
            self.dropped += len(rows) - max(room, 0)
            rows = rows[: max(room, 0)]
        self.pending.extend(rows)
        if self._task is None:
            self._wake = asyncio.Event()
            self._task = asyncio.get_running_loop().create_task(self._run())
        if self._wake is not None and len(self.pending) >= BATCH_SPANS:
            self._wake.set()

    async def _run(self) -> None:
        backoff = 1.0
        async with httpx.AsyncClient(timeout=POST_TIMEOUT_S) as client:
            while True:
                assert self._wake is not None
                try:
                    await asyncio.wait_for(self._wake.wait(), FLUSH_INTERVAL_S)
                except asyncio.TimeoutError:
                    pass
                self._wake.clear()
                while self.pending:
                    try:
                        sent = await self._send_one(client)
                    except Exception as exc:  # a bug here must not end the export for the lab's lifetime
                        log.exception("otlp: export failed unexpectedly")
                        sent = self._failed(f"internal error: {exc!r}")
                    if sent:
                        backoff = 1.0
                        continue
                    await asyncio.sleep(backoff)
                    backoff = min(backoff * 2, MAX_BACKOFF_S)
                    break

    async def _send_one(self, client: httpx.AsyncClient) -> bool:
        batch = [self.pending[i] for i in range(min(BATCH_SPANS, len(self.pending)))]
        request, skipped = export_request(batch)
        try:
            response = await client.post(self.url, content=request.SerializeToString(),
                                         headers={"Content-Type": "application/x-protobuf"})
        except httpx.HTTPError as exc:
            return self._failed(f"{type(exc).__name__}: {exc}")
        if response.status_code in RETRYABLE:
            return self._failed(f"HTTP {response.status_code} from {self.url}")
        if not 200 <= response.status_code < 300:
            # OTLP/HTTP: any other answer means the collector will never take
            # this batch; sending it again would block every later span.
            for _ in batch:
                self.pending.popleft()
            self.dropped += len(batch)
            self._failed(f"HTTP {response.status_code} from {self.url}: batch of {len(batch)} refused, dropped")
            return True
        for _ in batch:
            self.pending.popleft()
        self.exported += len(batch) - skipped
        self.skipped += skipped
        self.last_export = time.time()
        self.last_error = None
        return True

    def _failed(self, reason: str) -> bool:
        if self.last_error != reason:
            log.warning("otlp: cannot export spans to %s: %s (keeping %d, retrying)", self.url, reason, len(self.pending))
        self.failures += 1
        self.last_error = reason
        return False

    def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            self._task = None

    def status(self) -> dict[str, Any]:
        return {
            "endpoint": self.url,
            "exported": self.exported,
            "pending": len(self.pending),
            "dropped": self.dropped,
            "skipped": self.skipped,
            "failures": self.failures,
            "last_error": self.last_error,
            "last_export": self.last_export,
        }
