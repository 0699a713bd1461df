"""Downstream calls: one shared keep-alive HTTP client, two ways out.

Injected (HTTP_PROXY set by the backend): every call goes to the sidecar in
absolute form, `GET http://ratings:9080/ratings/0`, and the sidecar decides
where it lands. The proxy is taken from the environment once and handed to
httpx explicitly rather than through `trust_env`, so a stray NO_PROXY cannot
quietly route a call around the mesh.

Not injected: the service name is looked up in the resolver file (the local
stand-in for cluster DNS), the connection goes straight to that address, and
the Host header still says `ratings:9080`, as it would after DNS.

Each attempt is bounded as a whole (connect, send, wait, read) by the call's
timeout, as a learner reads "3 s timeout"; failed attempts are retried at
once, as Bookinfo's productpage does.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from meshkit.demo.calls import CallResult, should_retry
from meshkit.demo.paths import fill_path
from meshkit.demo.resolver import Resolver
from meshkit.demo.spec import CallSpec
from meshkit.errors import ConfigError, MeshkitError

# Shorter than any server's idle timeout we talk to (uvicorn's and the
# sidecar's), so the client drops an idle connection before the server does
# and never reuses one the server is closing.
KEEPALIVE_EXPIRY_S = 4.0
MAX_CONNECTIONS = 512
BODY_TEXT_LIMIT = 500


def proxy_from_environ(environ: Mapping[str, str]) -> str | None:
    """The sidecar's address when this workload is injected, else None."""
    return environ.get("HTTP_PROXY") or environ.get("http_proxy") or None


@dataclass(frozen=True)
class Target:
    """Where one attempt goes: the URL httpx sends to and the Host it names."""

    url: str
    host_header: str | None
    address: str | None


def plan_target(call: CallSpec, path: str, *, proxied: bool, resolver: Resolver | None) -> Target:
    """Decide where an attempt goes; raises MeshkitError when it cannot go anywhere."""
    authority = f"{call.service}:{call.port}"
    if proxied:
        return Target(url=f"http://{authority}{path}", host_header=None, address=None)
    if resolver is None:
        raise ConfigError("demo app spec", call.service, "resolver",
                          "no sidecar (HTTP_PROXY unset) and no resolver file: the call cannot be routed")
    address, port = resolver.resolve(call.service)
    shown = f"[{address}]:{port}" if ":" in address else f"{address}:{port}"
    return Target(url=f"http://{shown}{path}", host_header=authority, address=shown)


def _decode(response: httpx.Response) -> Any:
    if "json" in response.headers.get("content-type", ""):
        try:
            return response.json()
        except ValueError:
            pass
    return response.text[:BODY_TEXT_LIMIT]


@dataclass(frozen=True)
class _Attempt:
    status: int | None
    body: Any
    error: str | None
    address: str | None


class Downstream:
    """The app's outbound side; create once per process, close on shutdown."""

    def __init__(self, *, proxy: str | None, resolver: Resolver | None) -> None:
        self.proxied = proxy is not None
        self.resolver = resolver
        try:
            self._client = httpx.AsyncClient(
                proxy=proxy,
                trust_env=False,
                timeout=None,
                limits=httpx.Limits(max_connections=MAX_CONNECTIONS,
                                    max_keepalive_connections=MAX_CONNECTIONS,
                                    keepalive_expiry=KEEPALIVE_EXPIRY_S),
            )
        except (ValueError, TypeError, httpx.InvalidURL) as exc:
            raise ConfigError("environment", "HTTP_PROXY", "", f"{proxy!r} is not a proxy URL: {exc}") from exc

    async def aclose(self) -> None:
        """Close pooled connections."""
        await self._client.aclose()

    async def _attempt(self, call: CallSpec, path: str, headers: list[tuple[str, str]]) -> _Attempt:
        address: str | None = None
        try:
            target = plan_target(call, path, proxied=self.proxied, resolver=self.resolver)
            address = target.address
            sent = headers if target.host_header is None else [*headers, ("host", target.host_header)]
            async with asyncio.timeout(call.timeout_s):
                response = await self._client.get(target.url, headers=sent)
            return _Attempt(response.status_code, _decode(response), None, address)
        except (TimeoutError, httpx.TimeoutException):
            return _Attempt(None, None, f"timed out after {call.timeout_s:g} s", address)
        except httpx.ConnectError as exc:
            return _Attempt(None, None, f"cannot connect: {exc or type(exc).__name__}", address)
        except httpx.HTTPError as exc:
            return _Attempt(None, None, f"{type(exc).__name__}: {exc}", address)
        except MeshkitError as exc:
            return _Attempt(None, None, str(exc), address)

    async def call(self, call: CallSpec, product_id: str, headers: list[tuple[str, str]]) -> CallResult:
        """Make one call with its retries; never raises for a failed call."""
        path = fill_path(call.path, product_id)
        started = time.perf_counter()
        attempts = 0
        attempt = _Attempt(None, None, "not attempted", None)
        while attempts <= call.retries:
            attempts += 1
            attempt = await self._attempt(call, path, headers)
            if not should_retry(attempt.status, attempt.error):
                break
        return CallResult(
            service=call.service,
            url=f"http://{call.service}:{call.port}{path}",
            address=attempt.address,
            status=attempt.status,
            body=attempt.body,
            error=attempt.error,
            attempts=attempts,
            duration_ms=(time.perf_counter() - started) * 1000.0,
        )
