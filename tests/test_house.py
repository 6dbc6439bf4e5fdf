"""Code health (issue 23): no module takes another's private names, and no import cycle even among type-only imports."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "bpcli"

# Private names still taken across modules, left to the gradcheck rework (issue 20) that rewrites these modules.
PENDING = {
    ("bpcli.gradcheck", "bpcli.gradcheck_numeric", "_Base"),
    ("bpcli.gradcheck", "bpcli.gradcheck_numeric", "_numeric_directions"),
    ("bpcli.gradcheck", "bpcli.gradcheck_numeric", "_numeric_entries"),
    ("bpcli.torch_bridge", "bpcli.gradcheck", "_layer_summaries"),
    ("bpcli.torch_bridge", "bpcli.gradcheck", "_selection"),
}


def _module(path: Path) -> str:
    parts = ("bpcli",) + path.relative_to(PACKAGE).with_suffix("").parts
    return ".".join(parts[:-1]) if parts[-1] == "__init__" else ".".join(parts)


def _imports() -> list[tuple[str, str, str]]:
    """(importer, module, name) for every `from bpcli... import name`, at the top, in functions or type-only."""
    out = []
    for p in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(p.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("bpcli"):
                out += [(_module(p), node.module, a.name) for a in node.names]
    return out


def test_no_module_imports_a_private_name_from_another():
    private = {(m, src, name) for m, src, name in _imports()
               if name.startswith("_") and not name.startswith("__") and src != m}
    assert set() == private - PENDING


def test_no_import_cycle_even_among_type_checking_imports():
    mods = {_module(p) for p in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {m: set() for m in mods}
    for m, src, name in _imports():
        target = f"{src}.{name}" if f"{src}.{name}" in mods else src
        if target in mods and target != m:
            graph[m].add(target)

    def reaches(a: str, b: str) -> bool:
        seen, todo = {a}, [a]
        while todo:
            for n in graph[todo.pop()]:
                if n == b:
                    return True
                if n not in seen:
                    seen.add(n)
                    todo.append(n)
        return False

    cycles = sorted((m, n) for m in graph for n in graph[m] if reaches(n, m))
    assert [] == cycles
