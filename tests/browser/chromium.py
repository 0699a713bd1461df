"""Debian's Chromium, driven by Playwright: found, checked and launched the way this project needs.

Playwright never downloads a browser here: it launches the system Chromium
(the `chromium` package, which tests/setup_system.py installs) by its path,
headless, with background networking off (the machine has no network, and
Chromium's own update, sync and field-trial connections would only fail),
in a fresh profile folder.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

FLAGS = [
    "--no-sandbox",  # the tests may run as root, where Chromium's sandbox refuses to start
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",  # containers often have a tiny /dev/shm
]


def chromium_path() -> str | None:
    """MESHKIT_CHROMIUM if set, else Debian's /usr/bin/chromium (or `chromium` on PATH)."""
    configured = os.environ.get("MESHKIT_CHROMIUM")
    if configured:
        return configured if Path(configured).exists() else None
    for candidate in ("/usr/bin/chromium", shutil.which("chromium")):
        if candidate and Path(candidate).exists():
            return candidate
    return None


def require_chromium() -> str:
    """The browser's path, or skip with the reason when it is not installed."""
    path = chromium_path()
    if path is None:
        pytest.skip("Chromium is not installed: tests/setup_system.py installs Debian's chromium package, "
                    "which needs apt-get and root (run `python tests/setup_system.py` as root, or set MESHKIT_CHROMIUM)")
    return path


def starts_by_itself(path: str, profile: Path) -> tuple[bool, str]:
    """Whether Chromium alone (no Playwright) renders a blank page headless: tells a broken
    machine (missing libraries, no /dev/shm) from a problem in how the test launches it."""
    try:
        done = subprocess.run(
            [path, "--headless", *FLAGS, f"--user-data-dir={profile}", "--dump-dom", "about:blank"],
            capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return False, f"{type(exc).__name__}: {exc}"
    return done.returncode == 0 and "<html" in done.stdout, (done.stderr or "")[-1500:]
