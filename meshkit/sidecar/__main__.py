"""`python -m meshkit.sidecar --bootstrap FILE`: run one sidecar until SIGTERM.

Exit status: 0 after a clean shutdown, 2 when the bootstrap or its static
snapshot is invalid, 1 when a port cannot be bound. Errors are one line on
stderr, never a traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Callable
from pathlib import Path

from meshkit.errors import ConfigError, PortInUse
from meshkit.sidecar.bootstrap import load_bootstrap
from meshkit.sidecar.runtime import Sidecar


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop when it is installed: the same code, a faster event loop."""
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m meshkit.sidecar", description="Run a meshkit sidecar proxy.")
    parser.add_argument("--bootstrap", required=True, type=Path, help="bootstrap JSON file (docs/internals.md)")
    args = parser.parse_args(argv)
    try:
        bootstrap = load_bootstrap(args.bootstrap)
    except ConfigError as exc:
        print(f"meshkit sidecar: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(
        stream=sys.stderr,
        level=logging.INFO,
        format=f"%(asctime)s sidecar {bootstrap.node}: %(message)s",
    )
    sidecar_log = logging.getLogger("meshkit.sidecar")
    with asyncio.Runner(loop_factory=_loop_factory()) as runner:
        try:
            runner.run(Sidecar(bootstrap).run())
        except ConfigError as exc:
            sidecar_log.error("static snapshot rejected: %s", exc)
            return 2
        except PortInUse as exc:
            sidecar_log.error("%s", exc)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
