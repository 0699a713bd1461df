"""From measured numbers to what a reader needs: added latency, targets, tables.

Pure functions of the results document that ``overhead.py`` builds, so the
report can be re-rendered from ``overhead.json`` and checked without running
any load.
"""

from __future__ import annotations

import math
from typing import Any

# Issue 12's targets, reported, not asserted: CPU per request of the sidecar
# pair against the HAProxy pair at saturation (plaintext and mTLS) and in open
# loop at 1000 rps, what access logs add per request, and each sidecar's peak
# resident memory. Each is judged on this checkout's sidecars ("after") and,
# with --baseline, on the earlier commit's ("before").
SATURATION_RATIO_LIMIT = 2.5
OPEN_LOOP_RATIO_LIMIT = 1.8
OPEN_LOOP_RATE = 1000.0
ACCESS_LOG_US_LIMIT = 10.0
SIDECAR_RSS_LIMIT_MB = 32.0
BEFORE = "-before"
LABELS = {
    "direct": "direct",
    "sidecar": "meshkit sidecar pair",
    "haproxy": "HAProxy pair",
    "sidecar-logs": "meshkit sidecar pair, access logs",
    "sidecar-notel": "meshkit sidecar pair, telemetry off",
    "sidecar-mtls": "meshkit sidecar pair, mTLS",
    "haproxy-tls": "HAProxy pair, TLS",
}
# The mTLS column's targets (issue 4), reported, not asserted: at 1000 rps open
# loop, over direct; CPU per request per sidecar; no handshakes in steady runs.
MTLS_RATE = 1000.0
MTLS_ADDED_P50_MS = 1.0
MTLS_ADDED_P99_MS = 2.0
MTLS_CPU_US_PER_SIDECAR = 100.0


def added_latency(open_loop: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each proxied row's percentiles minus direct's at the same rate (ms)."""
    direct = {row["rate"]: row for row in open_loop if row["target"] == "direct"}
    added = []
    for row in open_loop:
        base = direct.get(row["rate"])
        if row["target"] == "direct" or base is None:
            continue
        added.append(
            {
                "target": row["target"],
                "rate": row["rate"],
                **{f"added_{p}_ms": _minus(row.get(f"{p}_ms"), base.get(f"{p}_ms")) for p in ("p50", "p90", "p99")},
            }
        )
    return added


def _minus(a: float | None, b: float | None) -> float | None:
    if a is None or b is None or _nan(a) or _nan(b):
        return None
    return a - b


def _nan(value: object) -> bool:
    return isinstance(value, float) and math.isnan(value)


def label(doc: dict[str, Any], target: str) -> str:
    """A path's name for readers: as the run recorded it (a "before" pair names its commit)."""
    return doc.get("labels", {}).get(target) or LABELS.get(target, target)


def _pair_cpu(rows: list[dict[str, Any]]) -> dict[str, float]:
    return {row["target"]: row["cpu_us_per_request"]["pair"] for row in rows if row["cpu_us_per_request"].get("pair")}


def open_loop_at(doc: dict[str, Any], rate: float) -> tuple[float | None, list[dict[str, Any]]]:
    """The open-loop rows at `rate`, or at the highest rate run if `rate` was not (a --quick run)."""
    rows = doc.get("open_loop", [])
    if not rows:
        return None, []
    at = rate if any(r["rate"] == rate for r in rows) else max(r["rate"] for r in rows)
    return at, [r for r in rows if r["rate"] == at]


def _judged(name: str, limit: float, unit: str, source: str, after: float | None, before: float | None,
            why_not: str) -> dict[str, Any]:  # fmt: skip
    """One target: its value after (this checkout) and before (the baseline), met or missed by how much."""
    met = None if after is None else after <= limit
    missed = "" if after is None or met else f"missed by {after - limit:.2f}{unit} ({(after / limit - 1) * 100:.0f}% over)"
    return {"name": name, "limit": limit, "unit": unit, "source": source if after is not None else why_not,
            "value": after, "before": before, "met": met,
            "met_before": None if before is None else before <= limit, "missed": missed}  # fmt: skip


def _ratio(cpu: dict[str, float], sidecar: str, haproxy: str) -> float | None:
    side, ha = cpu.get(sidecar), cpu.get(haproxy)
    return None if side is None or ha is None else side / ha


def evaluate_targets(doc: dict[str, Any]) -> list[dict[str, Any]]:
    """Issue 12's targets, each with its value after and before, the limit, and whether it was met."""
    out = []
    saturation = _pair_cpu(doc.get("saturation", []))
    why = "wrk not run" if not doc.get("saturation") else "the sidecar or the HAProxy pair not run"
    for suffix, haproxy, what in (("", "haproxy", "plaintext"), ("-mtls", "haproxy-tls", "mTLS")):
        sidecar = "sidecar" + suffix
        out.append(_judged(f"CPU per request at saturation vs HAProxy, {what}", SATURATION_RATIO_LIMIT, "x",
                           "pair vs pair, wrk at saturation", _ratio(saturation, sidecar, haproxy),
                           _ratio(saturation, sidecar + BEFORE, haproxy), why))  # fmt: skip
    rate, rows = open_loop_at(doc, OPEN_LOOP_RATE)
    loop = _pair_cpu(rows)
    source = f"pair vs pair, open loop at {rate:g} rps" + ("" if rate == OPEN_LOOP_RATE else f" ({OPEN_LOOP_RATE:g} not run)")
    out.append(_judged(f"CPU per request in open loop at {OPEN_LOOP_RATE:g} rps vs HAProxy", OPEN_LOOP_RATIO_LIMIT, "x",
                       source, _ratio(loop, "sidecar", "haproxy"), _ratio(loop, "sidecar" + BEFORE, "haproxy"),
                       "the sidecar or the HAProxy pair not run"))  # fmt: skip
    logs = access_log_source(doc)
    out.append(_judged("CPU per request that access logs add", ACCESS_LOG_US_LIMIT, " µs",
                       f"pair with access logs minus the default pair, {logs[0]}; both sidecars write a line",
                       _minus(logs[1].get("sidecar-logs"), logs[1].get("sidecar")),
                       _minus(logs[1].get("sidecar-logs" + BEFORE), logs[1].get("sidecar" + BEFORE)),
                       "no pair with access logs (--telemetry)"))  # fmt: skip
    after, before = sidecar_peaks(doc, before=False), sidecar_peaks(doc, before=True)
    out.append(_judged("resident memory per sidecar (peak)", SIDECAR_RSS_LIMIT_MB, " MB",
                       "the largest peak of the plaintext and mTLS pairs' sidecars",
                       max(after.values(), default=None), max(before.values(), default=None), "no sidecar ran"))  # fmt: skip
    return out


def access_log_source(doc: dict[str, Any]) -> tuple[str, dict[str, float]]:
    """Where the access logs' cost is read, and each path's pair CPU there: saturation if wrk ran
    (the difference of two busy runs, least noise), else the open loop at the highest rate."""
    if doc.get("saturation"):
        return "wrk at saturation", _pair_cpu(doc["saturation"])
    rate, rows = open_loop_at(doc, float("inf"))
    return ("nothing measured", {}) if rate is None else (f"open loop at {rate:g} rps", _pair_cpu(rows))


# The pairs memory is judged on: the default configuration, plaintext and mTLS. The
# --telemetry pairs are left out (an access log's buffer is a choice the
# learner makes), so the figure does not depend on which options ran.
MEMORY_PAIRS = ("sidecar", "sidecar-mtls")


def sidecar_peaks(doc: dict[str, Any], before: bool) -> dict[str, float]:
    """Peak resident memory (MB) by role of the default sidecar pairs: the baseline's or this checkout's."""
    pairs = {name + BEFORE if before else name for name in MEMORY_PAIRS}
    return {
        role: m.get("peak_rss_mb") or m["rss_mb"]
        for target, procs in doc.get("memory", {}).items()
        if target in pairs
        for role, m in procs.items()
        if m.get("peak_rss_mb") or m.get("rss_mb")
    }


def explanation(doc: dict[str, Any], targets: list[dict[str, Any]]) -> str:
    """One paragraph: the measured figures behind the ratios, where the CPU gap lies, and what memory is made of."""
    parts = []
    saturation = {row["target"]: row["cpu_us_per_request"] for row in doc.get("saturation", [])}
    for suffix, haproxy in (("", "haproxy"), ("-mtls", "haproxy-tls")):
        ha = saturation.get(haproxy, {}).get("pair")
        if not ha:
            continue
        figures = [f"{label(doc, name)} {saturation[name]['pair']:.0f} µs ({saturation[name]['pair'] / ha:.1f}x)"
                   for name in ("sidecar" + suffix + BEFORE, "sidecar" + suffix)
                   if saturation.get(name, {}).get("pair")]  # fmt: skip
        if figures:
            parts.append(f"At saturation the {label(doc, haproxy)} spent {ha:.0f} µs of CPU per request; " + "; ".join(figures) + ".")
    side, ha = saturation.get("sidecar", {}), saturation.get("haproxy", {})
    if side.get("pair") and ha.get("pair") and side["pair"] / ha["pair"] > SATURATION_RATIO_LIMIT:
        parts.append(cpu_gap_reason(side, ha))
    memory = doc.get("memory", {})
    for before in (True, False):
        peaks = sidecar_peaks(doc, before)
        if not peaks:
            continue
        role = max(peaks, key=lambda r: peaks[r])
        idle = next(procs[role].get("idle_mb") for procs in memory.values() if role in procs)
        parts.append(
            f"The largest {'baseline ' if before else ''}sidecar ({role}) peaked at {peaks[role]:.1f} MB resident"
            + ("" if idle is None else f", {idle:.1f} MB of it there before the first request (the interpreter and "
               f"the modules the sidecar imports)")  # fmt: skip
            + "."
        )
    if not parts:
        return "Nothing was measured that the targets are judged on."
    return " ".join(parts)


def cpu_gap_reason(side: dict[str, float], ha: dict[str, float]) -> str:
    """Where the sidecars' extra CPU goes, from the user/system split of both pairs."""
    if "pair_user" not in side or "pair_user" not in ha:
        return "No user/system split was recorded, so the gap is not located."
    user_gap = side["pair_user"] - ha["pair_user"]
    system_gap = side["pair_system"] - ha["pair_system"]
    gap = user_gap + system_gap
    text = (
        f"Split by where the time went, the sidecars spent {side['pair_user']:.0f} µs per request in their own "
        f"code (user time) and {side['pair_system']:.0f} µs in the kernel, HAProxy {ha['pair_user']:.0f} and "
        f"{ha['pair_system']:.0f} µs"
    )
    if gap <= 0:
        return text + "."
    text += f": {user_gap / gap * 100:.0f}% of the difference is user time."
    if user_gap > 0:
        text += (
            " In a Python process user time is the interpreter and its C extensions: per request the sidecar "
            "runs Python code for the parser callbacks that collect the head, the route and endpoint decisions, "
            "the header rewriting, the telemetry record and the asyncio write path, where HAProxy runs compiled C "
            "over buffers it reuses; httptools and "
            "uvloop take only the parsing and the event loop out of Python."
        )
    if system_gap > 0:
        text += (
            f" The {system_gap:.0f} µs more kernel time per request points to more system calls per request "
            "than HAProxy makes."
        )
    return text


def mtls_targets(doc: dict[str, Any]) -> list[dict[str, Any]]:
    """The mTLS pair's targets: added p50 and p99 at 1000 rps, CPU per request per sidecar, handshakes in steady runs."""
    rows = [r for r in doc.get("open_loop", []) if r["target"] == "sidecar-mtls"]
    if not rows:
        return []
    at = next((r for r in rows if r["rate"] == MTLS_RATE), max(rows, key=lambda r: r["rate"]))
    source = f"open loop at {at['rate']:g} rps"
    added = next((a for a in added_latency(doc.get("open_loop", [])) if a["target"] == "sidecar-mtls" and a["rate"] == at["rate"]), {})
    out = []
    for key, limit, name in (("added_p50_ms", MTLS_ADDED_P50_MS, "mTLS pair added p50 over direct"),
                             ("added_p99_ms", MTLS_ADDED_P99_MS, "mTLS pair added p99 over direct")):  # fmt: skip
        value = added.get(key)
        out.append(_judged(name, limit, " ms", source, value, None, "no direct row"))
    cpu = at.get("cpu_us_per_request", {})
    per_sidecar = max((v for k, v in cpu.items() if k.startswith("sidecar-mtls-")), default=None)
    name = "mTLS CPU per request per sidecar (the busier one)"
    out.append(_judged(name, MTLS_CPU_US_PER_SIDECAR, " µs", source, per_sidecar, None, "no CPU measured"))
    steady = [r["tls_handshakes"] for r in doc.get("open_loop", []) if r["target"] == "sidecar-mtls" and r.get("tls_handshakes") is not None]
    if steady:
        total = sum(steady)
        wrk = [r["tls_handshakes"] for r in doc.get("saturation", []) if r["target"] == "sidecar-mtls" and r.get("tls_handshakes") is not None]
        note = f"{len(steady)} open-loop runs after a warm-up" + (f"; wrk's 32 connections widened the pools by {sum(wrk)}" if wrk else "")
        out.append({"name": "TLS handshakes during steady runs", "value": float(total), "limit": 0.0, "unit": "",
                    "met": total == 0, "source": note, "missed": "" if total == 0 else f"{total} handshakes"})  # fmt: skip
    return out


def derive(doc: dict[str, Any]) -> dict[str, Any]:
    """The document with added latency, the targets and their paragraph filled in."""
    targets = evaluate_targets(doc)
    return {**doc, "added_latency": added_latency(doc.get("open_loop", [])), "targets": targets,
            "mtls_targets": mtls_targets(doc), "notes": explanation(doc, targets)}  # fmt: skip


# ---------------------------------------------------------------- rendering


def _fmt(value: object, digits: int = 2) -> str:
    if value is None or _nan(value):
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def _table(header: list[str], rows: list[list[str]], markdown: bool) -> list[str]:
    if markdown:
        lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
        return lines + ["| " + " | ".join(row) + " |" for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(header)]
    # First column left-aligned (names), the rest right-aligned (numbers).
    return [
        "  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths))) for r in [header, *rows]
    ]


def open_loop_table(doc: dict[str, Any], markdown: bool) -> list[str]:
    added = {(a["target"], a["rate"]): a for a in doc.get("added_latency", [])}
    header = ["path", "rate/s", "achieved/s", "p50 ms", "p90 ms", "p99 ms", "+p50 ms", "+p99 ms", "errors",
              "CPU µs/req (pair)"]  # fmt: skip
    rows = []
    for row in doc.get("open_loop", []):
        a = added.get((row["target"], row["rate"]), {})
        rows.append(
            [label(doc, row["target"]), f"{row['rate']:g}", _fmt(row.get("rps"), 1), _fmt(row.get("p50_ms")),
             _fmt(row.get("p90_ms")), _fmt(row.get("p99_ms")), _fmt(a.get("added_p50_ms")), _fmt(a.get("added_p99_ms")),
             str(row.get("errors")), _fmt(row["cpu_us_per_request"].get("pair"), 0)]
        )  # fmt: skip
    return _table(header, rows, markdown)


def saturation_table(doc: dict[str, Any], markdown: bool) -> list[str]:
    header = ["path", "requests/s", "p50 ms", "p99 ms", "errors", "CPU µs/req client", "server", "pair", "pair user",
              "pair system"]  # fmt: skip
    rows = []
    for row in doc.get("saturation", []):
        cpu = row["cpu_us_per_request"]
        client = next((v for k, v in cpu.items() if k.endswith("client")), None)
        server = next((v for k, v in cpu.items() if k.endswith("server")), None)
        rows.append(
            [label(doc, row["target"]), _fmt(row["rps"], 0), _fmt(row.get("p50_ms")), _fmt(row.get("p99_ms")),
             str(row["errors"]), _fmt(client, 0), _fmt(server, 0), _fmt(cpu.get("pair"), 0),
             _fmt(cpu.get("pair_user"), 0), _fmt(cpu.get("pair_system"), 0)]
        )  # fmt: skip
    return _table(header, rows, markdown)


def memory_table(doc: dict[str, Any], markdown: bool) -> list[str]:
    header = ["path", "process", "idle MB", "after load MB", "peak MB"]
    rows = [
        [label(doc, target), role.rsplit("-", 1)[-1], _fmt(m.get("idle_mb"), 1), _fmt(m.get("rss_mb"), 1),
         _fmt(m.get("peak_rss_mb"), 1)]
        for target, procs in doc.get("memory", {}).items()
        for role, m in procs.items()
    ]  # fmt: skip
    return _table(header, rows, markdown)


def targets_lines(doc: dict[str, Any], key: str = "targets") -> list[str]:
    """One line per target: before (with a baseline) and after, the limit, met or by how much missed."""
    lines = []
    for t in doc.get(key, []):
        if t["met"] is None:
            verdict = f"not judged ({t['source']})"
        else:
            verdict = ("met" if t["met"] else t["missed"]) + f" [{t['source']}]"
        value = "-" if t["value"] is None else f"{t['value']:.2f}{t['unit']}"
        if t.get("before") is not None:
            value = f"before {t['before']:.2f}{t['unit']} ({'met' if t['met_before'] else 'missed'}), after {value}"
        lines.append(f"- {t['name']}: {value} (target <= {t['limit']:g}{t['unit']}): {verdict}")
    return lines


# What each --telemetry comparison subtracts: (with, without, what it costs).
TELEMETRY_PAIRS = (
    ("sidecar-logs", "sidecar", "access logs"),
    ("sidecar-logs" + BEFORE, "sidecar" + BEFORE, "access logs"),
    ("sidecar", "sidecar-notel", "metrics"),
)


def telemetry_cost(doc: dict[str, Any]) -> list[dict[str, Any]]:
    """What telemetry adds to the sidecar pair, per open-loop rate and at saturation: the pair
    writing access logs minus the default pair (metrics only), and the default pair minus the
    pair with telemetry off; for the baseline's pairs too when they ran."""
    out = []
    runs = [(f"open loop {row['rate']:g}/s", row) for row in doc.get("open_loop", [])]
    runs += [("saturation", row) for row in doc.get("saturation", [])]
    for with_, without, what in TELEMETRY_PAIRS:
        for kind, row in runs:
            if row["target"] != with_:
                continue
            base = next((r for k, r in runs if k == kind and r["target"] == without), None)
            if base is None:
                continue
            lines = row.get("access_log_lines")
            out.append({
                "run": kind, "telemetry": what + (f" (before, {doc['settings']['baseline']['commit']})" if with_.endswith(BEFORE) else ""),
                "cpu_us_with": row["cpu_us_per_request"].get("pair"), "cpu_us_without": base["cpu_us_per_request"].get("pair"),
                "cpu_us_added": _minus(row["cpu_us_per_request"].get("pair"), base["cpu_us_per_request"].get("pair")),
                "p50_added_ms": _minus(row.get("p50_ms"), base.get("p50_ms")),
                "p99_added_ms": _minus(row.get("p99_ms"), base.get("p99_ms")),
                "rps_with": row.get("rps"), "rps_without": base.get("rps"),
                # Lines per request carried: 2.0 when both sidecars logged every request.
                "log_lines_per_request": None if lines is None else lines / max(1, row.get("requests") or row.get("count") or 0),
            })  # fmt: skip
    return out


def telemetry_table(doc: dict[str, Any], markdown: bool) -> list[str]:
    header = ["run", "cost of", "CPU µs/req with", "without", "added", "+p50 ms", "+p99 ms", "req/s with", "without",
              "log lines/req"]  # fmt: skip
    rows = [
        [c["run"], c["telemetry"], _fmt(c["cpu_us_with"], 0), _fmt(c["cpu_us_without"], 0), _fmt(c["cpu_us_added"], 1),
         _fmt(c["p50_added_ms"]), _fmt(c["p99_added_ms"]), _fmt(c["rps_with"], 0), _fmt(c["rps_without"], 0),
         _fmt(c["log_lines_per_request"])]
        for c in telemetry_cost(doc)
    ]  # fmt: skip
    return _table(header, rows, markdown)


def telemetry_micro_lines(doc: dict[str, Any]) -> list[str]:
    micro = doc.get("telemetry_micro")
    if not micro:
        return []
    if "error" in micro or not {"record_ns", "record_no_export_ns", "log_line_ns", "log_line_bytes"} <= micro.keys():
        return [f"- telemetry_micro.py did not give its figures: {micro.get('error') or sorted(micro)}"]
    return [
        f"- on the request's path, `Telemetry.record` (counters, three histograms, ring, export buffer): "
        f"{micro['record_ns'] / 1000:.2f} µs per request ({micro['record_no_export_ns'] / 1000:.2f} µs without the export buffer)",
        f"- off the request's path, the exporter's access-log line (also the record pushed to the control plane): "
        f"{micro['log_line_ns'] / 1000:.2f} µs and {micro['log_line_bytes']:.0f} bytes per request",
    ]


def text_report(doc: dict[str, Any]) -> str:
    """What the terminal shows at the end of a run."""
    out = [f"upstream: {doc['upstream']}", "", "open loop (meshkit.loadgen, latency from intended send):"]
    out += open_loop_table(doc, markdown=False)
    if doc.get("saturation"):
        wrk = doc["settings"]["wrk"]
        out += ["", f"saturation (wrk -t{wrk['threads']} -c{wrk['connections']} -d{wrk['duration_s']:g}s):"]
        out += saturation_table(doc, markdown=False)
    if doc.get("memory"):
        out += ["", "resident memory:"] + memory_table(doc, markdown=False)
    if telemetry_cost(doc):
        out += ["", "telemetry cost (access logs: the pair writing them minus the default pair; metrics: the default pair minus telemetry off):"]
        out += telemetry_table(doc, markdown=False) + telemetry_micro_lines(doc)
    out += ["", "targets (issue 12):"] + targets_lines(doc)
    if doc.get("mtls_targets"):
        out += ["", "mTLS targets (issue 4):"] + targets_lines(doc, "mtls_targets")
    return "\n".join(out)


def markdown_report(doc: dict[str, Any]) -> str:
    """benchmarks/results/overhead.md: the tables, the machine, the targets and why."""
    settings = doc["settings"]
    out = [
        "# meshkit sidecar overhead",
        "",
        "Written by `benchmarks/overhead.py`; see `benchmarks/README.md` for what each number means.",
        "",
        f"Upstream: {doc['upstream']}. Open loop: `python -m meshkit.loadgen` at each rate for "
        f"{settings['duration_s']:g} s, latency from the intended send time; `+p50`/`+p99` are the path's "
        "percentiles minus direct's at the same rate.",
        "",
        "## Latency at a fixed rate",
        "",
        *open_loop_table(doc, markdown=True),
    ]
    if doc.get("saturation"):
        wrk = settings["wrk"]
        out += ["", f"## Saturation (wrk, {wrk['threads']} threads, {wrk['connections']} connections, "
                f"{wrk['duration_s']:g} s)", "", *saturation_table(doc, markdown=True)]  # fmt: skip
    if doc.get("memory"):
        out += ["", "## Resident memory", "", *memory_table(doc, markdown=True)]
    if telemetry_cost(doc):
        out += ["", "## Telemetry cost", "",
                "With `--telemetry`: the sidecar pair writing access logs minus the default pair (metrics, no access "
                "log), and the default pair minus the pair with telemetry off: CPU per request of the pair, and latency "
                "at the same rate. Log lines per request is 2.00 when both sidecars logged every request (the logs are "
                "flushed around each run, so a run pays for its own lines).", "",
                *telemetry_table(doc, markdown=True), "", "In process, per request:", "",
                *telemetry_micro_lines(doc)]  # fmt: skip
    baseline = settings.get("baseline")
    out += ["", "## Targets", "",
            "Issue 12's targets, reported, not asserted" + (
                f"; *before* is the sidecars of {baseline['commit']} (`--baseline {baseline['ref']}`), *after* this "
                "checkout's, in the same run" if baseline else "") + ":", "",
            *targets_lines(doc), "", doc["notes"]]  # fmt: skip
    if doc.get("mtls_targets"):
        out += ["", "## mTLS", "",
                "The mTLS pair is the same sidecar pair with certificates from one CA (`static_identity`) and the "
                "upstream endpoint marked as a sidecar, so auto mTLS dials it with mutual TLS 1.3 and checks its "
                "SPIFFE ID; the HAProxy TLS pair runs mutual TLS 1.3 with the same kind of certificates "
                "(`verify required` on both ends). Handshakes are the sidecars' own counters (/certs) read around "
                "each run, after a warm-up at the run's rate. Targets from issue 4 (this checkout's pair), reported, "
                "not asserted:", "",
                *targets_lines(doc, "mtls_targets")]  # fmt: skip
    out += ["", "## Machine", ""]
    out += _table(["", ""], [[k, str(v)] for k, v in doc["machine"].items()], markdown=True)
    return "\n".join(out) + "\n"
