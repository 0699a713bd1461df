"""Reading the sidecars' own numbers: what the mesh observed, edge by edge.

Each sidecar exposes Istio-named metrics at /stats/prometheus. Scraping them
(as Prometheus would) and folding the samples into edges is kept as two steps:
the scrape is I/O, the folding is a pure function over samples. The Lab's
tables come from the request records the control plane gathers
(meshkit.observe); this scrape is the fallback when the control plane is
away, and `flush` asks the sidecars to deliver their records now.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import httpx
import pandas as pd
from prometheus_client.parser import text_string_to_metric_families

from meshkit.sidecar.telemetry import DRY_RUN


@dataclass(frozen=True)
class Sample:
    """One value of meshkit_requests_total with its labels."""

    labels: dict[str, str]
    value: float


async def scrape(admin_urls: Sequence[str], timeout_s: float = 2.0) -> list[Sample]:
    """meshkit_requests_total samples from every sidecar that answers.

    A sidecar that does not answer (restarting, just removed) is skipped: the
    edges then show what the others saw, which is what a Prometheus scrape
    would show too.
    """
    async with httpx.AsyncClient(timeout=timeout_s, trust_env=False) as http:
        answers = await asyncio.gather(*(http.get(f"{u}/stats/prometheus") for u in admin_urls), return_exceptions=True)
    samples: list[Sample] = []
    for answer in answers:
        if isinstance(answer, httpx.Response) and answer.status_code == 200:
            samples += parse_requests_total(answer.text)
    return samples


async def scrape_dry_run(admin_urls: Sequence[str], timeout_s: float = 2.0) -> dict[str, dict[tuple[str, str], int]]:
    """Each answering sidecar's dry-run verdict counters, by admin URL (see `parse_dry_run`)."""
    async with httpx.AsyncClient(timeout=timeout_s, trust_env=False) as http:
        answers = await asyncio.gather(*(http.get(f"{u}/stats/prometheus") for u in admin_urls), return_exceptions=True)
    return {
        url: parse_dry_run(answer.text)
        for url, answer in zip(admin_urls, answers, strict=True)
        if isinstance(answer, httpx.Response) and answer.status_code == 200
    }


def parse_dry_run(text: str) -> dict[tuple[str, str], int]:
    """Dry-run AuthorizationPolicy verdicts from a sidecar's exposition, by (authz_dry_run_action,
    authz_dry_run_result): {("deny", "denied"): 12, ...}, Istio's labels on Envoy's shadow stats."""
    found: dict[tuple[str, str], int] = {}
    for family in text_string_to_metric_families(text):
        if family.name != DRY_RUN:
            continue
        for sample in family.samples:
            if sample.name in (DRY_RUN, f"{DRY_RUN}_total"):  # the parser names counter samples _total
                key = (sample.labels.get("authz_dry_run_action", ""), sample.labels.get("authz_dry_run_result", ""))
                found[key] = found.get(key, 0) + int(sample.value)
    return found


async def flush(admin_urls: Sequence[str], token: str | None = None, timeout_s: float = 8.0) -> dict[str, dict[str, object]]:
    """Ask every sidecar to log and push what it recorded, now (POST /telemetry/flush).

    Returns each answering sidecar's exporter status by admin URL; a sidecar
    that does not answer is left out (its records arrive with its next
    periodic flush, or are counted as lost).
    """
    headers = {} if token is None else {"authorization": f"Bearer {token}"}  # the lab's admin token
    async with httpx.AsyncClient(timeout=timeout_s, trust_env=False, headers=headers) as http:
        answers = await asyncio.gather(*(http.post(f"{u}/telemetry/flush") for u in admin_urls), return_exceptions=True)
    found: dict[str, dict[str, object]] = {}
    for url, answer in zip(admin_urls, answers, strict=True):
        if isinstance(answer, httpx.Response) and answer.status_code == 200:
            try:
                found[url] = answer.json()
            except ValueError:
                continue
    return found


def parse_requests_total(text: str) -> list[Sample]:
    found = []
    for family in text_string_to_metric_families(text):
        if family.name not in ("meshkit_requests", "meshkit_requests_total"):
            continue
        for sample in family.samples:
            if sample.name == "meshkit_requests_total":
                found.append(Sample(dict(sample.labels), float(sample.value)))
    return found


EDGE_COLUMNS = ["source", "destination", "requests", "success_rate", "security", "reporter"]


def edges(samples: Iterable[Sample]) -> pd.DataFrame:
    """Fold request counters into one row per (source workload, destination service).

    The destination's sidecar is the better witness (it saw the request
    arrive, and how it was secured), so its counts are used where it exists;
    the source's counts stand in for destinations without a sidecar.
    """
    by_reporter: dict[str, dict[tuple[str, str], dict[str, float | set[str]]]] = {"destination": {}, "source": {}}
    for sample in samples:
        labels = sample.labels
        reporter = labels.get("reporter", "")
        if reporter not in by_reporter:
            continue
        key = (labels.get("source_workload", "unknown"), labels.get("destination_service", "unknown"))
        edge = by_reporter[reporter].setdefault(key, {"requests": 0.0, "ok": 0.0, "security": set()})
        edge["requests"] += sample.value  # type: ignore[operator]
        if labels.get("response_code", "").startswith(("2", "3")):
            edge["ok"] += sample.value  # type: ignore[operator]
        edge["security"].add(labels.get("connection_security_policy", "unknown"))  # type: ignore[union-attr]
    rows = []
    for reporter in ("destination", "source"):
        for (source, destination), edge in by_reporter[reporter].items():
            if reporter == "source" and (source, destination) in by_reporter["destination"]:
                continue
            requests = float(edge["requests"])  # type: ignore[arg-type]
            rows.append(
                {
                    "source": source,
                    "destination": destination,
                    "requests": int(requests),
                    "success_rate": float(edge["ok"]) / requests if requests else float("nan"),  # type: ignore[arg-type]
                    "security": security_word(edge["security"]),  # type: ignore[arg-type]
                    "reporter": reporter,
                }
            )
    frame = pd.DataFrame(rows, columns=EDGE_COLUMNS)
    return frame.sort_values(["source", "destination"], ignore_index=True)


def security_word(policies: set[str]) -> str:
    """mutual_tls, none, or mixed: how Kiali colours an edge."""
    if len(policies) == 1:
        return next(iter(policies))
    return "mixed" if policies else "unknown"
