"""The result objects of `bpcli explain` and the symbol spellings they use (plain text and LaTeX)."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

# --- user text in LaTeX: one escaper ----------------------------------------------------------------

_TEX_TEXT = {"\\": r"\textbackslash{}", "{": r"\{", "}": r"\}", "$": r"\$", "&": r"\&", "#": r"\#",
             "^": r"\^{}", "_": r"\_", "%": r"\%", "~": r"\~{}", "<": r"\textless{}", ">": r"\textgreater{}",
             "|": r"\textbar{}"}
_TEX_MATH = {"\\": r"\backslash{}", "{": r"\{", "}": r"\}", "$": r"\$", "&": r"\&", "#": r"\#", "^": r"\hat{}",
             "_": r"\_", "%": r"\%", "~": r"\tilde{}", " ": r"\ "}
# letters beyond ASCII that pdflatex sets out of the box (utf8 input, OT1 fonts); any other becomes [U+XXXX]
_LATIN = frozenset(chr(c) for c in range(0xC0, 0x100)) - frozenset("×÷ÐðÞþ") | frozenset("Œœ")


def tex_escape(s: str, math: bool = False) -> str:
    """User text (a name, a class, a path) as LaTeX that prints it and does nothing else: each of
    \\ { } $ & # ^ _ % ~ as the character itself, tabs and line ends as spaces, control characters as ?, letters
    pdflatex cannot set as [U+XXXX]. math: for inside \\mathrm{...} in math mode (spaces kept as \\ )."""
    table = _TEX_MATH if math else _TEX_TEXT
    out = []
    for ch in str(s):
        if ch in table:
            out.append(table[ch])
        elif " " <= ch <= "~":
            out.append(ch)
        elif ch in "\t\n\r\x0b\x0c":
            out.append(table.get(" ", " "))
        elif unicodedata.category(ch)[0] == "C":  # control, format, surrogate, private use, unassigned
            out.append("?")
        elif ch in _LATIN:
            out.append(rf"\text{{{ch}}}" if math else ch)
        else:
            out.append(f"[U+{ord(ch):04X}]")
    return "".join(out)


# --- symbols: every symbol has a plain-text and a LaTeX spelling ----------------------------------


def tex_symbol(s: str) -> str:
    """LaTeX for a plain symbol: w11 -> w_{11}, b_A1 -> b_{A1}, y'1 -> y'_{1}, z_B -> z_{B}, age -> \\mathrm{age}."""
    if re.fullmatch(r"-?\d+(\.\d+)?", s, re.ASCII):
        return s
    m = re.fullmatch(r"([a-zA-Z])(')?_?([A-Z]?\d*(?:_\d+)?|[A-Z][a-z]?)", s, re.ASCII) or \
        re.fullmatch(r"([oyz])(')?([a-z])", s)  # a node index: o_Bq, y'q, oq
    if m and m.group(3):
        return f"{m.group(1)}{m.group(2) or ''}_{{{m.group(3).replace('_', ',')}}}"
    if re.fullmatch(r"[a-zA-Z]'?", s):
        return s
    return rf"\mathrm{{{tex_escape(s, math=True)}}}"


def d_text(num: str, den: str) -> str:
    return f"d{num}/d{den}"


def d_tex(num: str, den: str) -> str:
    n = "L_i" if num == "L_i" else tex_symbol(num) if num not in ("L", "C") else num
    return rf"\frac{{\partial {n}}}{{\partial {tex_symbol(den)}}}"


def fp_text(node: str) -> str:
    return f"f_{node}'(z_{node})"


def fp_tex(node: str) -> str:
    return f"f_{{{node}}}'(z_{{{node}}})"


# --- result objects ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Step:
    """One line of the symbolic derivation: `text` (plain) and `tex` are the same equation."""

    label: str
    text: str
    tex: str
    note: str


@dataclass(frozen=True)
class Factor:
    """One factor of dL_i/dp, with its value for every sample. kind: loss|act|weight|input|one|delta|upstream."""

    symbol: str
    tex: str
    kind: str
    rule: str  # the formula it comes from, or what it is
    values: tuple[float, ...]

    def to_dict(self) -> dict:
        return {"symbol": self.symbol, "latex": self.tex, "kind": self.kind, "rule": self.rule,
                "values": list(self.values)}


@dataclass(frozen=True)
class Operand:
    symbol: str
    value: float


@dataclass(frozen=True)
class DetailLine:
    """A factor at the detail sample: its value, the formula, and the numbers that go into it."""

    symbol: str
    value: float
    rule: str
    operands: tuple[Operand, ...]

    def to_dict(self) -> dict:
        return {"symbol": self.symbol, "value": self.value, "rule": self.rule,
                "operands": {o.symbol: o.value for o in self.operands}}


@dataclass(frozen=True)
class SumRow:
    node: str
    delta_symbol: str
    delta: float
    weight_symbol: str
    weight: float
    product: float


@dataclass(frozen=True)
class SumTable:
    """How one upstream gradient collects at the detail sample: total = sum of delta * weight over the rows."""

    title: str
    result_symbol: str
    delta_header: str
    weight_header: str
    rows: tuple[SumRow, ...]
    total: float
    combine: tuple[Operand, ...]  # what the total is multiplied with next (f'(z), the input), and the result
    result: Operand | None

    def to_dict(self) -> dict:
        return {
            "title": self.title, "result": self.result_symbol, "total": self.total,
            "rows": [{"node": r.node, "delta_symbol": r.delta_symbol, "delta": r.delta,
                      "weight_symbol": r.weight_symbol, "weight": r.weight, "product": r.product} for r in self.rows],
            "combine": {o.symbol: o.value for o in self.combine},
            "combined": None if self.result is None else {self.result.symbol: self.result.value},
        }


@dataclass(frozen=True)
class NodeDelta:
    node: str
    upstream_symbol: str
    upstream: float | None  # dL/da of the node (None when fused)
    fprime: float | None  # f'(z) (None for softmax or fused)
    delta: float  # dL/dz, the engine's value


@dataclass(frozen=True)
class LayerDeltas:
    """The deltas of one layer at the detail sample, as the engine backpropagated them."""

    letter: str
    rule: str
    nodes: tuple[NodeDelta, ...]

    def to_dict(self) -> dict:
        return {"layer": self.letter, "rule": self.rule,
                "nodes": [{"node": n.node, "upstream_symbol": n.upstream_symbol, "upstream": n.upstream,
                           "fprime": n.fprime, "delta": n.delta} for n in self.nodes]}


@dataclass(frozen=True)
class PathTerm:
    """One path from the parameter to the loss: its factors (loss first), values at the detail sample."""

    nodes: tuple[str, ...]
    symbols: tuple[str, ...]
    tex: tuple[str, ...]
    values: tuple[float, ...]
    sample_product: float
    contribution: float  # 1/m * sum_i (product of the factors at sample i)

    def to_dict(self) -> dict:
        return {"nodes": list(self.nodes), "factors": [{"symbol": s, "value": v} for s, v in zip(self.symbols, self.values)],
                "sample_product": self.sample_product, "contribution": self.contribution}


@dataclass(frozen=True)
class Paths:
    count: int
    limit: int
    listed: tuple[PathTerm, ...] | None  # None when count > limit
    sample_sum: float | None
    total: float | None

    def to_dict(self) -> dict:
        return {"count": self.count, "limit": self.limit,
                "paths": None if self.listed is None else [p.to_dict() for p in self.listed],
                "sample_sum": self.sample_sum, "total": self.total}


@dataclass(frozen=True)
class NumericCheck:
    """Central difference (C(p + h) - C(p - h)) / 2h in float64 against the engine's gradient."""

    gradient: float
    h: float
    abs_error: float
    rel_error: float
    agrees: bool  # the verdict passes
    note: str
    verdict: str = "good"  # gradcheck's verdict words: good, ok, suspicious, wrong, not finite, inconclusive

    def to_dict(self) -> dict:
        return {"gradient": self.gradient, "h": self.h, "abs_error": self.abs_error,
                "relative_error": self.rel_error, "agrees": self.agrees, "verdict": self.verdict,
                "note": self.note}


@dataclass(frozen=True)
class Update:
    """The configured optimiser's next update of the parameter, each term as Optimizer.step computed it.

    terms: (name, value) in optim.TERMS order: decay (weight_decay * p), g (the gradient the update uses),
    v_prev and v (momentum's velocity), m_prev, v_prev, m, v, c1 = 1 - beta1^t, c2 = 1 - beta2^t, m_hat, v_hat,
    denom = sqrt(v_hat) + epsilon (adam), step (what is subtracted); l1 (l1 * sign(p)), look (nesterov's g + mu v),
    s_prev and s (adagrad's sum of g^2), adamw's decay (lr * wd * p): optim.TERMS lists each optimiser's.
    hyper: momentum, alpha, beta1, beta2, epsilon as the optimiser uses them (optim.hyper_of), and l1 when on.
    """

    optimizer: str
    trainable: bool
    old: float
    gradient: float  # dC/dp
    new: float
    lr: float
    t: int  # which step of training this update is (1 = the first)
    weight_decay: float  # 0 for a bias: weight decay applies to weights only
    terms: tuple[tuple[str, float], ...]
    hyper: tuple[tuple[str, float], ...]
    note: str

    def term(self, name: str) -> float | None:
        return dict(self.terms).get(name)

    def to_dict(self) -> dict:
        return {"optimizer": self.optimizer, "trainable": self.trainable, "t": self.t, "lr": self.lr,
                **dict(self.hyper), "weight_decay": self.weight_decay, "old": self.old, "gradient": self.gradient,
                "terms": dict(self.terms), "new": self.new, "note": self.note}


@dataclass(frozen=True)
class Explanation:
    """dC/dp for one parameter p, as the chain rule: symbolic steps, then every factor's value per sample."""

    name: str
    kind: str  # weight | bias
    layer: str
    layer_index: int
    to_node: str
    from_node: str  # the input symbol, or "1" for a bias
    value: float
    trainable: bool
    position: str  # output | hidden
    output_mode: str  # elementwise | fused | softmax_jacobian
    loss: str
    steps: tuple[Step, ...]
    chain: Step  # the whole of dL_i/dp in one line
    m: int
    input_names: tuple[str, ...]
    output_names: tuple[str, ...]  # y' or y'1, y'2, ...
    target_names: tuple[str, ...]  # y or y1, y2, ...
    focus_outputs: tuple[int, ...]  # which outputs matter most for this parameter (for the table)
    x: tuple[tuple[float, ...], ...]
    y: tuple[tuple[float, ...], ...]
    y_hat: tuple[tuple[float, ...], ...]
    columns: tuple[Factor, ...]  # the chain's factors (the whole path when there is only one)
    compact: tuple[Factor, ...]  # the same product in three factors or fewer: dL/da, f'(z), input
    products: tuple[float, ...]  # dL_i/dp for every sample
    mean: float  # 1/m sum_i dL_i/dp
    engine: float  # the engine's dC/dp
    engine_samples_diff: float  # max_i |product_i - dz_i * a_in_i| against the engine's own deltas
    numeric: NumericCheck
    update: Update
    sample: int  # the detail sample (0-based)
    sample_given: bool
    detail: tuple[DetailLine, ...]
    sums: tuple[SumTable, ...]
    layers: tuple[LayerDeltas, ...]
    paths: Paths | None
    dtype: str
    classes: tuple[tuple[str, str], ...] = ()  # (output node, the class it stands for) of a classifier

    @property
    def agrees(self) -> bool:
        scale = max(abs(self.mean), abs(self.engine), 1e-300)
        tol = 1e-9 if self.dtype == "float64" else 1e-4
        return abs(self.mean - self.engine) <= tol * scale + 1e-15

    def to_dict(self) -> dict:
        return {
            "weight": self.name, "kind": self.kind,
            "location": {"layer": self.layer, "layer_index": self.layer_index, "to": self.to_node,
                         "from": self.from_node, "class": dict(self.classes).get(self.to_node)},
            "classes": dict(self.classes),
            "value": self.value, "trainable": self.trainable, "position": self.position,
            "output_delta": self.output_mode, "loss": self.loss, "dtype": self.dtype,
            "steps": [{"label": s.label, "equation": s.text, "latex": s.tex, "note": s.note} for s in self.steps],
            "chain": {"equation": self.chain.text, "latex": self.chain.tex, "note": self.chain.note},
            "m": self.m,
            "factors": [f.to_dict() for f in self.columns],
            "compact_factors": [f.to_dict() for f in self.compact],
            "samples": [
                {"sample": i + 1, "inputs": dict(zip(self.input_names, self.x[i])),
                 "target": dict(zip(self.target_names, self.y[i])),
                 "output": dict(zip(self.output_names, self.y_hat[i])),
                 "factors": [f.values[i] for f in self.columns], "product": self.products[i]}
                for i in range(self.m)
            ],
            "mean": self.mean, "engine_gradient": self.engine, "agrees_with_engine": self.agrees,
            "numeric_check": self.numeric.to_dict(), "update": self.update.to_dict(),
            "detail_sample": self.sample + 1,
            "detail": [d.to_dict() for d in self.detail],
            "sums": [s.to_dict() for s in self.sums],
            "deltas": [ld.to_dict() for ld in self.layers],
            "paths": None if self.paths is None else self.paths.to_dict(),
        }


@dataclass(frozen=True)
class ExplainReport:
    """What `bpcli explain` prints: one Explanation per requested parameter."""

    name: str
    source: str
    scaled: bool
    explanations: tuple[Explanation, ...]
    scaling: tuple[tuple[str, float, float], ...] = ()  # (input, mean, std) of a standardised run: x = (raw - mean) / std

    @property
    def ok(self) -> bool:
        return all(e.numeric.agrees and e.agrees for e in self.explanations)

    @property
    def exit_code(self) -> int:
        """0 when every check agrees; 1 when one disagrees or is not finite; 3 when a numeric check is only
        inconclusive (gradcheck's codes)."""
        failed = any(not e.agrees or (not e.numeric.agrees and e.numeric.verdict != "inconclusive")
                     for e in self.explanations)
        return 1 if failed else 3 if not self.ok else 0

    def problems(self) -> list[str]:
        """One line per check that did not agree, for stderr."""
        out = []
        for e in self.explanations:
            if not e.agrees:
                out.append(f"{e.name}: the mean of the factor products {e.mean:.6g} disagrees with the "
                           f"engine's gradient {e.engine:.6g}")
            nc = e.numeric
            if nc.agrees:
                continue
            if nc.verdict == "inconclusive":
                out.append(f"{e.name}: the central difference {nc.gradient:.6g} cannot check the gradient "
                           f"{e.engine:.6g}; {nc.note}")
            elif nc.verdict == "not finite":
                out.append(f"{e.name}: the gradient {e.engine:.6g} or the central difference {nc.gradient:.6g} "
                           "is not finite")
            else:
                out.append(f"{e.name}: the gradient {e.engine:.6g} disagrees with the central difference "
                           f"{nc.gradient:.6g} (relative error {nc.rel_error:.2g})" + (f"; {nc.note}" if nc.note else ""))
        return out

    def to_dict(self) -> dict:
        return {"command": "explain", "name": self.name, "source": self.source,
                "inputs_standardized": self.scaled,
                "input_scaling": {"formula": "x = (raw - mean) / std",
                                  "mean": {nm: m for nm, m, _ in self.scaling},
                                  "std": {nm: sd for nm, _, sd in self.scaling}} if self.scaling else None,
                "explanations": [e.to_dict() for e in self.explanations]}
