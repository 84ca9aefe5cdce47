"""The project's modules import each other without cycles (every import counts, lazy ones included).

The import graph is read from the source (ast): an edge A -> B for each ``import B`` / ``from B
import ...`` / ``from . import ...`` in A that names one of the project's modules. A cycle means
two modules that cannot be understood (or changed) one without the other; the layers are
``outcomes, dtypes, machine, tables, child`` (leaves) <- ``answers`` <- ``checking`` (+ ``view`` ->
``progress``) <- ``checks`` <- ``grading``.
"""

import ast

from helpers.models import repo_root

PACKAGES = ("helpers", "grading", "benchmarks", "workshop", "tools")


def modules() -> dict[str, tuple[ast.Module, bool]]:
    """``{dotted name: (syntax tree, is a package's __init__)}``."""
    found = {}
    for package in PACKAGES:
        for path in sorted((repo_root() / package).rglob("*.py")):
            parts = list(path.relative_to(repo_root()).with_suffix("").parts)
            is_package = parts[-1] == "__init__"
            found[".".join(parts[:-1] if is_package else parts)] = (ast.parse(path.read_text(), str(path)), is_package)
    return found


def imports(name: str, tree: ast.Module, is_package: bool, known: set[str]) -> set[str]:
    base = name.split(".") if is_package else name.split(".")[:-1]
    edges = set()
    for node in ast.walk(tree):
        targets = []
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if node.level:
                module = ".".join(base[: len(base) - node.level + 1] + ([module] if module else []))
            targets = [module] + [f"{module}.{a.name}" for a in node.names]
        for t in targets:
            while t and t not in known:
                t = t.rpartition(".")[0]
            if t and t != name and not name.startswith(t + "."):
                edges.add(t)
    return edges


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in graph:
        if v not in index:
            visit(v)
    return out


def test_the_finder_sees_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycle_among_the_project_modules():
    found = modules()
    graph = {name: imports(name, tree, is_package, set(found)) for name, (tree, is_package) in found.items()}
    assert graph["helpers.checking"] >= {"helpers.answers", "helpers.outcomes"}  # the reader sees edges
    assert "helpers.checks.common" in graph["helpers.checks.lesson01"]
    assert cycles(graph) == []
