"""The types hold: `mypy --strict` passes on the listed packages, and no `type: ignore` goes unexplained.

A signature a reader can trust is part of "a proxy you can read", so the
check runs with the unit tests rather than as a separate step someone may
skip. mypy runs as a subprocess with the settings in pyproject.toml
([tool.mypy]); its cache lives in the virtual environment running the tests,
so after the first run only changed modules are analysed again.

An ignore that only silences mypy hides the next real error on that line, so
each must name the error it silences (`# type: ignore[attr-defined]`) and say
why beside it (`  # reason ...`). mypy itself (strict: warn_unused_ignores)
reports ignores that no longer silence anything.
"""

from __future__ import annotations

import importlib.util
import io
import re
import subprocess
import sys
import tempfile
import tokenize
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# mypy --strict must find nothing in these. Add a package here once it is clean.
STRICT_PACKAGES = ["meshkit/core", "meshkit/sidecar", "meshkit/security"]

# Every `type: ignore` in these names its error code and gives a reason.
EXPLAINED_IGNORE_PACKAGES = ["meshkit/core", "meshkit/sidecar", "meshkit/security"]

_IGNORE = re.compile(r"type:\s*ignore")
# `type: ignore[code, code]` followed by a second comment with some words in it.
_EXPLAINED = re.compile(r"#\s*type:\s*ignore\[[a-z][a-z0-9-]*(?:\s*,\s*[a-z][a-z0-9-]*)*\]\s*#\s*\w")


def mypy_cache_dir() -> Path:
    """The running virtual environment's own folder, else the temporary folder: never the repository."""
    if sys.prefix != sys.base_prefix:
        return Path(sys.prefix) / ".mypy_cache"
    return Path(tempfile.gettempdir()) / "meshkit-mypy-cache"


def unexplained_ignores(source: str) -> list[tuple[int, str]]:
    """(line, comment) of each comment with a `type: ignore` lacking an error code or a reason."""
    found = []
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type == tokenize.COMMENT and _IGNORE.search(token.string) and not _EXPLAINED.search(token.string):
            found.append((token.start[0], token.string))
    return found


def test_mypy_strict_passes() -> None:
    assert importlib.util.find_spec("mypy") is not None, "mypy is not installed: pip install -e '.[test]'"
    command = [
        sys.executable, "-m", "mypy", "--strict",
        "--config-file", str(ROOT / "pyproject.toml"),
        "--cache-dir", str(mypy_cache_dir()),
        *STRICT_PACKAGES,
    ]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, f"mypy --strict {' '.join(STRICT_PACKAGES)}:\n{done.stdout}{done.stderr}"


@pytest.mark.parametrize("package", EXPLAINED_IGNORE_PACKAGES)
def test_every_type_ignore_has_a_code_and_a_reason(package: str) -> None:
    offenders = [
        f"{path.relative_to(ROOT)}:{line}: {comment}"
        for path in sorted((ROOT / package).rglob("*.py"))
        for line, comment in unexplained_ignores(path.read_text(encoding="utf-8"))
    ]
    assert offenders == [], "write `# type: ignore[code]  # why` on each:\n" + "\n".join(offenders)


@pytest.mark.parametrize(
    ("line", "explained"),
    [
        ("x = f()  # type: ignore[attr-defined]  # json.encoder's C speedup is not in typeshed\n", True),
        ("x = f()  # type: ignore[arg-type, union-attr]  # checked by the caller\n", True),
        ("x = f()  # type: ignore[attr-defined]\n", False),
        ("x = f()  # type: ignore  # the stub is wrong\n", False),
        ("x = f()  # type: ignore\n", False),
        ("x = f()  # type:ignore[misc]#\n", False),
        ("x = '# type: ignore'  # a string, not a comment\n", True),
    ],
)
def test_unexplained_ignores_reads_comments(line: str, explained: bool) -> None:
    assert (unexplained_ignores(line) == []) is explained
