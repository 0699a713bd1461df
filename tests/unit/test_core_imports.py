"""meshkit.core stays sans-IO: no asyncio, socket or ssl anywhere in it (DESIGN.md)."""

from __future__ import annotations

import ast
from pathlib import Path

import meshkit.core

FORBIDDEN = {"asyncio", "socket", "ssl", "selectors", "uvloop", "httptools", "httpx"}


def imported_modules(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_core_modules_import_no_io() -> None:
    folder = Path(meshkit.core.__file__).parent
    offenders = {p.name: sorted(imported_modules(p) & FORBIDDEN) for p in folder.glob("*.py")}
    assert {name: found for name, found in offenders.items() if found} == {}
