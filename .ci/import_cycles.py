#!/usr/bin/env python3
"""No import cycles between the project's modules.

Builds the module-level import graph of the given packages from their source (``ast``), counting
every import statement wherever it stands: at module level, inside functions (deferred imports)
and under ``if TYPE_CHECKING:``. Each strongly connected component of more than one module (or a
module importing itself) is reported with one shortest cycle through it, edge by edge with the
file and line of the import, and the exit status is 1.

    python .ci/import_cycles.py [--root DIR] [PACKAGE ...]

Packages default to the project's (core states engine storage api flows video cli); an
``import a.b.c`` counts as an import of the longest project module prefix of ``a.b.c``; a
``from a.b import c`` as an import of ``a.b.c`` when that is a module, else of ``a.b``.
"""

from __future__ import annotations

import argparse
import ast
import sys
from collections import deque
from dataclasses import dataclass
from pathlib import Path

PACKAGES = ("core", "states", "engine", "storage", "api", "flows", "video", "cli")


@dataclass(frozen=True)
class Edge:
    importer: str
    imported: str
    path: Path
    line: int
    where: str  # "", "in a function", "under TYPE_CHECKING"


def module_name(root: Path, path: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def find_modules(root: Path, packages: list[str]) -> dict[str, Path]:
    modules: dict[str, Path] = {}
    for pkg in packages:
        base = root / pkg
        files = [root / f"{pkg}.py"] if not base.is_dir() else sorted(base.rglob("*.py"))
        for path in files:
            if path.is_file() and "__pycache__" not in path.parts:
                modules[module_name(root, path)] = path
    return modules


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imports(tree: ast.AST) -> list[tuple[ast.Import | ast.ImportFrom, str]]:
    """Every import statement with where it stands, walking into functions and branches."""
    found: list[tuple[ast.Import | ast.ImportFrom, str]] = []

    def visit(node: ast.AST, where: str) -> None:
        for child in ast.iter_child_nodes(node):
            here = where
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
                here = where or "in a function"
            if isinstance(node, ast.If) and _is_type_checking(node.test) and child in node.body:
                here = "under TYPE_CHECKING"
            if isinstance(child, ast.Import | ast.ImportFrom):
                found.append((child, here))
            visit(child, here)

    visit(tree, "")
    return found


def build_graph(root: Path, packages: list[str]) -> tuple[dict[str, Path], dict[str, dict[str, Edge]]]:
    modules = find_modules(root, packages)
    graph: dict[str, dict[str, Edge]] = {m: {} for m in modules}

    def resolve(name: str) -> str | None:
        parts = name.split(".")
        for i in range(len(parts), 0, -1):
            candidate = ".".join(parts[:i])
            if candidate in modules:
                return candidate
        return None

    for mod, path in modules.items():
        tree = ast.parse(path.read_bytes(), filename=str(path))
        is_pkg = path.name == "__init__.py"
        for node, where in _imports(tree):
            targets: list[str | None] = []
            if isinstance(node, ast.Import):
                targets = [resolve(a.name) for a in node.names]
            else:
                base = node.module or ""
                if node.level:
                    anchor = mod.split(".") if is_pkg else mod.split(".")[:-1]
                    anchor = anchor[: len(anchor) - (node.level - 1)] if node.level > 1 else anchor
                    base = ".".join([*anchor, *([base] if base else [])])
                for alias in node.names:
                    sub = f"{base}.{alias.name}" if base else alias.name
                    targets.append(sub if sub in modules else resolve(base) if base else None)
            for target in targets:
                if target is not None and target not in graph[mod]:
                    graph[mod][target] = Edge(mod, target, path, node.lineno, where)
    return modules, graph


def strongly_connected(graph: dict[str, dict[str, Edge]]) -> list[list[str]]:
    """Tarjan's algorithm, iterative; components in a stable order, members sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    out: list[list[str]] = []
    counter = 0
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            advanced = False
            for child in children:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                    advanced = True
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            if advanced:
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                comp = []
                while True:
                    m = stack.pop()
                    on_stack.discard(m)
                    comp.append(m)
                    if m == node:
                        break
                if len(comp) > 1 or node in graph[node]:
                    out.append(sorted(comp))
    return sorted(out)


def shortest_cycle(graph: dict[str, dict[str, Edge]], comp: list[str]) -> list[Edge]:
    """The shortest cycle through the component's first member, staying inside the component."""
    start, members = comp[0], set(comp)
    prev: dict[str, Edge] = {}
    queue = deque([start])
    while queue:
        node = queue.popleft()
        for child in sorted(graph[node]):
            if child not in members:
                continue
            if child == start:
                path = [graph[node][child]]
                while path[0].importer != start:
                    path.insert(0, prev[path[0].importer])
                return path
            if child not in prev:
                prev[child] = graph[node][child]
                queue.append(child)
    raise AssertionError(f"no cycle through {start}")


def find_cycles(root: Path, packages: list[str]) -> list[tuple[list[str], list[Edge]]]:
    _, graph = build_graph(root, packages)
    return [(comp, shortest_cycle(graph, comp)) for comp in strongly_connected(graph)]


def render(root: Path, cycles: list[tuple[list[str], list[Edge]]]) -> str:
    lines = []
    for comp, edges in cycles:
        chain = " -> ".join([e.importer for e in edges] + [edges[0].importer])
        lines.append(f"import cycle: {chain}")
        for e in edges:
            where = f" ({e.where})" if e.where else ""
            lines.append(f"    {e.path.relative_to(root)}:{e.line}: {e.importer} imports {e.imported}{where}")
        if len(comp) > len(edges):
            lines.append(f"    (the same tangle holds {len(comp)} modules: {', '.join(comp)})")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--root", type=Path, default=Path(__file__).resolve().parent.parent)
    ap.add_argument("packages", nargs="*", default=list(PACKAGES))
    args = ap.parse_args(argv)
    root = args.root.resolve()
    modules, _ = build_graph(root, args.packages)
    cycles = find_cycles(root, args.packages)
    if cycles:
        print(render(root, cycles))
        print(f"import cycles: {len(cycles)} found in {len(modules)} modules "
              f"({', '.join(args.packages)}) — break each by moving the shared code down a layer")
        return 1
    print(f"import cycles: none in {len(modules)} modules ({', '.join(args.packages)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
