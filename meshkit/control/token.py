"""The control plane's admin token, kept across restarts."""

from __future__ import annotations

import secrets
from pathlib import Path

from meshkit.files import write_atomic


def load_or_create_token(path: Path) -> str:
    """The admin token, created once and kept so a restarted control plane keeps its clients."""
    try:
        token = path.read_text(encoding="ascii").strip()
    except FileNotFoundError:
        token = ""
    if token:
        return token
    token = secrets.token_urlsafe(32)
    write_atomic(path, (token + "\n").encode("ascii"))
    return token
