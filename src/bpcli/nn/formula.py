"""Activations and losses written as formulas in a config: a whitelisted `ast` tree evaluated with numpy.

Nothing of the user's text is ever run: it is parsed by `ast.parse` (which only reads), every node is checked
against a short whitelist, and the tree is turned into closures over numpy functions.  Imported only when a
config gives a formula, so commands without one never pay for it.
"""

from __future__ import annotations

import ast
import math
from collections.abc import Callable

import numpy as np

from bpcli.errors import ConfigError

Array = np.ndarray

MAX_CHARS = 400  # a formula longer than this is refused before it is parsed
MAX_DEPTH = 30  # nesting of the expression tree
MAX_NODES = 300
MAX_POWER = 64  # |p| in x**p; p must be a plain number

# name -> (numpy function, number of arguments)
FUNCTIONS: dict[str, tuple[Callable, int]] = {
    "exp": (np.exp, 1), "log": (np.log, 1), "log1p": (np.log1p, 1), "sqrt": (np.sqrt, 1), "abs": (np.abs, 1),
    "tanh": (np.tanh, 1), "sin": (np.sin, 1), "cos": (np.cos, 1),
    "maximum": (np.maximum, 2), "minimum": (np.minimum, 2), "where": (np.where, 3), "clip": (np.clip, 3),
}
BINARY = {ast.Add: np.add, ast.Sub: np.subtract, ast.Mult: np.multiply, ast.Div: np.divide, ast.Pow: np.power}
COMPARE = {ast.Lt: np.less, ast.LtE: np.less_equal, ast.Gt: np.greater, ast.GtE: np.greater_equal,
            ast.Eq: np.equal, ast.NotEq: np.not_equal}

Env = dict[str, Array]
Fn = Callable[[Env], Array]

ACTIVATION_KEYS = {"f": ("z",), "df": ("z", "a")}  # a = f(z) may appear in the derivative
LOSS_KEYS = {"L": ("y", "yhat"), "dL": ("y", "yhat")}  # yhat is y', the network's output


class FormulaError(Exception):
    """Why a formula was refused (one line, without its location)."""


def _kind(node: ast.AST) -> str:
    return {ast.Attribute: "attribute access", ast.Subscript: "a subscript", ast.Lambda: "a lambda",
            ast.Tuple: "a tuple", ast.List: "a list", ast.Dict: "a dict", ast.Set: "a set",
            ast.BoolOp: "and/or", ast.IfExp: "if/else (use where(cond, a, b))", ast.NamedExpr: "':='",
            ast.JoinedStr: "an f-string", ast.Starred: "'*'", ast.ListComp: "a comprehension",
            ast.GeneratorExp: "a comprehension", ast.Await: "await", ast.Slice: "a slice"}.get(
        type(node), type(node).__name__)


class Compiler:
    def __init__(self, variables: tuple[str, ...]):
        self.variables = variables
        self.nodes = 0

    def compile(self, node: ast.AST, depth: int, cond_ok: bool = False) -> Fn:
        self.nodes += 1
        if depth > MAX_DEPTH:
            raise FormulaError(f"nested more than {MAX_DEPTH} levels deep")
        if self.nodes > MAX_NODES:
            raise FormulaError(f"more than {MAX_NODES} parts")
        d = depth + 1
        if isinstance(node, ast.Constant):
            v = node.value
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                what = "text" if isinstance(v, (str, bytes)) else repr(v)
                raise FormulaError(f"{what} is not allowed; only numbers, {', '.join(self.variables)} and the "
                                   f"functions {', '.join(FUNCTIONS)}")
            try:
                c = float(v)
            except OverflowError:
                c = math.inf
            if not math.isfinite(c):
                raise FormulaError(f"the number {str(v)[:20]}... is beyond float range")
            return lambda env: c
        if isinstance(node, ast.Name):
            if node.id not in self.variables:
                hint = " (call it with brackets)" if node.id in FUNCTIONS else ""
                raise FormulaError(f"unknown name '{node.id[:40]}'{hint}; this formula may use "
                                   f"{' and '.join(self.variables)}")
            name = node.id
            return lambda env: env[name]
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
            inner = self.compile(node.operand, d)
            if isinstance(node.op, ast.UAdd):
                return inner
            return lambda env: np.negative(inner(env))
        if isinstance(node, ast.BinOp) and type(node.op) in BINARY:
            if isinstance(node.op, ast.Pow):
                p = _plain_number(node.right)
                if p is None or abs(p) > MAX_POWER:
                    raise FormulaError(f"the exponent of ** must be a plain number between -{MAX_POWER} and "
                                       f"{MAX_POWER}; found {_short(node.right)} (write exp(p * log(x)) for other "
                                       "powers)")
            op = BINARY[type(node.op)]
            left, right = self.compile(node.left, d), self.compile(node.right, d)
            return lambda env: op(left(env), right(env))
        if isinstance(node, ast.Compare):
            if not cond_ok:
                raise FormulaError("a comparison is allowed only as the first argument of where(cond, a, b)")
            if any(type(op) not in COMPARE for op in node.ops):
                raise FormulaError("only < <= > >= == != compare numbers")
            parts = [self.compile(c, d) for c in [node.left, *node.comparators]]
            ops = [COMPARE[type(op)] for op in node.ops]

            def compare(env: Env) -> Array:
                vals = [p(env) for p in parts]
                out = ops[0](vals[0], vals[1])
                for i in range(1, len(ops)):
                    out = np.logical_and(out, ops[i](vals[i], vals[i + 1]))
                return out
            return compare
        if isinstance(node, ast.Call):
            if not isinstance(node.func, ast.Name):
                raise FormulaError(f"{_kind(node.func)} is not allowed in a formula")
            if node.func.id not in FUNCTIONS:
                raise FormulaError(f"'{node.func.id[:40]}' is not an allowed function; allowed: "
                                   f"{', '.join(FUNCTIONS)}")
            fname = node.func.id
            fn, arity = FUNCTIONS[fname]
            if node.keywords or any(isinstance(a, ast.Starred) for a in node.args):
                raise FormulaError(f"{fname}() takes plain arguments only")
            if len(node.args) != arity:
                raise FormulaError(f"{fname}() takes {arity} argument{'s' if arity > 1 else ''}, "
                                   f"found {len(node.args)}")
            if fname == "where" and not isinstance(node.args[0], ast.Compare):
                raise FormulaError("where(cond, a, b) needs a comparison such as z > 0 as its first argument")
            args = [self.compile(a, d, cond_ok=(fname == "where" and i == 0)) for i, a in enumerate(node.args)]
            if arity == 1:
                a0 = args[0]
                return lambda env: fn(a0(env))
            return lambda env: fn(*[a(env) for a in args])
        raise FormulaError(f"{_kind(node)} is not allowed in a formula")


def _plain_number(node: ast.AST) -> float | None:
    sign = 1.0
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        sign = -1.0 if isinstance(node.op, ast.USub) else 1.0
        node = node.operand
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)) and not isinstance(node.value, bool):
        try:
            return sign * float(node.value)
        except OverflowError:
            return None
    return None


def _short(node: ast.AST) -> str:
    try:
        text = ast.unparse(node)
    except Exception:  # noqa: BLE001 - only for a message
        text = _kind(node)
    return text if len(text) <= 30 else text[:27] + "..."


class Formula:
    """A checked formula: `text` as written, `variables` it may use; call with arrays of one shape."""

    def __init__(self, text: str, variables: tuple[str, ...], fn: Fn, tree: ast.AST):
        self.text = text
        self.variables = variables
        self._fn = fn
        self.tree = tree

    def __call__(self, out: Array | None = None, **env: Array) -> Array:
        """Evaluate elementwise; the result has the shape and dtype of the first variable's array."""
        ref = env[self.variables[0]]
        with np.errstate(all="ignore"):  # overflow and log(0) show as inf and NaN, judged by the checks
            v = np.asarray(self._fn(env))
        if out is not None:
            np.copyto(out, np.broadcast_to(v, ref.shape), casting="unsafe")
            return out
        return np.array(np.broadcast_to(v, ref.shape), dtype=ref.dtype)

    def latex(self) -> str:
        return _tex(self.tree.body)

    def branches(self) -> Fn | None:
        """The conditions at which this formula changes piece, as one function of the variables returning a
        (k, *shape) bool stack, or None when it has no piece: where's comparison, the sign of abs's argument,
        which of maximum's or minimum's arguments wins, whether clip's argument lies below or above its bounds.
        Where one of them changes between two inputs, the formula may have a kink between them."""
        comp = Compiler(self.variables)
        conds: list[Fn] = []
        for node in ast.walk(self.tree):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)):
                continue
            name, args = node.func.id, node.args
            if name == "where":
                conds.append(comp.compile(args[0], 0, cond_ok=True))
            elif name == "abs":
                e = comp.compile(args[0], 0)
                conds.append(lambda env, e=e: e(env) > 0)
            elif name in ("maximum", "minimum"):
                p, q = comp.compile(args[0], 0), comp.compile(args[1], 0)
                conds.append(lambda env, p=p, q=q: p(env) > q(env))
            elif name == "clip":
                e, lo, hi = (comp.compile(a, 0) for a in args)
                conds.append(lambda env, e=e, lo=lo: e(env) > lo(env))
                conds.append(lambda env, e=e, hi=hi: e(env) < hi(env))
        if not conds:
            return None

        def branches(env) -> Array:
            ref = env[self.variables[0]]
            with np.errstate(all="ignore"):
                return np.stack([np.broadcast_to(c(env), ref.shape) for c in conds])
        return branches


def parse_formula(text, variables: tuple[str, ...]) -> Formula:
    """Check `text` against the whitelist; FormulaError saying what is not allowed."""
    if isinstance(text, bool) or not isinstance(text, (str, int, float)):
        raise FormulaError(f"expected a formula as text, found {type(text).__name__}")
    text = str(text).strip()
    if not text:
        raise FormulaError("the formula is empty")
    if len(text) > MAX_CHARS:
        raise FormulaError(f"the formula is {len(text)} characters long; at most {MAX_CHARS} are accepted")
    if not text.isprintable():
        raise FormulaError("the formula holds control characters")
    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError as err:
        raise FormulaError(f"not a formula: {err.msg}") from None
    except (ValueError, RecursionError, MemoryError):
        raise FormulaError("not a formula the checker can read (too deeply nested?)") from None
    fn = Compiler(variables).compile(tree.body, 0)
    return Formula(" ".join(text.split()), variables, fn, tree)


# --- LaTeX of a checked tree -------------------------------------------------------------------

_TEX_FN = {"exp": r"\exp", "log": r"\ln", "log1p": r"\operatorname{log1p}", "tanh": r"\tanh", "sin": r"\sin",
           "cos": r"\cos", "maximum": r"\max", "minimum": r"\min", "where": r"\operatorname{where}",
           "clip": r"\operatorname{clip}"}
_TEX_VAR = {"yhat": "y'"}


def _tex(node: ast.AST) -> str:
    if isinstance(node, ast.Constant):
        return f"{node.value:g}" if isinstance(node.value, float) else str(node.value)
    if isinstance(node, ast.Name):
        return _TEX_VAR.get(node.id, node.id)
    if isinstance(node, ast.UnaryOp):
        return ("-" if isinstance(node.op, ast.USub) else "+") + _wrap(node.operand)
    if isinstance(node, ast.BinOp):
        if isinstance(node.op, ast.Div):
            return rf"\frac{{{_tex(node.left)}}}{{{_tex(node.right)}}}"
        if isinstance(node.op, ast.Pow):
            return f"{_wrap(node.left)}^{{{_tex(node.right)}}}"
        sym = {ast.Add: " + ", ast.Sub: " - ", ast.Mult: r" \cdot "}[type(node.op)]
        return _tex(node.left) + sym + (_wrap(node.right) if isinstance(node.op, ast.Sub) else _tex(node.right))
    if isinstance(node, ast.Compare):
        out = _tex(node.left)
        for op, c in zip(node.ops, node.comparators):
            out += {ast.Lt: " < ", ast.LtE: r" \le ", ast.Gt: " > ", ast.GtE: r" \ge ", ast.Eq: " = ",
                    ast.NotEq: r" \ne "}[type(op)] + _tex(c)
        return out
    if isinstance(node, ast.Call):
        name = node.func.id
        args = [_tex(a) for a in node.args]
        if name == "abs":
            return rf"\left|{args[0]}\right|"
        if name == "sqrt":
            return rf"\sqrt{{{args[0]}}}"
        return rf"{_TEX_FN[name]}\left({', '.join(args)}\right)"
    return ""


def _wrap(node: ast.AST) -> str:
    t = _tex(node)
    return rf"\left({t}\right)" if isinstance(node, (ast.BinOp, ast.UnaryOp)) else t


# --- registry entries from formulas ------------------------------------------------------------


def _formulas(params: dict, keys: dict[str, tuple[str, ...]], where: str, what: str) -> dict[str, Formula]:
    problems, out = [], {}
    for key in params:
        if key not in keys:
            problems.append(f"{where}.{key}: unknown key; a {what} given by formula has keys name, "
                            f"{', '.join(keys)}")
    for key, variables in keys.items():
        if key not in params:
            first, second = keys
            problems.append(f"{where}: missing '{key}'; give both {first} (the function) and {second} (its "
                            "derivative, which backprop uses as written)")
            continue
        try:
            out[key] = parse_formula(params[key], variables)
        except FormulaError as err:
            problems.append(f"{where}.{key}: {err} (formula {_quote(params[key])})")
    if problems:
        raise ConfigError(problems)
    return out


def _quote(text) -> str:
    s = str(text)
    return repr(s if len(s) <= 40 else s[:37] + "...")


def _check_name(name, taken: list[str], where: str, what: str) -> str:
    if not isinstance(name, str) or not name.strip():
        raise ConfigError([f"{where}.name: give your {what} a name (text)"])
    key = name.strip()
    if key.lower() in taken:
        raise ConfigError([f"{where}.name: '{key}' is a built-in {what}; give your formula its own name "
                           f"(e.g. my_{key.lower()})"])
    return key


def formula_activation(name, params: dict, where: str, taken: list[str]) -> dict:
    """The fields of an Activation whose f and df are the user's formulas (df is what backprop uses).

    taken: the built-in names (and aliases), which a formula may not reuse.
    """
    key = _check_name(name, taken, where, "activation")
    fs = _formulas(params, ACTIVATION_KEYS, where, "activation")
    f, df = fs["f"], fs["df"]

    def fn(z: Array, out: Array | None = None) -> Array:
        return f(out, z=z)

    def grad(z: Array, a: Array, out: Array | None = None) -> Array:
        return df(out, z=z, a=a)

    pieces = f.branches()
    branches = None if pieces is None else (lambda z: pieces({"z": z}))

    return dict(name=key, fn=fn, grad=grad, formula=f"f(z) = {f.text}", grad_formula=f"f'(z) = {df.text}",
                latex=f"f(z) = {f.latex()}", grad_latex=f"f'(z) = {df.latex()}", params={"f": f.text, "df": df.text},
                branches=branches)


def formula_loss(name, params: dict, where: str, taken: list[str]) -> dict:
    """The fields of a Loss whose L and dL/dy' are the user's formulas in y and yhat, summed over the outputs."""
    key = _check_name(name, taken, where, "loss")
    fs = _formulas(params, LOSS_KEYS, where, "loss")
    L, dL = fs["L"], fs["dL"]

    def value(y_hat: Array, y: Array) -> Array:
        return np.sum(L(yhat=y_hat, y=y), axis=1)

    def grad(y_hat: Array, y: Array) -> Array:
        return dL(yhat=y_hat, y=y)

    return dict(name=key, value=value, grad=grad, formula=f"L = {L.text}", grad_formula=f"dL/dy' = {dL.text}",
                latex=f"L = {L.latex()}", grad_latex=rf"\frac{{\partial L}}{{\partial y'}} = {dL.latex()}",
                params={"L": L.text, "dL": dL.text})
