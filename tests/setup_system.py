"""System packages the test suite needs, installed by the project itself.

CI runs on a fresh machine with only what the project installs. Each entry is
(command that must exist, or a file pattern starting with "/" that must
match, Debian package that provides it). Nothing is
installed when everything is already there; when something is missing and
apt-get is unavailable, the line printed says what to install by hand.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import sys

NEEDED: list[tuple[str, str]] = [
    ("openssl", "openssl"),
    ("curl", "curl"),
    # A real Prometheus scrapes a lab and answers Istio's PromQL
    # (tests/integration/test_observability_prometheus.py; skipped without it).
    ("prometheus", "prometheus"),
    # The real browser test (tests/browser): Debian's Chromium, driven by Playwright's
    # Python package, whose bundled node driver links these two libraries; fonts so the
    # screenshots read (text, and the lock marks on the topology's edges).
    ("chromium", "chromium"),
    ("/usr/lib/*/libatomic.so.1", "libatomic1"),
    ("/usr/lib/*/libstdc++.so.6", "libstdc++6"),
    ("/usr/share/fonts/truetype/liberation", "fonts-liberation"),
    ("/usr/share/fonts/truetype/noto/NotoColorEmoji.ttf", "fonts-noto-color-emoji"),
]


def present(check: str) -> bool:
    return bool(glob.glob(check)) if check.startswith("/") else shutil.which(check) is not None


def missing() -> list[str]:
    return [package for check, package in NEEDED if not present(check)]


def main() -> int:
    packages = missing()
    if not packages:
        return 0
    if shutil.which("apt-get") is None or os.geteuid() != 0:
        print(f"tests need these system packages: {' '.join(packages)} (install them, then run again)", file=sys.stderr)
        return 1
    print(f"installing system packages for the tests: {' '.join(packages)}", file=sys.stderr)
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
    subprocess.run(["apt-get", "install", "-y", "-qq", *packages], check=True, env=env)
    return 0


if __name__ == "__main__":
    sys.exit(main())
