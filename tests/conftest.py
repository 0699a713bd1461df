"""Test tiers, from where a test lives and what it is marked with, and how
`make test` spreads the suite over two workers.

- `fast`: every test under tests/unit (pure: no process, socket or browser),
  marked here by its folder. `make test-fast` runs these alone.
- `slow`: marked by hand on a test that runs for minutes on purpose (a soak,
  a certificate rotation over several lifetimes, a long outage). `make test`
  leaves them out; `make test-slow` runs them, and CI runs both.
- `serial`: marked by hand on a test whose assertion is a tight bound on
  wall-clock time or on a rate. `make test` runs the rest on two workers,
  then these alone, so another worker's load cannot push them past it.

With pytest-xdist's `--dist loadfile`, the scheduler below hands out a test
file as one unit (so a file's module-scoped lab starts once, and its tests
keep their order), except tests/notebooks, whose notebooks each have a lab
of their own and go one by one to whichever worker is free. Units go out in
collection order, the longest kinds first (see FOLDER_ORDER). (xdist's
`loadgroup` with an `xdist_group` mark per file would say the same, but it
groups nothing on pytest 9.2: pytest-xdist issue 1386.)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

TESTS = Path(__file__).resolve().parent

# The order the parallel pass hands work out in: the longest first (a browser
# test or a notebook runs 20-70 s), the many short unit files last, where they
# fill in while the other worker finishes its last long test.
FOLDER_ORDER = {"browser": 0, "notebooks": 1, "integration": 2, "unit": 3}

# Scheduling units of one test each rather than one file.
ONE_BY_ONE = "tests/notebooks/"


def folder_of(item: pytest.Item) -> str:
    path = Path(str(item.fspath)).resolve()
    return path.relative_to(TESTS).parts[0] if path.is_relative_to(TESTS) else ""


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    items.sort(key=lambda item: FOLDER_ORDER.get(folder_of(item), len(FOLDER_ORDER)))  # stable: file order within
    for item in items:
        if folder_of(item) == "unit":
            item.add_marker(pytest.mark.fast)


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    if config.getvalue("dist") != "loadfile":
        return None
    from xdist.scheduler import LoadFileScheduling

    class FilesAndNotebooks(LoadFileScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return nodeid if nodeid.startswith(ONE_BY_ONE) else super()._split_scope(nodeid)

    # xdist would otherwise reorder units by their number of tests (125 quick
    # hardening cases first); ours come in FOLDER_ORDER.
    config.option.loadscopereorder = False
    return FilesAndNotebooks(config, log)
