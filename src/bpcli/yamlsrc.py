"""Reading YAML safely while remembering the line of every config path, for located error messages."""

from __future__ import annotations

import re
from typing import Any

import yaml

from bpcli.errors import ConfigError

# The largest config file bpcli reads. A run folder stores its resolved config (inline data included)
# as config.yaml and reads it back through the same limit, so a config is also refused up front when
# its resolved form could exceed it (config.check_stored_size).
MAX_CONFIG_BYTES = 50_000_000
# Nodes of a document once every alias is expanded: a few kilobytes of anchors and aliases can stand for
# billions of values (a "billion laughs"), which bpcli would otherwise walk while checking the data.
MAX_YAML_NODES = 2_000_000
_Base = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when present: 60x faster at composing


class _Loader(_Base):
    """PyYAML's safe loader with YAML 1.2's plain scalars: what a person means by the text they wrote.

    YAML 1.1 reads `1e-3` as text (no dot), `5_1` as 51, `017` as 15 (octal), `1:30` as 90 (base 60), `yes`,
    `no`, `on` and `off` as true/false, and `2024-01-01` as a date. Here a number is written the way Python
    and every other language writes it, true/false are the only booleans, and everything else is text, so a
    check that wants a number refuses `5_1` or `yes` with the text as written (see yaml11_hint).
    """


_Loader.yaml_implicit_resolvers = {}
for _tag, _pattern, _first in (
        ("bool", r"^(?:true|True|TRUE|false|False|FALSE)$", "tTfF"),
        ("int", r"^(?:[-+]?(?:0|[1-9][0-9]*)|[-+]?0x[0-9a-fA-F]+)$", "-+0123456789"),
        ("float", r"^(?:[-+]?(?:\.[0-9]+|(?:0|[1-9][0-9]*)(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
                  r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$", "-+0123456789."),
        ("null", r"^(?:~|null|Null|NULL|)$", ["~", "n", "N", ""]),
        ("merge", r"^(?:<<)$", "<")):
    _Loader.add_implicit_resolver(f"tag:yaml.org,2002:{_tag}", re.compile(_pattern), list(_first))


class Dumper(getattr(yaml, "CSafeDumper", yaml.SafeDumper)):  # libyaml's where PyYAML has it: ~5x faster
    """PyYAML's safe dumper, quoting every text that either YAML 1.1 or bpcli's reader would take for another type.

    YAML 1.1 already quotes 'yes', '5_1' and '017'; `1e3` is text to YAML 1.1 but a number to bpcli, so it is
    quoted too, and a name such as "1e3" reads back as the text it is.
    """


Dumper.add_implicit_resolver("tag:yaml.org,2002:float", re.compile(
    r"^[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)[eE][-+]?[0-9]+$"), list("-+0123456789."))


def dump_yaml(doc: Any, **options) -> str:
    """YAML text that read_yaml (and any YAML 1.1 reader) reads back as `doc`."""
    return yaml.dump(doc, Dumper=Dumper, **options)


BOOL_WORDS = {"true": True, "yes": True, "on": True, "false": False, "no": False, "off": False}


def yaml11_hint(v: Any) -> str:
    """' (...)' saying how YAML 1.1 (most other YAML readers) would read the text v where a number is wanted, or ''.

    `5_1` is 51 there, `017` is 15, `1:30` is 90 and `yes` is true: bpcli keeps them as the text written and
    refuses them where a number is wanted, so the file means the same thing to every reader.
    """
    if not isinstance(v, str) or len(v) > 100:
        return ""
    tag = yaml.resolver.Resolver().resolve(yaml.ScalarNode, v, (True, False))  # YAML 1.1's type for this text
    if tag.rsplit(":", 1)[-1] not in ("bool", "int", "float"):
        return ""
    try:
        old = yaml.SafeLoader("").construct_object(yaml.ScalarNode(tag, v))
    except (yaml.YAMLError, ValueError, OverflowError):  # YAML 1.1's own reader fails on '0x_' or '1_:0'
        return ""
    if isinstance(old, bool):
        return f" (YAML 1.1 would read '{v}' as {str(old).lower()}; bpcli reads it as text)"
    if isinstance(old, (int, float)):
        return f" (YAML 1.1 would read '{v}' as {old!r}; write {old!r} if that is meant)"
    return ""


def as_bool(v: Any) -> bool | None:
    """true/false, or the words yes/no/on/off (any case) a person may write for them; None for anything else."""
    if isinstance(v, bool):
        return v
    return BOOL_WORDS.get(v.strip().lower()) if isinstance(v, str) else None


class Locations:
    """Line numbers of every config path (and each scalar's text as written), from PyYAML's node tree."""

    def __init__(self, node: yaml.Node | None):
        self.lines: dict[tuple, int] = {}
        self.duplicates: list[tuple[tuple, int, int]] = []  # (path, line of the first, line of the repeat)
        self.texts: dict[tuple, str] = {}  # a scalar's text as written (the numbers' precision)
        self._budget = 200_000
        self._seen: set[int] = set()  # an alias repeats a node: its inside keeps the alias's line
        if node is not None:
            self._walk(node, (), 0)

    def _walk(self, node: yaml.Node, path: tuple, depth: int) -> None:
        self._budget -= 1
        if self._budget < 0 or depth > 60:
            return
        self.lines.setdefault(path, node.start_mark.line + 1)
        if isinstance(node, yaml.ScalarNode):
            self.texts.setdefault(path, node.value)
        if isinstance(node, yaml.CollectionNode):
            if id(node) in self._seen:
                return
            self._seen.add(id(node))
        if isinstance(node, yaml.MappingNode):
            seen: dict[str, int] = {}
            for k, v in node.value:
                key = k.value if isinstance(k, yaml.ScalarNode) else str(k)
                if key in seen:
                    self.duplicates.append((path + (key,), seen[key], k.start_mark.line + 1))
                else:
                    seen[key] = k.start_mark.line + 1
                self.lines.setdefault(path + (key,), k.start_mark.line + 1)
                self._walk(v, path + (key,), depth + 1)
        elif isinstance(node, yaml.SequenceNode):
            for i, v in enumerate(node.value):
                self._walk(v, path + (i,), depth + 1)

    def line(self, path: tuple) -> int | None:
        while path:
            if path in self.lines:
                return self.lines[path]
            path = path[:-1]
        return self.lines.get(())


def format_path(path: tuple) -> str:
    """('layers', 0, 'size') -> 'layers[0].size'."""
    out = ""
    for p in path:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out or "(top level)"


def read_yaml(text: str, source: str) -> tuple[Any, Locations]:
    """Parse YAML safely; ConfigError with the line on a syntax error, a Python-object tag or an alias bomb.

    The document is composed once into nodes, its size after expanding aliases is counted on those nodes
    (each distinct node once), and only a document within MAX_YAML_NODES is constructed.
    """
    node = None
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        if node is not None:
            _check_expansion(node, source)
        doc = loader.construct_document(node) if node is not None else None
    except yaml.constructor.ConstructorError as err:
        line = f":{err.problem_mark.line + 1}" if err.problem_mark else ""
        problem = err.problem or ""
        if "constructor for the tag" in problem:
            tag = problem.split("'")[1] if "'" in problem else "?"
            tag = tag.replace("tag:yaml.org,2002:", "!!")
            raise ConfigError([f"{source}{line}: refused YAML tag '{tag}': bpcli reads plain YAML only "
                               "and never constructs Python objects"]) from None
        if "unhashable key" in problem:
            problem = "a key is a list or a mapping; keys must be plain names"
        raise ConfigError([f"{source}{line}: invalid YAML: {problem}"]) from None
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        if "nesting depth" in problem:  # libyaml's own limit
            raise ConfigError([f"{source}{line}: YAML is nested too deeply"]) from None
        raise ConfigError([f"{source}{line}: invalid YAML: {problem}"]) from None
    except RecursionError:
        raise ConfigError([f"{source}: YAML is nested too deeply"]) from None
    except ValueError:  # int() refuses integers of more than 4300 digits
        raise ConfigError([f"{source}{_long_scalar_line(node)}: a number is too long (over 4300 digits)"]) from None
    finally:
        loader.dispose()
    return doc, Locations(node)


def expanded_size(node: yaml.Node, limit: int, size: dict[int, int] | None = None) -> tuple[int, yaml.Node | None]:
    """(nodes under `node` with every alias expanded, capped just above `limit`; a node on a cycle or None).

    Each distinct node is visited once (an alias is the same node object again), so a billion laughs costs
    what its text costs. A cycle is an alias to a collection that holds it: infinite when expanded.
    `size` (id -> expanded size) is filled in as a memo and may be shared between calls.
    """
    size = {} if size is None else size
    on_path: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(node, False)]
    while stack:
        n, done = stack.pop()
        key = id(n)
        if done:
            children = _children(n)
            size[key] = min(1 + sum(size[id(c)] for c in children), limit + 1)
            on_path.discard(key)
            continue
        if key in size:
            continue
        if key in on_path:
            return limit + 1, n
        on_path.add(key)
        stack.append((n, True))
        for c in _children(n):
            if id(c) in on_path:
                return limit + 1, c
            if id(c) not in size:
                stack.append((c, False))
    return size[id(node)], None


def _children(n: yaml.Node) -> list[yaml.Node]:
    if isinstance(n, yaml.SequenceNode):
        return n.value
    if isinstance(n, yaml.MappingNode):
        return [x for kv in n.value for x in kv]
    return []


def _check_expansion(root: yaml.Node, source: str) -> None:
    """ConfigError naming the top-level key whose aliases expand past MAX_YAML_NODES, or a recursive alias."""
    sizes: dict[int, int] = {}
    total, cycle = expanded_size(root, MAX_YAML_NODES, sizes)
    if cycle is not None:
        raise ConfigError([f"{source}:{cycle.start_mark.line + 1}: an alias refers to a list or mapping that holds "
                           "it (a recursive document); bpcli refuses it"])
    if total <= MAX_YAML_NODES:
        return
    where, line = "", f":{root.start_mark.line + 1}"
    if isinstance(root, yaml.MappingNode) and root.value:
        k, v = max(root.value, key=lambda kv: sizes.get(id(kv[1]), 0))
        where = f" {k.value}:" if isinstance(k, yaml.ScalarNode) else ""
        line = f":{k.start_mark.line + 1}"
    raise ConfigError([f"{source}{line}:{where} the document expands to more than {MAX_YAML_NODES:,} values once "
                       "its aliases (*name) are expanded; bpcli refuses such an alias bomb (put large data in a "
                       "CSV file)"])


def _long_scalar_line(node: yaml.Node | None) -> str:
    """':N' for the first scalar longer than 4000 characters, else ''."""
    stack, budget = [node], 200_000
    while stack and budget > 0:
        n = stack.pop()
        budget -= 1
        if isinstance(n, yaml.ScalarNode) and len(n.value) > 4000:
            return f":{n.start_mark.line + 1}"
        if isinstance(n, yaml.SequenceNode):
            stack.extend(reversed(n.value))
        elif isinstance(n, yaml.MappingNode):
            stack.extend(x for kv in reversed(n.value) for x in reversed(kv))
    return ""
