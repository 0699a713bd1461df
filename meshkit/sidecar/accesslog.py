"""Access-log lines and the bounded, rotated file they go to.

One JSON object per request per reporter, with Envoy's field names where
Envoy has one (Istio's default JSON access log: start_time, method, path,
protocol, response_code, response_flags, bytes_received, bytes_sent,
duration, upstream_host, request_id, authority) and the mesh's view beside
them: reporter, source and destination workloads, principals and the
connection's security, and the trace (traceparent as this hop sent it on,
trace, span and parent span ids), and `dry_run`: what dry-run
AuthorizationPolicies would have decided, in Envoy's words ("deny: shadow
denied, matched policy ns[default]-policy[deny-curl]-rule[0]"; null when
none applies). The same line is the record the sidecar
sends to the control plane, so what a learner greps in the log and what
`lab.requests()` shows are one thing.

The line is made by the exporter from the buffered record, never on the
request's path; the file is written in batches (one write per flush) and
rotated by size like logrotate's `size` + `rotate N`: `access.log` becomes
`access.log.1`, the oldest beyond `backups` is deleted.
"""

from __future__ import annotations

import json
import os
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from meshkit.core.dry_run import ShadowVerdict, describe
from meshkit.sidecar.telemetry import RequestRecord

_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


def _text(raw: bytes | None) -> str | None:
    return None if raw is None else raw.decode("latin-1")


def start_time(unix_s: float) -> str:
    """RFC 3339 UTC with milliseconds, as Envoy's %START_TIME% prints it."""
    return datetime.fromtimestamp(unix_s, timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def entry(record: RequestRecord, seq: int, node: str) -> dict[str, Any]:
    """The access-log object for one request record."""
    values = record.route.values
    reporter = values[0]
    trace_id = _text(record.trace_id)
    span_id = _text(record.span_id)
    return {
        "start_time": start_time(record.start),
        "method": record.method.decode("latin-1"),
        "path": _text(record.path),
        "protocol": record.protocol,
        "response_code": record.code,
        "response_flags": record.flags,
        "response_code_details": record.response_code_details,
        "bytes_received": record.request_bytes,
        "bytes_sent": record.response_bytes,
        "duration": round(record.duration_ms, 3),
        "upstream_host": record.upstream_host,
        "request_id": _text(record.request_id),
        "authority": _text(record.authority),
        "traceparent": f"00-{trace_id}-{span_id}-01" if trace_id and span_id else None,
        "trace_id": trace_id,
        "span_id": span_id,
        "parent_span_id": _text(record.parent_span_id),
        "reporter": reporter,
        "source_workload": values[1],
        "source_namespace": values[2],
        "source_version": values[3],
        "source_principal": record.source_principal,
        "destination_service": values[4],
        "destination_workload": values[7],
        "destination_namespace": values[8],
        "destination_version": values[9],
        "destination_principal": record.destination_principal,
        "peer_principal": record.source_principal if reporter == "destination" else record.destination_principal,
        "connection_security_policy": record.connection_security_policy,
        "retries": record.retries,
        "dry_run": describe(record.dry_run),
        "start": round(record.start, 6),
        "node": node,
        "seq": seq,
    }


_quote = json.encoder.encode_basestring_ascii
_seconds: dict[int, str] = {}
# ".000Z" to ".999Z": the milliseconds of a start time, formatted once.
_MILLISECONDS = tuple(f".{ms:03d}Z" for ms in range(1000))


def _start_time_fast(unix_s: float) -> str:
    """start_time() with the seconds part rendered once per second."""
    whole = int(unix_s)
    ms = round((unix_s - whole) * 1e6) // 1000  # microseconds first, as datetime rounds them
    if ms >= 1000:
        return start_time(unix_s)
    prefix = _seconds.get(whole)
    if prefix is None:
        if len(_seconds) > 64:
            _seconds.clear()
        prefix = _seconds[whole] = datetime.fromtimestamp(whole, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
    return prefix + _MILLISECONDS[ms]


def _q(raw: bytes | None) -> str:
    return "null" if raw is None else _quote(raw.decode("latin-1"))


def _route_fields(route: Any) -> str:
    """The route's fields of a line, rendered once per route (they never change)."""
    v = route.values
    text = (
        f'"reporter":{_quote(v[0])},"source_workload":{_quote(v[1])},"source_namespace":{_quote(v[2])},'
        f'"source_version":{_quote(v[3])},"destination_service":{_quote(v[4])},"destination_workload":{_quote(v[7])},'
        f'"destination_namespace":{_quote(v[8])},"destination_version":{_quote(v[9])}'
    )
    route.log = text
    return text


# The fields fixed by a request's connection and route (reporter, workloads,
# principals, security policy), rendered once per distinct combination: a
# sidecar's requests share a handful. Bounded, like the metric series.
_MESH_PARTS_MAX = 4096
_mesh_parts: dict[tuple[Any, str, str, str], str] = {}


def _mesh_part(route: Any, security: str, source_p: str, destination_p: str) -> str:
    key = (route, security, source_p, destination_p)
    text = _mesh_parts.get(key)
    if text is None:
        fields = route.log or _route_fields(route)
        peer = source_p if route.reporter == "destination" else destination_p
        text = (
            f'{fields},"source_principal":{_quote(source_p)},"destination_principal":{_quote(destination_p)},'
            f'"peer_principal":{_quote(peer)},"connection_security_policy":{_quote(security)}'
        )
        if len(_mesh_parts) >= _MESH_PARTS_MAX:
            _mesh_parts.clear()
        _mesh_parts[key] = text
    return text


# Quoted forms of the few strings that repeat from line to line (flags,
# upstream hosts, response code details, the node), kept once each.
_QUOTED_MAX = 4096
_quoted: dict[str, str] = {}


def _quote_repeated(text: str) -> str:
    quoted = _quoted.get(text)
    if quoted is None:
        if len(_quoted) >= _QUOTED_MAX:
            _quoted.clear()
        quoted = _quoted[text] = _quote(text)
    return quoted


_quoted_raw: dict[bytes, str] = {}


def _q_repeated(raw: bytes) -> str:
    """_q for the bytes that repeat from line to line (methods, authorities), kept once each."""
    quoted = _quoted_raw.get(raw)
    if quoted is None:
        if len(_quoted_raw) >= _QUOTED_MAX:
            _quoted_raw.clear()
        quoted = _quoted_raw[raw] = _quote(raw.decode("latin-1"))
    return quoted


_dry_run_texts: dict[tuple[ShadowVerdict, ...], str] = {}


def _dry_run_text(verdicts: tuple[ShadowVerdict, ...]) -> str:
    """The quoted `dry_run` field, rendered once per distinct set of verdicts (a handful per sidecar)."""
    text = _dry_run_texts.get(verdicts)
    if text is None:
        if len(_dry_run_texts) >= _QUOTED_MAX:
            _dry_run_texts.clear()
        text = _dry_run_texts[verdicts] = _quote(describe(verdicts) or "")
    return text


def line(record: RequestRecord, seq: int, node: str) -> str:
    """The entry as one line of JSON (no newline): the same object as `entry`, rendered
    directly (several times cheaper than building the dict and encoding it).

    The record is unpacked in one step (cheaper than reading its fields one
    by one); the parts that repeat from line to line are rendered once."""
    (
        start, method, path, authority, code, flags, duration_ms, upstream_host, request_id, trace_id, route, retries,
        span_id, parent_span_id, security, source_p, destination_p, request_bytes, response_bytes, protocol, details,
        dry_run,
    ) = record  # fmt: skip
    traceparent = f'"00-{trace_id.decode("latin-1")}-{span_id.decode("latin-1")}-01"' if trace_id and span_id else "null"
    return (
        f'{{"start_time":"{_start_time_fast(start)}","method":{_q_repeated(method)},"path":{_q(path)},'
        f'"protocol":"{protocol}","response_code":{code},"response_flags":{_quote_repeated(flags)},'
        f'"response_code_details":{_quote_repeated(details)},"bytes_received":{request_bytes},"bytes_sent":{response_bytes},'
        f'"duration":{duration_ms:.3f},'
        f'"upstream_host":{"null" if upstream_host is None else _quote_repeated(upstream_host)},'
        f'"request_id":{_q(request_id)},"authority":{_q_repeated(authority)},'
        f'"traceparent":{traceparent},"trace_id":{_q(trace_id)},"span_id":{_q(span_id)},'
        f'"parent_span_id":{_q(parent_span_id)},{_mesh_part(route, security, source_p, destination_p)},'
        f'"retries":{retries},"dry_run":{_dry_run_text(dry_run) if dry_run else "null"},"start":{start:.6f},"node":{_quote_repeated(node)},"seq":{seq}}}'
    )


class RotatingLog:
    """Appends batches of lines to a file, rotating it by size."""

    def __init__(self, path: str | Path, max_bytes: int, backups: int) -> None:
        self.path = Path(path)
        self.max_bytes = max_bytes
        self.backups = backups
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 - held open for the sidecar's life
        self.size = self._file.tell()
        self.errors = 0

    def write(self, lines: list[str]) -> None:
        """Append `lines`, one write call; rotate first when the file is full.

        A disk error is counted and the batch skipped: a full disk must not
        stop the proxy.
        """
        if not lines:
            return
        data = "\n".join(lines) + "\n"
        try:
            if self.size and self.size + len(data) > self.max_bytes:
                self._rotate()
            self._file.write(data)
            self._file.flush()
            self.size += len(data.encode("utf-8")) if not data.isascii() else len(data)
        except OSError:
            self.errors += 1

    def _rotate(self) -> None:
        self._file.close()
        if self.backups > 0:
            for index in range(self.backups - 1, 0, -1):
                older = self.path.with_name(f"{self.path.name}.{index}")
                if older.exists():
                    os.replace(older, self.path.with_name(f"{self.path.name}.{index + 1}"))
            os.replace(self.path, self.path.with_name(f"{self.path.name}.1"))
        else:
            self.path.unlink(missing_ok=True)
        self._file = open(self.path, "a", encoding="utf-8")  # noqa: SIM115
        self.size = 0

    def close(self) -> None:
        try:
            self._file.close()
        except OSError:
            pass
