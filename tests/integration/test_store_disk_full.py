"""Disk full (HARDENING: ENOSPC): a store write that fails changes nothing, and the next one works.

The control plane's store sits on a 1 MiB tmpfs, nearly filled, in a mount
namespace of its own (`unshare`), so the failure is the kernel's real
ENOSPC, not a patched function. The lab's logs, certificates and
telemetry stay on the ordinary disk (bind mounts): what is under test is the
store's write.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.integration.disk_full_scenario import ROOM_BYTES

REPO = Path(__file__).resolve().parents[2]
# The home's directories that stay on the big disk; its top-level files (store.json, lab.json,
# control.json, the journal) are on the small filesystem.
BIG_DIRS = ("logs", "run", "ca", "telemetry")


def namespace_command(home: Path, big: Path) -> list[str] | str:
    """The command that runs the scenario with `home` on a small tmpfs, or why it cannot run here."""
    unshare = shutil.which("unshare")
    mount = shutil.which("mount")
    if unshare is None or mount is None:
        return "needs util-linux's unshare and mount to make a small filesystem"
    binds = " && ".join(
        f"mkdir -p {big / d} {home / d} && mount --bind {big / d} {home / d}" for d in BIG_DIRS
    )
    script = (f"mount -t tmpfs -o size=1m meshkit-disk-full {home} && {binds} && "
              f"exec {sys.executable} -m tests.integration.disk_full_scenario {home}")
    probe = subprocess.run([unshare, "-Urm", mount, "-t", "tmpfs", "-o", "size=64k", "probe", str(big)],
                           capture_output=True, text=True, timeout=30)
    if probe.returncode != 0:
        return f"cannot make a mount namespace here (unshare -Urm: {probe.stderr.strip()})"
    return [unshare, "-Urm", "sh", "-c", script]


@pytest.fixture
def seen(tmp_path: Path) -> dict[str, Any]:
    home, big = tmp_path / "home", tmp_path / "big"
    home.mkdir()
    big.mkdir()
    command = namespace_command(home, big)
    if isinstance(command, str):
        pytest.skip(command)
    result = subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=REPO, stdin=subprocess.DEVNULL)
    assert result.returncode == 0, f"the scenario failed:\n{result.stdout}\n{result.stderr[-4000:]}"
    return dict(json.loads(result.stdout.strip().splitlines()[-1]))


def test_a_store_write_failing_with_enospc_changes_nothing_and_the_next_write_succeeds(seen: dict[str, Any]) -> None:
    # A clear error: what failed, where, and why.
    error = seen["error"]
    assert error is not None, "the change did not fit on the disk, yet the apply succeeded"
    assert f"store.json is full (No space left on device); nothing changed (the lab still runs config version {seen['version_before']}); " \
        "free some space and apply again" in error, error
    assert "Traceback" not in error
    # Nothing changed: the version, the config, and no temporary file left taking space.
    assert seen["version_after_failure"] == seen["version_before"]
    assert seen["names_after_failure"] == ["small"]
    assert seen["leftover_temp_files"] == []
    # The sidecars kept serving through it.
    assert seen["call_before"] == 200 and seen["calls_after_failure"] == [200] * 5
    # With room again, the same change is stored, pushed and ACKed by every sidecar.
    assert seen["version_after_retry"] == seen["version_before"] + 1
    assert seen["names_after_retry"] == ["big", "small"]
    assert seen["acked_after_retry"] == [seen["version_after_retry"]]
    assert seen["call_after_retry"] == 200


def test_the_room_left_is_smaller_than_the_change() -> None:
    """The scenario's numbers make sense: the big VirtualService's store entry exceeds the room left."""
    from tests.integration.disk_full_scenario import virtual_service

    assert len(json.dumps(virtual_service("big", 400))) > 2 * ROOM_BYTES
