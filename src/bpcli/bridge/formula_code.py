"""A checked formula as numpy or torch source, for `bpcli export`: written from the tree formula.py checked and
evaluates, node by node, never from the formula's text."""

from __future__ import annotations

import ast
import math
from collections.abc import Callable

import numpy as np

# the evaluator's own tables and compiler: the code calls what bpcli calls, and numbers are what bpcli computes
from bpcli.nn.formula import BINARY, COMPARE, FUNCTIONS, Formula, FormulaError, Compiler, parse_formula


# numpy's function name -> torch's counterpart on tensors; every operation the evaluator calls has one
_TORCH = {"add": "torch.add", "subtract": "torch.sub", "multiply": "torch.mul", "divide": "torch.div",
          "power": "torch.pow", "negative": "torch.neg", "less": "torch.lt", "less_equal": "torch.le",
          "greater": "torch.gt", "greater_equal": "torch.ge", "equal": "torch.eq", "not_equal": "torch.ne",
          "logical_and": "torch.logical_and", "exp": "torch.exp", "log": "torch.log", "log1p": "torch.log1p",
          "sqrt": "torch.sqrt", "absolute": "torch.abs", "tanh": "torch.tanh", "sin": "torch.sin",
          "cos": "torch.cos", "maximum": "torch.maximum", "minimum": "torch.minimum", "where": "torch.where"}


def _np_name(fn: Callable) -> str:
    """The numpy function the evaluator calls, by the name the generated code reaches it under."""
    name = fn.__name__
    if getattr(np, name, None) is not fn:  # never a look-alike: the code calls the very function bpcli does
        raise FormulaError(f"numpy's {name} cannot be written as code")
    return name


def formula_source(formula: Formula, variables: dict[str, str], target: str) -> str:
    """The expression of a checked formula as numpy or torch source, its variables renamed (e.g. {"z": "z"}).

    Written node by node from the tree the evaluator compiled, each node as the very numpy call the evaluator makes
    (a + b is np.add(a, b), a < b < c is np.logical_and(np.less(a, b), np.less(b, c)), constants plain floats as
    bpcli's), so the numpy code computes what bpcli computes, 1/0 and (-2)**1.5 included (inf and nan, never an
    exception or a complex number). For torch each call is its counterpart on tensors, each part without
    variables the number bpcli's evaluator gives it, and each tensor in the dtype numpy computes that part in
    (see _torch). Only numbers, the variables' new names and fixed function names reach the text; the formula's
    own text never does.
    """
    if target not in ("numpy", "torch"):
        raise ValueError(f"target: numpy or torch, not {target!r}")
    for v in variables.values():
        if not v.isidentifier():
            raise ValueError(f"variables: {v!r} is not a Python name")

    if target == "torch":
        kind, render = _torch(formula.tree.body, variables)
        return render("a64" if kind == "weak" else kind)

    def call(fn: Callable, *args: str) -> str:
        return f"np.{_np_name(fn)}({', '.join(args)})"

    def code(node: ast.AST) -> str:
        if isinstance(node, ast.Constant):
            return repr(_constant(node))
        if isinstance(node, ast.Name):
            return variables[node.id]
        if isinstance(node, ast.UnaryOp):
            inner = code(node.operand)
            return call(np.negative, inner) if isinstance(node.op, ast.USub) else inner
        if isinstance(node, ast.BinOp):
            return call(BINARY[type(node.op)], code(node.left), code(node.right))
        if isinstance(node, ast.Compare):
            parts = [code(c) for c in [node.left, *node.comparators]]
            out = call(COMPARE[type(node.ops[0])], parts[0], parts[1])
            for i in range(1, len(node.ops)):  # every link of a chain, as the evaluator does
                out = call(np.logical_and, out, call(COMPARE[type(node.ops[i])], parts[i], parts[i + 1]))
            return out
        if isinstance(node, ast.Call):
            return call(FUNCTIONS[node.func.id][0], *(code(a) for a in node.args))
        raise FormulaError(f"cannot write {type(node).__name__} as code")  # the checker refused it already

    return code(formula.tree.body)


Render = Callable[[str], str]


def _constant(node: ast.Constant) -> float:
    """A number of the formula as written, as a float (the checker refused text, booleans and numbers beyond
    float range)."""
    c = float(node.value)
    if not math.isfinite(c):
        raise FormulaError(f"the number {str(node.value)[:20]} is beyond float range")
    return c


def _torch(node: ast.AST, variables: dict[str, str]) -> tuple[str, Render]:
    """(kind, render) of a part of the tree as torch code that follows numpy's types as bpcli meets them.

    kind: "weak", a number as written (numpy gives it the dtype of the array it meets); "f64", a number computed
    by numpy (a float64, which makes what it meets float64); "a", an array in the network's dtype; "a64", one that
    numpy made float64; "bool". render(kind) writes the part as a tensor of that kind (DTYPE for "a", float64 for
    "a64": _t and _t64 make numbers tensors, .double() a tensor float64; in a float64 network all are the same).
    """
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.UAdd):
        return _torch(node.operand, variables)  # the evaluator returns the operand itself
    if isinstance(node, ast.Constant):
        c = _constant(node)
        return "weak", lambda k: f"_t({c!r})" if k == "a" else f"_t64({c!r})"
    if isinstance(node, ast.Name):
        name = variables[node.id]
        return "a", lambda k: name if k == "a" else f"{name}.double()"
    if not isinstance(node, ast.Compare) and not _uses(node, variables):
        # a part without variables is a number bpcli computes with numpy in float64 (1/0 is inf, (-2)**1.5 nan):
        # computed here by bpcli's own evaluator, it enters the model as that number
        with np.errstate(all="ignore"):
            c = float(Compiler(tuple(variables)).compile(node, 0)({}))
        text = f"_t64({c!r})" if math.isfinite(c) else f"_t64(float({str(c)!r}))"
        return "f64", lambda k: text

    def op(fn: Callable, parts: list[tuple[str, Render]], boolean: bool = False) -> tuple[str, Render]:
        kinds = {k for k, _ in parts if k != "bool"}
        kind = "a" if "a" in kinds and not kinds & {"a64", "f64"} else "a64"  # numpy's promotion
        args = [r(kind) for _, r in parts]
        name = _np_name(fn)
        if name == "clip":  # numpy's clip on floats: minimum(maximum(x, lo), hi), NaN from any argument
            text = f"torch.minimum(torch.maximum({args[0]}, {args[1]}), {args[2]})"
        else:
            text = f"{_TORCH[name]}({', '.join(args)})"
        if boolean:
            return "bool", lambda k: text
        return kind, lambda k: text if k == kind else f"{text}.double()"

    if isinstance(node, ast.UnaryOp):
        return op(np.negative, [_torch(node.operand, variables)])
    if isinstance(node, ast.BinOp):
        return op(BINARY[type(node.op)], [_torch(node.left, variables), _torch(node.right, variables)])
    if isinstance(node, ast.Compare):
        parts = [_torch(c, variables) for c in [node.left, *node.comparators]]
        out = op(COMPARE[type(node.ops[0])], parts[:2], boolean=True)
        for i in range(1, len(node.ops)):  # every link of a chain, as the evaluator does
            link = op(COMPARE[type(node.ops[i])], parts[i:i + 2], boolean=True)
            out = op(np.logical_and, [out, link], boolean=True)
        return out
    if isinstance(node, ast.Call):
        return op(FUNCTIONS[node.func.id][0], [_torch(a, variables) for a in node.args])
    raise FormulaError(f"cannot write {type(node).__name__} as code")  # the checker refused it already


def _uses(node: ast.AST, variables) -> bool:
    """True when the part of the tree under node reads one of the variables."""
    return any(isinstance(n, ast.Name) and n.id in variables for n in ast.walk(node))


def formula_code(text: str, variables: dict[str, str], target: str) -> str:
    """A formula given as text, checked, then written as numpy or torch source (see formula_source)."""
    return formula_source(parse_formula(text, tuple(variables)), variables, target)
