"""Reading YAML safely while remembering the line of every config path, for located error messages."""

from __future__ import annotations

from typing import Any

import yaml

from bpcli.errors import ConfigError


class Locations:
    """Line numbers of every config path, from PyYAML's node tree."""

    def __init__(self, node: yaml.Node | None):
        self.lines: dict[tuple, int] = {}
        self.duplicates: list[tuple[tuple, int]] = []
        self._budget = 200_000
        self._seen: set[int] = set()  # an alias repeats a node: its inside keeps the alias's line
        if node is not None:
            self._walk(node, (), 0)

    def _walk(self, node: yaml.Node, path: tuple, depth: int) -> None:
        self._budget -= 1
        if self._budget < 0 or depth > 60:
            return
        self.lines.setdefault(path, node.start_mark.line + 1)
        if isinstance(node, yaml.CollectionNode):
            if id(node) in self._seen:
                return
            self._seen.add(id(node))
        if isinstance(node, yaml.MappingNode):
            seen = set()
            for k, v in node.value:
                key = k.value if isinstance(k, yaml.ScalarNode) else str(k)
                if key in seen:
                    self.duplicates.append((path + (key,), k.start_mark.line + 1))
                seen.add(key)
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
    """Parse YAML safely; ConfigError with the line on a syntax error or a Python-object tag."""
    node = None
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        doc = yaml.safe_load(text)
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
        raise ConfigError([f"{source}{line}: invalid YAML: {problem}"]) from None
    except RecursionError:
        raise ConfigError([f"{source}: YAML is nested too deeply"]) from None
    except ValueError:  # int() refuses integers of more than 4300 digits
        raise ConfigError([f"{source}{_long_scalar_line(node)}: a number is too long (over 4300 digits)"]) from None
    return doc, Locations(node)


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
