"""The shape of the house: packages in one declared order, no cycles, no facades, no private imports across modules."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "bpcli"

# The package order, declared once. A package imports from the ground floor, from itself and from packages on
# EARLIER floors; packages on one floor do not import each other. The ground floor imports only itself.
GROUND = ("errors", "files", "yamlsrc", "prose", "schema")
FLOORS = (
    ("nn",),
    ("data",),
    ("config",),
    ("training",),
    ("runs",),
    ("gradcheck",),
    ("explain", "teach", "analysis", "bridge"),
    ("render", "plots"),
    ("cli",),
)
MAX_FUNCTION_LINES = 80

# Debts the move inherited; each entry must still be one (the test fails on an entry that is paid), so these
# lists only shrink. Empty them and the rules above hold without exception.
STILL_LONG = {  # function -> its length when the package moved (def line to last line)
}
STILL_TANGLED: set[frozenset[str]] = set()


# --- reading a source tree -----------------------------------------------------------------------------------


def module_name(package: Path, path: Path) -> str:
    parts = (package.name,) + path.relative_to(package).with_suffix("").parts
    return ".".join(parts[:-1]) if parts[-1] == "__init__" else ".".join(parts)


def modules(package: Path = PACKAGE) -> dict[str, Path]:
    return {module_name(package, p): p for p in sorted(package.rglob("*.py")) if "__pycache__" not in p.parts}


def parse(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"))


def base_of(node: ast.ImportFrom, module: str, is_init: bool) -> str:
    """The absolute module an ImportFrom names (a relative one resolved against `module`)."""
    if not node.level:
        return node.module or ""
    pkg = module.split(".")[: len(module.split(".")) - node.level + (1 if is_init else 0)]
    return ".".join(pkg + ([node.module] if node.module else []))


def imports_of(path: Path, module: str, known: set[str]) -> set[str]:
    """The package's modules `path` imports: at the top, inside functions and under TYPE_CHECKING alike."""
    out: set[str] = set()
    for node in ast.walk(parse(path)):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = base_of(node, module, path.name == "__init__.py")
            # `from bpcli.nn import model` imports the module bpcli.nn.model; `from bpcli import __version__` bpcli
            names = [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names]
        else:
            continue
        for name in names:
            while name and name not in known:  # `import bpcli.render.show` -> the deepest module named
                name = name.rpartition(".")[0]
            if name:
                out.add(name)
    return out


def import_graph(package: Path = PACKAGE) -> dict[str, set[str]]:
    mods = modules(package)
    graph = {name: imports_of(path, name, set(mods)) - {name} for name, path in mods.items()}
    # importing bpcli.x.y runs bpcli/x/__init__.py first: an edge that can close a cycle like any other
    for name in list(graph):
        parents = {".".join(name.split(".")[:k]) for k in range(2, name.count(".") + 1)}
        graph[name] |= {p for p in parents if p in mods} - {name}
    return graph


def package_of(module: str, floors=FLOORS) -> str:
    """bpcli.nn.model -> nn; bpcli.errors -> '' (the ground floor); bpcli.__main__ -> __main__."""
    parts = module.split(".")
    if len(parts) >= 3 or (len(parts) == 2 and parts[1] in {p for f in floors for p in f}):
        return parts[1]
    return "__main__" if parts[-1] == "__main__" else ""


# --- the checks (each returns what it finds; the tests assert there is nothing) -----------------------------


def floor_of(package: str, floors=FLOORS) -> int:
    if package == "":
        return -1
    if package == "__main__":
        return len(floors)
    for i, f in enumerate(floors):
        if package in f:
            return i
    raise KeyError(package)


def order_violations(graph: dict[str, set[str]], floors=FLOORS, ground=GROUND) -> list[str]:
    out = []
    declared = {p for f in floors for p in f}
    for m in sorted(graph):
        pm = package_of(m, floors)
        if len(m.split(".")) == 2 and pm == "" and m.split(".")[1] not in ground and m.split(".")[1] != "__main__":
            out.append(f"{m}: a module on the ground floor that is not declared there (GROUND)")
        if len(m.split(".")) > 2 and pm not in declared:
            out.append(f"{m}: package {pm!r} is not in the declared order (FLOORS)")
            continue
        for n in sorted(graph[m]):
            pn = package_of(n, floors)
            if n.count(".") == 0:  # the package's own __init__ (__version__)
                continue
            if pn not in declared and pn != "":
                continue  # reported above for its own module
            if pm == pn:
                continue
            fm, fn = floor_of(pm, floors), floor_of(pn, floors)
            if not fn < fm:
                where = "the same floor as" if fn == fm else "a later floor than"
                out.append(f"{m} imports {n}: {pn or 'the ground floor'} is on {where} {pm or 'the ground floor'}")
    return out


def tangles(graph: dict[str, set[str]]) -> list[set[str]]:
    """The groups of nodes that import each other, directly or round a loop (strongly connected, 2 or more)."""
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


def package_graph(graph: dict[str, set[str]], floors=FLOORS) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for m, ns in graph.items():
        pm = package_of(m, floors) or "<ground>"
        out.setdefault(pm, set()).update((package_of(n, floors) or "<ground>") for n in ns if n.count("."))
    return {p: ns - {p} for p, ns in out.items()}


def module_cycles(graph: dict[str, set[str]], allowed=frozenset()) -> list[str]:
    out = []
    for g in tangles(graph):
        if frozenset(g) in allowed:
            continue
        out.append(" -> ".join(find_cycle({m: graph[m] & g for m in g})))
    return out


class Definitions:
    """What each module of a package defines and imports at its top level (if/try blocks included)."""

    def __init__(self, package: Path):
        self.mods = modules(package)
        self.defined: dict[str, set[str]] = {}
        self.imported: dict[str, set[str]] = {}
        self.acted_on: dict[str, set[str]] = {}
        for name, path in self.mods.items():
            tree = parse(path)
            d, i, acted = set(), set(), set()
            for node in _top_level(tree.body):
                if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                    d.add(node.name)
                elif isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
                    for t in node.targets if isinstance(node, ast.Assign) else [node.target]:
                        d |= {n.id for n in ast.walk(t) if isinstance(n, ast.Name)}
                elif isinstance(node, (ast.Import, ast.ImportFrom)):
                    i |= {(a.asname or a.name).split(".")[0] for a in node.names}
            for node in tree.body:  # top-level code that acts on an imported object at import (registers commands)
                if isinstance(node, (ast.Expr, ast.Assign, ast.AugAssign, ast.For, ast.With)) and not (
                        isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)):
                    acted |= {n.id for n in ast.walk(node) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}
            self.defined[name], self.imported[name], self.acted_on[name] = d, i, acted & i

    def lives_in(self, module: str, name: str) -> bool:
        return (name in self.defined[module] or f"{module}.{name}" in self.mods
                or name in self.acted_on[module])


def _top_level(body):
    for node in body:
        yield node
        for field in ("body", "orelse", "finalbody"):
            if isinstance(node, (ast.If, ast.Try, ast.With)) and hasattr(node, field):
                yield from _top_level(getattr(node, field))
        if isinstance(node, ast.Try):
            for h in node.handlers:
                yield from _top_level(h.body)


def importing_files(package: Path, extra: tuple[Path, ...] = ()) -> list[tuple[Path, str, bool]]:
    """(file, its module name or '', is it a package __init__) for the package's modules and `extra` files."""
    out = [(p, m, p.name == "__init__.py") for m, p in modules(package).items()]
    out += [(p, "", False) for p in extra]
    return out


def facades(package: Path = PACKAGE, extra: tuple[Path, ...] = ()) -> list[str]:
    """Names imported from a module that does not define them, `__all__` lists, and package inits with code."""
    defs = Definitions(package)
    top = package.name
    out = []
    for path, module, is_init in importing_files(package, extra):
        tree = parse(path)
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                base = base_of(node, module, is_init)
                if base not in defs.mods:
                    continue
                for a in node.names:
                    if a.name != "*" and not defs.lives_in(base, a.name):
                        out.append(f"{path.name}:{node.lineno}: imports {a.name} from {base}, which only imports it")
                    elif a.name == "*":
                        out.append(f"{path.name}:{node.lineno}: imports * from {base}")
            elif isinstance(node, (ast.Assign, ast.AnnAssign)) and module and any(
                    isinstance(t, ast.Name) and t.id == "__all__"
                    for t in (node.targets if isinstance(node, ast.Assign) else [node.target])):
                listed = {e.value for e in ast.walk(node.value) if isinstance(e, ast.Constant)}
                passed_on = sorted(n for n in listed if not defs.lives_in(module, n))
                if passed_on:
                    out.append(f"{module}: __all__ lists names it does not define: {', '.join(passed_on)}")
        if is_init and module:
            body = [n for n in tree.body if not (isinstance(n, ast.Expr) and isinstance(n.value, ast.Constant))]
            if module == top:  # the top package keeps its version (hatch reads it) and nothing else
                body = [n for n in body if not (isinstance(n, ast.Assign) and all(
                    isinstance(t, ast.Name) and t.id.startswith("__") for t in n.targets))]
            if body:
                out.append(f"{module}: a package __init__ with code in it (keep only its docstring)")
    return out


def private_imports(package: Path = PACKAGE) -> list[str]:
    """`from x import _name` or `x._name` where x is another module of the package."""
    defs = Definitions(package)
    out = []
    for path, module, is_init in importing_files(package):
        tree = parse(path)
        aliases: dict[str, str] = {}
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                base = base_of(node, module, is_init)
                for a in node.names:
                    if f"{base}.{a.name}" in defs.mods:
                        aliases[a.asname or a.name] = f"{base}.{a.name}"
                    elif base in defs.mods and base != module and _private(a.name):
                        out.append(f"{module}:{node.lineno}: imports {a.name} from {base}")
            elif isinstance(node, ast.Import):
                for a in node.names:
                    if a.asname and a.name in defs.mods:
                        aliases[a.asname] = a.name
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and _private(node.attr):
                target = aliases.get(node.value.id) if isinstance(node.value, ast.Name) else None
                dotted = ast.unparse(node.value)
                target = target or (dotted if dotted in defs.mods else None)
                if target and target != module:
                    out.append(f"{module}:{node.lineno}: uses {node.attr} of {target}")
    return out


def _private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def long_functions(package: Path = PACKAGE, limit: int = MAX_FUNCTION_LINES) -> dict[str, int]:
    """module:qualname -> lines (def line to last line) for every function longer than `limit`."""
    out = {}
    for module, path in modules(package).items():
        def walk(node, prefix):
            for n in ast.iter_child_nodes(node):
                if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    lines = n.end_lineno - n.lineno + 1
                    if lines > limit:
                        out[f"{module}:{prefix}{n.name}"] = lines
                    walk(n, f"{prefix}{n.name}.")
                elif isinstance(n, ast.ClassDef):
                    walk(n, f"{prefix}{n.name}.")
                else:
                    walk(n, prefix)
        walk(parse(path), "")
    return out


# --- the house -----------------------------------------------------------------------------------------------


def other_code() -> tuple[Path, ...]:
    """Tests and benchmarks import bpcli's names too: from where they live."""
    return tuple(p for d in ("tests", "benchmarks") for p in sorted((ROOT / d).rglob("*.py"))
                 if "__pycache__" not in p.parts)


def test_the_ground_floor_holds_only_the_declared_modules():
    flat = sorted(p.stem for p in PACKAGE.glob("*.py"))
    assert flat == sorted((*GROUND, "__init__", "__main__"))
    packages = sorted(p.name for p in PACKAGE.iterdir() if (p / "__init__.py").exists())
    assert packages == sorted(p for f in FLOORS for p in f)


def test_imports_follow_the_package_order():
    bad = order_violations(import_graph())
    assert not bad, "imports against the package order:\n" + "\n".join(bad)


def test_no_import_cycle_between_modules():
    cycles = module_cycles(import_graph(), allowed=STILL_TANGLED)
    assert not cycles, "import cycles (type-checking imports count):\n" + "\n".join(cycles)


def test_the_tangles_still_allowed_are_still_tangled():
    now = tangles(import_graph())
    paid = [sorted(g) for g in STILL_TANGLED if not any(g <= t for t in now)]
    assert not paid, f"no longer a cycle, remove from STILL_TANGLED: {paid}"


def test_no_import_cycle_between_packages():
    cycle = find_cycle(package_graph(import_graph()))
    assert cycle is None, "packages import each other: " + " -> ".join(cycle)


def test_no_module_imports_another_modules_private_names():
    bad = private_imports()
    assert not bad, "private names used across modules (make them public or keep the caller beside them):\n" + \
        "\n".join(bad)


def test_names_are_imported_from_where_they_live():
    bad = facades(extra=other_code())
    assert not bad, "facades:\n" + "\n".join(bad)


def test_no_function_over_80_lines():
    found = long_functions()
    new = {f: n for f, n in found.items() if f not in STILL_LONG}
    assert not new, f"functions over {MAX_FUNCTION_LINES} lines (split them at a seam): {new}"


def test_the_long_functions_still_allowed_are_still_long():
    found = long_functions()
    paid = sorted(f for f in STILL_LONG if f not in found)
    assert not paid, f"now at most {MAX_FUNCTION_LINES} lines, remove from STILL_LONG: {paid}"


def test_the_graph_sees_imports_inside_functions():
    graph = import_graph()
    assert "bpcli.runs.session" in graph["bpcli.cli.train"]  # `from bpcli.runs import session` inside a command
    assert "bpcli.data.dataset" in graph["bpcli.config.data_section"]  # `from bpcli.data import dataset as data_mod`
    assert {"bpcli.nn.model", "bpcli.schema", "bpcli.data.dataset"} <= graph["bpcli.config.loader"]
    assert "bpcli.cli" in graph["bpcli.cli.train"]  # importing bpcli.cli.x runs bpcli/cli/__init__.py first


# --- each check fails on a planted violation -----------------------------------------------------------------


def plant(tmp_path: Path, files: dict[str, str]) -> Path:
    """A package `pkg` in tmp_path with the given files (paths inside the package -> text)."""
    package = tmp_path / "pkg"
    for rel, text in files.items():
        p = package / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text, encoding="utf-8")
    return package


TINY_FLOORS = (("low",), ("mid_a", "mid_b"), ("top",))
TINY = {
    "__init__.py": '"""pkg."""\n__version__ = "1"\n',
    "errors.py": '"""Errors."""\nclass Oops(Exception):\n    pass\n',
    "low/__init__.py": '"""low."""\n',
    "low/core.py": '"""core."""\nfrom pkg.errors import Oops\n\ndef f():\n    return 1\n',
    "mid_a/__init__.py": '"""a."""\n',
    "mid_a/one.py": '"""one."""\nfrom pkg.low.core import f\n\ndef g():\n    return f()\n',
    "mid_b/__init__.py": '"""b."""\n',
    "mid_b/two.py": '"""two."""\nfrom pkg.low import core\n\ndef h():\n    return core.f()\n',
    "top/__init__.py": '"""top."""\n',
    "top/cmd.py": '"""cmd."""\nfrom pkg.mid_a.one import g\nfrom pkg.mid_b.two import h\n',
}


def test_the_tiny_house_is_clean(tmp_path):
    package = plant(tmp_path, TINY)
    graph = import_graph(package)
    assert [] == order_violations(graph, TINY_FLOORS, ("errors",))
    assert [] == module_cycles(graph)
    assert find_cycle(package_graph(graph, TINY_FLOORS)) is None
    assert [] == facades(package)
    assert [] == private_imports(package)
    assert {} == long_functions(package)


def test_an_import_against_the_order_is_found(tmp_path):
    package = plant(tmp_path, {**TINY, "low/core.py": TINY["low/core.py"] + "def late():\n"
                               "    from pkg.mid_a.one import g\n    return g\n"})
    assert ["pkg.low.core imports pkg.mid_a.one: mid_a is on a later floor than low"] == \
        order_violations(import_graph(package), TINY_FLOORS, ("errors",))


def test_an_import_between_packages_of_one_floor_is_found(tmp_path):
    package = plant(tmp_path, {**TINY, "mid_b/two.py": TINY["mid_b/two.py"] + "from pkg.mid_a import one\n"})
    assert ["pkg.mid_b.two imports pkg.mid_a.one: mid_a is on the same floor as mid_b"] == \
        order_violations(import_graph(package), TINY_FLOORS, ("errors",))


def test_the_ground_floor_importing_a_package_is_found(tmp_path):
    package = plant(tmp_path, {**TINY, "errors.py": TINY["errors.py"] + "from pkg.low.core import f\n"})
    assert ["pkg.errors imports pkg.low.core: low is on a later floor than the ground floor"] == \
        order_violations(import_graph(package), TINY_FLOORS, ("errors",))


def test_an_undeclared_package_or_ground_module_is_found(tmp_path):
    package = plant(tmp_path, {**TINY, "stray.py": '"""x."""\n', "extra/__init__.py": '"""e."""\n',
                               "extra/m.py": '"""m."""\n'})
    bad = order_violations(import_graph(package), TINY_FLOORS, ("errors",))
    assert "pkg.stray: a module on the ground floor that is not declared there (GROUND)" in bad
    assert "pkg.extra.m: package 'extra' is not in the declared order (FLOORS)" in bad


def test_a_cycle_through_a_type_checking_import_is_found(tmp_path):
    package = plant(tmp_path, {**TINY, "low/other.py": '"""o."""\nfrom typing import TYPE_CHECKING\n'
                               "if TYPE_CHECKING:\n    from pkg.low.core import f\n",
                               "low/core.py": TINY["low/core.py"] + "def k():\n    from pkg.low import other\n"})
    graph = import_graph(package)
    assert ["pkg.low.core -> pkg.low.other -> pkg.low.core"] == module_cycles(graph)
    assert [] == module_cycles(graph, allowed={frozenset({"pkg.low.core", "pkg.low.other"})})
    loop = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert ["a", "b", "c", "a"] == find_cycle(loop)
    assert [{"a", "b", "c"}] == tangles(loop)


def test_a_cycle_between_packages_is_found(tmp_path):
    # each module imports one way, but the packages import each other: a.one -> b.two, b.three -> a.four
    package = plant(tmp_path, {**TINY, "mid_a/four.py": '"""4."""\n', "mid_b/three.py": '"""3."""\n'
                               "from pkg.mid_a import four\n",
                               "mid_a/one.py": TINY["mid_a/one.py"] + "from pkg.mid_b import two\n"})
    graph = import_graph(package)
    assert [] == module_cycles(graph)
    assert ["mid_a", "mid_b", "mid_a"] == find_cycle(package_graph(graph, TINY_FLOORS))


def test_a_private_import_is_found(tmp_path):
    package = plant(tmp_path, {**TINY, "low/core.py": TINY["low/core.py"] + "def _helper():\n    return 2\n",
                               "mid_a/one.py": TINY["mid_a/one.py"] + "from pkg.low.core import _helper\n",
                               "mid_b/two.py": TINY["mid_b/two.py"] + "x = core._helper()\n"})
    assert ["pkg.mid_a.one:6: imports _helper from pkg.low.core", "pkg.mid_b.two:6: uses _helper of pkg.low.core"] \
        == private_imports(package)


def test_a_facade_is_found(tmp_path):
    package = plant(tmp_path, {**TINY, "top/cmd.py": TINY["top/cmd.py"] + "from pkg.mid_a.one import f\n",
                               "mid_b/two.py": TINY["mid_b/two.py"] + '__all__ = ["h", "core"]\n',
                               "low/__init__.py": '"""low."""\nfrom pkg.low.core import f\n'})
    user = tmp_path / "test_user.py"
    user.write_text("from pkg.mid_a.one import f\n", encoding="utf-8")
    assert ["cmd.py:4: imports f from pkg.mid_a.one, which only imports it",
            "pkg.low: a package __init__ with code in it (keep only its docstring)",
            "pkg.mid_b.two: __all__ lists names it does not define: core",
            "test_user.py:1: imports f from pkg.mid_a.one, which only imports it"] == \
        sorted(facades(package, extra=(user,)))


def test_an_object_a_module_configures_at_import_is_no_facade(tmp_path):
    # cli/app.py registers every command on the app it imports: the app is imported from there
    package = plant(tmp_path, {**TINY, "top/cmd.py": TINY["top/cmd.py"] + "registry = []\n",
                               "top/app.py": '"""app."""\nfrom pkg.top.cmd import registry\nregistry.append(1)\n',
                               "top/main.py": '"""main."""\nfrom pkg.top.app import registry\n'})
    assert [] == facades(package)


def test_a_long_function_is_found(tmp_path):
    body = "".join(f"    x{i} = {i}\n" for i in range(79))
    package = plant(tmp_path, {**TINY, "low/core.py": TINY["low/core.py"] + f"class C:\n    def m(self):\n"
                               + body.replace("    ", "        ") + "        return 0\n"
                               + "def ok():\n" + body[: -len("    x78 = 78\n")] + "    return 0\n"})
    assert {"pkg.low.core:C.m": 81} == long_functions(package)
