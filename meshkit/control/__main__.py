"""`python -m meshkit.control --home DIR [--port P]`: run the control plane.

Setup problems (port taken, home not writable, non-loopback host, damaged
store) end the process with status 1 and one line on stderr, which the
launcher shows to the learner as is.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path

from meshkit.control.otlp import BadEndpoint, traces_url
from meshkit.control.push import DEFAULT_DEBOUNCE_S
from meshkit.security.ca import DEFAULT_LEAF_LIFETIME, MAX_LEAF_LIFETIME, MIN_LEAF_LIFETIME
from meshkit.control.server import DEFAULT_HOST, serve
from meshkit.errors import MeshkitError


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m meshkit.control", description="Run the meshkit control plane.")
    parser.add_argument("--home", required=True, type=Path, help="lab home directory (control.json, store.json)")
    parser.add_argument("--port", type=int, default=0, help="port to listen on; 0 picks a free one (default)")
    parser.add_argument("--host", default=DEFAULT_HOST, help="loopback address to bind (default 127.0.0.1)")
    parser.add_argument(
        "--cert-lifetime",
        type=float,
        default=DEFAULT_LEAF_LIFETIME.total_seconds(),
        help="lifetime of workload certificates in seconds, 60 to 7776000 (default 86400: 24 h)",
    )
    parser.add_argument(
        "--debounce-ms",
        type=float,
        default=DEFAULT_DEBOUNCE_S * 1000,
        help="coalesce changes this close together into one push (default 5)",
    )
    parser.add_argument(
        "--otlp-endpoint",
        default=otlp_endpoint_from_env(os.environ),
        help="send every span to this OpenTelemetry collector (OTLP/HTTP, e.g. http://127.0.0.1:4318); "
        "default: $OTEL_EXPORTER_OTLP_TRACES_ENDPOINT or $OTEL_EXPORTER_OTLP_ENDPOINT, else no export",
    )
    args = parser.parse_args(argv)
    if not 0 <= args.port <= 65535:
        parser.error(f"--port {args.port} is not a port number (0-65535)")
    if not MIN_LEAF_LIFETIME.total_seconds() <= args.cert_lifetime <= MAX_LEAF_LIFETIME.total_seconds():
        parser.error(f"--cert-lifetime {args.cert_lifetime:g} must be between 60 s and 90 days")
    if not 0 <= args.debounce_ms <= 10_000:
        parser.error(f"--debounce-ms {args.debounce_ms} must be between 0 and 10000")
    if args.otlp_endpoint:
        try:
            traces_url(args.otlp_endpoint)
        except BadEndpoint as exc:
            parser.error(f"--otlp-endpoint (or $OTEL_EXPORTER_OTLP_ENDPOINT): {exc}")
    return args


def otlp_endpoint_from_env(environ: Mapping[str, str]) -> str | None:
    """OpenTelemetry's own variables: the traces endpoint as is, else the base endpoint."""
    return environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") or None


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        serve(
            args.home.expanduser().absolute(),
            args.port,
            args.host,
            args.debounce_ms / 1000.0,
            timedelta(seconds=args.cert_lifetime),
            args.otlp_endpoint,
        )
    except MeshkitError as exc:
        print(f"meshkit.control: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
