"""System packages the test suite needs, installed by the project itself.

CI runs on a fresh machine with only what the project installs. Each entry is
(command that must exist, Debian package that provides it). Nothing is
installed when everything is already there; when something is missing and
apt-get is unavailable, the line printed says what to install by hand.
"""

from __future__ import annotations

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
]


def missing() -> list[str]:
    return [package for command, package in NEEDED if shutil.which(command) is None]


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
