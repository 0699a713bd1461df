"""Where a lab keeps its state, and how that state is written.

One directory per lab (MESHKIT_HOME, default ~/.meshkit) holds everything a
later process needs to find the running lab again: a notebook kernel that was
restarted, the `meshkit` CLI in another terminal, or a test. Files are written
whole to a temporary name and renamed, so a reader never sees half a file and
a crash never leaves a torn one.

    <home>/
      lab.json        the backend's record: processes, ports, workloads
      control.json    the control plane's address and admin token (0600)
      store.json      the control plane's persisted config store
      dns.json        service host -> endpoints, the local stand-in for cluster DNS
      run/            bootstrap and app spec files handed to processes
      logs/           one log file per process
      lock            flock target: one mutation of the lab at a time
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path


def default_home() -> Path:
    """The lab directory: MESHKIT_HOME if set, else ~/.meshkit."""
    env = os.environ.get("MESHKIT_HOME")
    return Path(env).expanduser() if env else Path.home() / ".meshkit"


@dataclass(frozen=True)
class LabHome:
    """Paths inside one lab directory."""

    root: Path

    def __post_init__(self) -> None:
        # Absolute, because the path is how the lab finds its own processes:
        # it is in their command lines, and `up`/`down` stop every meshkit
        # process whose command line names it. A relative home (MESHKIT_HOME=.meshkit,
        # set once for every user of a JupyterHub) is the same string in every
        # learner's lab, so one learner's `meshkit up` stopped another's lab.
        # It also keeps a lab working after the kernel changes directory.
        object.__setattr__(self, "root", Path(self.root).expanduser().absolute())

    @property
    def lab_json(self) -> Path:
        return self.root / "lab.json"

    @property
    def control_json(self) -> Path:
        return self.root / "control.json"

    @property
    def dns_json(self) -> Path:
        return self.root / "dns.json"

    @property
    def run_dir(self) -> Path:
        return self.root / "run"

    @property
    def log_dir(self) -> Path:
        return self.root / "logs"

    def create(self) -> None:
        for path in (self.root, self.run_dir, self.log_dir):
            path.mkdir(parents=True, exist_ok=True)
        os.chmod(self.root, 0o700)

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the lab's lock: two notebooks (or a notebook and the CLI)
        changing the same lab at once would otherwise race on lab.json."""
        self.create()
        with open(self.root / "lock", "a+") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)
