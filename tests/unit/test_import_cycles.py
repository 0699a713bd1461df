"""No import cycle in meshkit: the packages read top to bottom.

Every import counts, wherever it is written: at module level, inside a
function (imported late to dodge a cycle is still a cycle for the reader),
and under `if TYPE_CHECKING:` (a type checker and a reader follow it all
the same). A cycle is reported as the chain of modules that closes it.

Cycles that existed outside meshkit/sidecar and meshkit/core when this test
was written are listed in KNOWN_BACK_EDGES with the reason; the edge is
left out of the graph, so any other cycle (including a new one through the
same modules) still fails the test.
"""

from __future__ import annotations

import ast
import functools
from pathlib import Path

import meshkit

ROOT = Path(meshkit.__file__).parent

# (importer, imported): why the back edge is there. Remove an entry when its import goes.
KNOWN_BACK_EDGES: dict[tuple[str, str], str] = {
    ("meshkit.lab", "meshkit.export_script"): "Lab.export_script imports it late; export_script drives a Lab",
    ("meshkit.lab", "meshkit.checkpoints"): "Lab.checkpoint/restore/diff import it late; checkpoints reads lab state",
    ("meshkit.lab", "meshkit.restore"): "Lab.restore/catch_up import it late; restore drives a Lab",
    ("meshkit.lab", "meshkit.state"): "Lab.checkpoint/diff import it late; state uses the Lab's app-name constants",
    ("meshkit.quiz.session", "meshkit.quiz.cards"): "the session builds its widgets late; cards show a session's states",
}


def module_files() -> dict[str, Path]:
    """Every module of the meshkit package by dotted name (a package by its own name)."""
    found: dict[str, Path] = {}
    for path in ROOT.rglob("*.py"):
        parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def _known_module(name: str, modules: dict[str, Path]) -> str | None:
    """`name`, or the nearest enclosing module of meshkit that exists (an imported attribute's module)."""
    while name and name not in modules:
        name = name.rpartition(".")[0]
    return name or None


def imports_of(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The meshkit modules that module `name` imports anywhere in its source."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    targets: list[str] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            targets.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package
                for _ in range(node.level - 1):
                    base = base.rpartition(".")[0]
                source = f"{base}.{node.module}" if node.module else base
            else:
                source = node.module or ""
            for alias in node.names:
                submodule = f"{source}.{alias.name}"
                targets.append(submodule if submodule in modules else source)
    found = {_known_module(target, modules) for target in targets}
    return {module for module in found if module is not None and module != name}


@functools.cache
def _parsed_graph() -> dict[str, frozenset[str]]:
    modules = module_files()
    return {name: frozenset(imports_of(name, path, modules)) for name, path in modules.items()}


def import_graph() -> dict[str, set[str]]:
    """Module -> the meshkit modules it imports (parsed once per test run; a fresh copy each call)."""
    return {name: set(imported) for name, imported in _parsed_graph().items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One chain per strongly connected component of more than one module (a, b, ..., a)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[set[str]] = []

    def visit(start: str) -> None:
        # Tarjan's algorithm, iterative (no recursion limit on a deep package).
        work: list[tuple[str, list[str]]] = [(start, sorted(graph[start]))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, todo = work[-1]
            if todo:
                nxt = todo.pop()
                if nxt not in index:
                    index[nxt] = low[nxt] = len(index)
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, sorted(graph[nxt])))
                elif nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component = set()
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.add(member)
                    if member == node:
                        break
                if len(component) > 1:
                    components.append(component)

    for name in sorted(graph):
        if name not in index:
            visit(name)
    return [_chain(graph, component) for component in components]


def _chain(graph: dict[str, set[str]], component: set[str]) -> list[str]:
    """A shortest cycle through the component's first module, as the modules along it."""
    start = min(component)
    previous: dict[str, str] = {}
    frontier = [start]
    while frontier:
        following: list[str] = []
        for node in frontier:
            for nxt in sorted(graph[node] & component):
                if nxt == start:
                    path = [node]
                    while path[-1] != start:
                        path.append(previous[path[-1]])
                    return [*reversed(path), start]
                if nxt not in previous:
                    previous[nxt] = node
                    following.append(nxt)
        frontier = following
    return sorted(component)


def test_meshkit_has_no_import_cycle() -> None:
    graph = import_graph()
    for importer, imported in KNOWN_BACK_EDGES:
        graph.get(importer, set()).discard(imported)
    found = [" -> ".join(chain) for chain in cycles(graph)]
    assert found == [], "import cycles in meshkit:\n" + "\n".join(found)


def test_every_known_back_edge_still_exists() -> None:
    graph = import_graph()
    stale = [f"{a} -> {b}" for a, b in KNOWN_BACK_EDGES if b not in graph.get(a, set())]
    assert stale == [], "no longer imported, remove from KNOWN_BACK_EDGES: " + ", ".join(stale)


def test_the_cycle_finder_sees_late_and_type_checking_imports(tmp_path: Path) -> None:
    """The finder itself: a function-local import and a TYPE_CHECKING one close a cycle."""
    modules = {"pkg.a": tmp_path / "a.py", "pkg.b": tmp_path / "b.py", "pkg.c": tmp_path / "c.py"}
    modules["pkg.a"].write_text("from pkg.b import thing\n")
    modules["pkg.b"].write_text("def f():\n    from pkg import c\n")
    modules["pkg.c"].write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import pkg.a\n")
    graph = {name: imports_of(name, path, modules) for name, path in modules.items()}
    assert graph == {"pkg.a": {"pkg.b"}, "pkg.b": {"pkg.c"}, "pkg.c": {"pkg.a"}}
    assert cycles(graph) == [["pkg.a", "pkg.b", "pkg.c", "pkg.a"]]
    graph["pkg.c"] = set()
    assert cycles(graph) == []
