"""`python -m meshkit.sidecar --bootstrap FILE`: run one sidecar until SIGTERM.

Exit status: 0 after a clean shutdown, 2 when the bootstrap or its static
snapshot is invalid, 1 when a port cannot be bound. Errors are one line on
stderr, never a traceback.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path

from meshkit.errors import ConfigError, PortInUse
from meshkit.sidecar.bootstrap import load_bootstrap
from meshkit.sidecar.runtime import Sidecar


# glibc's mallopt parameters (malloc.h) and the values a sidecar uses: freed
# blocks above 128 KiB at the top of the heap go back to the system, and
# buffers of 64 KiB and more get their own mapping, returned whole when freed.
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
TRIM_THRESHOLD_BYTES = 128 * 1024
MMAP_THRESHOLD_BYTES = 64 * 1024


def _return_freed_memory() -> None:
    """Make glibc give memory back once connections' buffers are freed.

    With glibc's defaults a sidecar's resident memory creeps up under
    connection churn while its Python heap does not grow: the allocator keeps
    freed blocks, and its dynamic mmap threshold rises after the first large
    buffer is freed. Measured with benchmarks/soak.py (200 rps, 10 min,
    connections opening and closing): +4.3 MB after the first minute with
    the defaults, +0.05 MB with these fixed thresholds
    (benchmarks/results/soak.md). MALLOC_TRIM_THRESHOLD_ or MALLOC_MMAP_THRESHOLD_
    in the environment win (glibc reads them at start); elsewhere than glibc
    this does nothing.
    """
    if not sys.platform.startswith("linux") or "MALLOC_TRIM_THRESHOLD_" in os.environ or "MALLOC_MMAP_THRESHOLD_" in os.environ:
        return
    import ctypes  # only here: 0.4 MB that a platform without glibc need not pay

    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return
    mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES)
    mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES)


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop when it is installed: the same code, a faster event loop."""
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


USAGE = "usage: python -m meshkit.sidecar --bootstrap FILE"
HELP = f"""{USAGE}

Run a meshkit sidecar proxy.

  --bootstrap FILE  bootstrap JSON file (docs/internals.md)"""


def parse_command_line(argv: list[str]) -> Path | str | None:
    """The bootstrap file, None for --help, or what is wrong with the command line.

    One option is all a sidecar takes; argparse would cost every sidecar of
    a lab a third of a megabyte (it imports gettext and textwrap).
    """
    if any(arg in ("-h", "--help") for arg in argv):
        return None
    values: list[str] = []
    rest = list(argv)
    while rest:
        arg = rest.pop(0)
        if arg == "--bootstrap":
            if not rest:
                return "--bootstrap needs a FILE"
            values.append(rest.pop(0))
        elif arg.startswith("--bootstrap="):
            values.append(arg.partition("=")[2])
        else:
            return f"unexpected argument {arg!r}"
    if not values:
        return "--bootstrap FILE is required"
    if len(values) > 1:
        return "--bootstrap is given more than once"
    if not values[0]:
        return "--bootstrap needs a FILE"
    return Path(values[0])


def main(argv: list[str] | None = None) -> int:
    _return_freed_memory()
    parsed = parse_command_line(sys.argv[1:] if argv is None else argv)
    if parsed is None:
        print(HELP)
        return 0
    if isinstance(parsed, str):
        print(f"{USAGE}\nmeshkit sidecar: {parsed}", file=sys.stderr)
        return 2
    try:
        bootstrap = load_bootstrap(parsed)
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
