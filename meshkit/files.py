"""Writing the lab's files so nobody ever reads half of one.

Every file meshkit writes into a lab directory is replaced atomically (temp
file in the same directory, fsync, rename): a launcher polls `control.json`,
apps re-read `dns.json` while the backend rewrites it, `store.json` is the
only copy of the lab's config, and `lab.json` is how a restarted kernel finds
its processes.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any


def write_atomic(path: Path, data: bytes, mode: int = 0o600, durable: bool = True) -> None:
    """Replace `path` with `data` so that readers see the old or the new file, never a mix.

    `durable=False` skips the fsyncs, for files that are cheap to lose in a
    power cut but written often (the per-node ACK status).
    """
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            if durable:
                os.fsync(handle.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp_name)
        raise
    if durable:
        _fsync_dir(path.parent)


def _fsync_dir(directory: Path) -> None:
    """Make the rename itself durable; some filesystems refuse, which is harmless."""
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def write_json_atomic(path: Path, document: Any, mode: int = 0o600, durable: bool = True) -> None:
    """Write `document` as indented JSON: these files are small and people read them."""
    write_atomic(path, (json.dumps(document, indent=2, sort_keys=True) + "\n").encode(), mode, durable)


def read_json_or_none(path: Path) -> Any:
    """The JSON document at `path`, or None when it is missing or unreadable (derived data only)."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
