"""The shape of the house: imports between bpcli's modules run one way, and no module outgrows ~400 lines."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "bpcli"
MAX_LINES = 400



def module_name(path: Path) -> str:
    parts = ("bpcli",) + path.relative_to(PACKAGE).with_suffix("").parts
    return ".".join(parts[:-1]) if parts[-1] == "__init__" else ".".join(parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def imports_of(path: Path, known: set[str]) -> set[str]:
    """The bpcli modules `path` imports anywhere it runs: at the top and inside functions.

    Imports under `if TYPE_CHECKING:` only name types for annotations (explain_steps annotating explain's
    builder); they never run, so they are not dependencies.
    """
    out: set[str] = set()
    tree = ast.parse(path.read_text(encoding="utf-8"))
    type_only = {id(n) for node in ast.walk(tree) if isinstance(node, ast.If) and ast.unparse(node.test) in
                 ("TYPE_CHECKING", "typing.TYPE_CHECKING") for n in ast.walk(node)}
    for node in ast.walk(tree):
        if id(node) in type_only:
            continue
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: resolve against this module's package
                pkg = module_name(path).split(".")
                pkg = pkg[: len(pkg) - node.level + (1 if path.name == "__init__.py" else 0)]
                base = ".".join(pkg + ([base] if base else []))
            # `from bpcli import data` imports the module bpcli.data; `from bpcli import __version__` only bpcli
            names = [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names]
        else:
            continue
        for name in names:
            while name and name not in known:  # `import bpcli.render.show` -> the deepest bpcli module named
                name = name.rpartition(".")[0]
            if name:
                out.add(name)
    return out


def import_graph() -> dict[str, set[str]]:
    mods = modules()
    return {name: imports_of(path, set(mods)) - {name} for name, path in mods.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as [a, b, ..., a], or None."""
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    path: list[str] = []

    def visit(m: str) -> list[str] | None:
        state[m] = 1
        path.append(m)
        for n in sorted(graph.get(m, ())):
            if state.get(n) == 1:
                return path[path.index(n):] + [n]
            if n not in state:
                found = visit(n)
                if found:
                    return found
        path.pop()
        state[m] = 2
        return None

    for m in sorted(graph):
        if m not in state:
            found = visit(m)
            if found:
                return found
    return None


def tangles(graph: dict[str, set[str]]) -> list[set[str]]:
    """The groups of modules that import each other, directly or round a loop (strongly connected, 2 or more)."""
    def reach(m: str, edges: dict[str, set[str]]) -> set[str]:
        seen, todo = {m}, [m]
        while todo:
            for n in edges.get(todo.pop(), ()):
                if n not in seen:
                    seen.add(n)
                    todo.append(n)
        return seen

    reverse: dict[str, set[str]] = {}
    for m, ns in graph.items():
        for n in ns:
            reverse.setdefault(n, set()).add(m)
    groups, done = [], set()
    for m in sorted(graph):
        if m not in done:
            group = reach(m, graph) & reach(m, reverse)
            done |= group
            if len(group) > 1:
                groups.append(group)
    return groups


def test_imports_between_modules_run_one_way():
    graph = import_graph()
    bad = list(tangles(graph))
    cycles = [find_cycle({m: graph[m] & g for m in g}) for g in bad]
    assert not cycles, "import cycles: " + "; ".join(" -> ".join(c) for c in cycles)


def test_the_graph_sees_imports_inside_functions_and_the_checks_find_cycles():
    graph = import_graph()
    assert "bpcli.session" in graph["bpcli.cli_train"]  # imported inside the train command
    assert {"bpcli.model", "bpcli.schema", "bpcli.data"} <= graph["bpcli.config"]
    assert "bpcli.data" in graph["bpcli.config_data"]  # `from bpcli import data as data_mod`
    loop = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert ["a", "b", "c", "a"] == find_cycle(loop)
    assert [{"a", "b", "c"}] == tangles(loop)
    assert find_cycle({"a": {"b"}, "b": set(), "c": {"a", "b"}}) is None


def test_no_module_is_over_400_lines():
    sizes = {str(p.relative_to(PACKAGE)): len(p.read_text(encoding="utf-8").splitlines())
             for p in PACKAGE.rglob("*.py")}
    too_long = {name: n for name, n in sorted(sizes.items()) if n > MAX_LINES}
    assert not too_long, f"modules over {MAX_LINES} lines (split them along a seam): {too_long}"
