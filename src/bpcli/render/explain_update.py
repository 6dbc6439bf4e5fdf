"""explain's update lines: the optimiser's next step of one parameter, written once, rendered as text or LaTeX."""

from __future__ import annotations

from dataclasses import dataclass

from bpcli.render import DIGITS, digits_apart, fmt

NAMES = {"gd": "gradient descent", "sgd": "stochastic gradient descent", "momentum": "gradient descent with momentum",
         "adam": "Adam"}


def num(v: float | None, digits: int = 6) -> str:
    """A number inside a formula: negative numbers in parentheses."""
    s = fmt(v, digits)
    return f"({s})" if s.startswith("-") else s


def settings_text(optimizer: str, lr: float, hyper, weight_decay: float) -> str:
    """An optimiser's settings: 'lr = 0.05, beta1 = 0.9, beta2 = 0.999, eps = 1e-08, weight decay wd = 0.01'."""
    h = dict(hyper)
    parts = [f"lr = {fmt(lr)}"]
    if optimizer == "momentum":
        parts.append(f"mu = {fmt(h['momentum'])}")
    elif optimizer == "adam":
        parts.append(f"beta1 = {fmt(h['beta1'])}, beta2 = {fmt(h['beta2'])}, eps = {fmt(h['epsilon'])}")
    if weight_decay:
        parts.append(f"weight decay wd = {fmt(weight_decay)}")
    return ", ".join(parts)


def update_header(u) -> str:
    """Which optimiser, its settings and which step of training the update is: 'Adam (adam), lr = 0.05, ...'."""
    return (f"{NAMES.get(u.optimizer, u.optimizer)} ({u.optimizer}), "
            f"{settings_text(u.optimizer, u.lr, u.hyper, u.weight_decay)}, training step t = {u.t}")


# The update's lines are written once, as lists of pieces, and rendered as plain text or as LaTeX: a str is the same
# in both, _Sp spells a symbol each way, _Num is one of the update's numbers, _Frac and _Sqrt are the layouts that
# differ, and _Only keeps a step that one form writes out and the other skips.


@dataclass(frozen=True)
class _Sp:
    text: str
    tex: str


@dataclass(frozen=True)
class _Num:
    value: float
    paren_text: bool = False  # negative numbers in parentheses (a factor inside a product)
    paren_tex: bool = False
    digits: int = DIGITS


@dataclass(frozen=True)
class _Frac:
    num: tuple
    den: tuple
    paren: bool = True  # the plain-text denominator in parentheses


@dataclass(frozen=True)
class _Sqrt:
    arg: tuple


@dataclass(frozen=True)
class _Only:
    form: str  # "text" or "tex"
    pieces: tuple


def _paren(v: float) -> _Num:
    return _Num(v, True, True)


_TIMES = _Sp(" * ", r" \cdot ")
_ARROW = _Sp(" <- ", r" \leftarrow ")


def _update_pieces(P: _Sp, u) -> list[tuple]:
    """The update of parameter P, one tuple of pieces per line (a line wrapped in _Only is one form's alone)."""
    T, H = dict(u.terms), dict(u.hyper)
    d = digits_apart(u.old, u.new)
    old, new, lr = _Num(u.old, digits=d), _Num(u.new, digits=d), _Num(u.lr)
    dC = _Sp(f"dC/d{P.text}", rf"\frac{{\partial C}}{{\partial {P.tex}}}")
    lines: list[tuple] = []
    G: object = dC
    if u.weight_decay:
        lines.append(("g = ", dC, " + ", _Sp("wd * ", r"\lambda "), P, " = ", _paren(u.gradient), " + ",
                      _Num(u.weight_decay), _TIMES, _paren(u.old), " = ", _paren(u.gradient), " + ",
                      _paren(T["decay"]), " = ", _Num(T["g"])))
        G = "g"
    g = _paren(T["g"])
    if u.optimizer == "momentum":
        lines.append(("v = ", _Sp("mu * v_prev", r"\mu\, v_{\mathrm{prev}}"), " + ", G, " = ", _Num(H["momentum"]),
                      _TIMES, _paren(T["v_prev"]), " + ", g, " = ", _Num(T["v"])))
        lines.append((P, _ARROW, P, " - ", _Sp("lr * v", r"\eta\, v"), " = ", old, " - ", lr, _TIMES,
                      _paren(T["v"]), " = ", new))
    elif u.optimizer == "adam":
        b1, b2, t = _Num(H["beta1"]), _Num(H["beta2"]), u.t
        G2 = "g^2" if G == "g" else (_Sp("(", r"\left("), G, _Sp(")^2", r"\right)^2"))
        m_hat, v_hat = _Sp("m_hat", r"\hat m"), _Sp("v_hat", r"\hat v")
        lines += [
            ("m = ", _Sp("beta1 * m_prev + (1 - beta1) * ", r"\beta_1 m_{\mathrm{prev}} + (1 - \beta_1)\, "), G,
             " = ", b1, _TIMES, _paren(T["m_prev"]), " + (1 - ", b1, ")", _TIMES, g, " = ", _Num(T["m"])),
            ("v = ", _Sp("beta2 * v_prev + (1 - beta2) * ", r"\beta_2 v_{\mathrm{prev}} + (1 - \beta_2)\, "), G2,
             " = ", b2, _TIMES, _paren(T["v_prev"]), " + (1 - ", b2, ")", _TIMES, g, "^2 = ", _Num(T["v"])),
            (m_hat, " = ", _Frac(("m",), ("1 - ", _Sp("beta1^t", r"\beta_1^{t}"))), " = ",
             _Frac((_Num(T["m"]),), ("1 - ", b1, _Sp(f"^{t}", f"^{{{t}}}"))),
             _Only("text", (" = ", _Num(T["m"]), " / ", _Num(T["c1"]))), " = ", _Num(T["m_hat"])),
            (v_hat, " = ", _Frac(("v",), ("1 - ", _Sp("beta2^t", r"\beta_2^{t}"))), " = ",
             _Frac((_Num(T["v"]),), ("1 - ", b2, _Sp(f"^{t}", f"^{{{t}}}"))),
             _Only("text", (" = ", _Num(T["v"]), " / ", _Num(T["c2"]))), " = ", _Num(T["v_hat"])),
            (_Only("tex", (_Sqrt((v_hat,)), " + ", _Sp("eps", r"\epsilon"), " = ", _Sqrt((_Num(T["v_hat"]),)), " + ",
                           _Num(H["epsilon"]), " = ", _Num(T["denom"]))),),
            (P, _ARROW, P, " - ", _Sp("lr * ", r"\eta\,"),
             _Frac((m_hat,), (_Sqrt((v_hat,)), " + ", _Sp("eps", r"\epsilon"))),
             _Only("text", (" = ", old, " - ", lr, " * ", _paren(T["m_hat"]), " / (", _Sqrt((_Num(T["v_hat"]),)),
                            " + ", _Num(H["epsilon"]), ")")),
             " = ", old, " - ", lr, _TIMES, _Frac((_Num(T["m_hat"], paren_text=True),), (_Num(T["denom"]),), False),
             " = ", old, " - ", _paren(T["step"]), " = ", new),
        ]
    else:
        lines.append((P, _ARROW, P, " - ", _Sp("lr * ", r"\eta\,"), G, " = ", old, " - ", lr, _TIMES, g, " = ", new))
    return lines


def _render(pieces, form: str, number) -> str:
    """One line of pieces in `form` ("text" or "tex"); number(value, digits) spells a number in that form."""
    out = []
    for p in pieces:
        if isinstance(p, str):
            out.append(p)
        elif isinstance(p, _Sp):
            out.append(p.text if form == "text" else p.tex)
        elif isinstance(p, _Num):
            s = number(p.value, p.digits)
            if form == "text":
                paren = p.paren_text and s.startswith("-")
            else:  # a power of ten (1.2 \times 10^{-5}) too
                paren = p.paren_tex and (s.startswith("-") or "times" in s)
            out.append(f"({s})" if paren else s)
        elif isinstance(p, _Frac):
            num, den = _render(p.num, form, number), _render(p.den, form, number)
            if form == "tex":
                out.append(rf"\frac{{{num}}}{{{den}}}")
            else:
                out.append(f"{num} / ({den})" if p.paren else f"{num} / {den}")
        elif isinstance(p, _Sqrt):
            arg = _render(p.arg, form, number)
            out.append(f"sqrt({arg})" if form == "text" else rf"\sqrt{{{arg}}}")
        elif isinstance(p, _Only):
            out.append(_render(p.pieces, form, number) if p.form == form else "")
        else:  # a nested group of pieces
            out.append(_render(p, form, number))
    return "".join(out)


def update_lines(P: str, u) -> list[str]:
    """The update of parameter P as formulas with their numbers, one line per quantity, the last the new value."""
    if not u.trainable:
        return []
    lines = (_render(line, "text", fmt) for line in _update_pieces(_Sp(P, P), u))
    return [ln for ln in lines if ln]


def update_tex_lines(P: str, u, tex_num, align: bool = False) -> list[str]:
    """The update lines in LaTeX (P: the parameter's LaTeX symbol; tex_num: the LaTeX number formatter); align:
    rows for align*, each with its & (the update's before its arrow, so the left column stays narrow)."""
    lines = _tex_lines(P, u, tex_num)
    if not align:
        return lines
    arrow = rf"{P} \leftarrow "
    return [ln.replace(arrow, rf"{P} &\leftarrow ", 1) if ln.startswith(arrow) else ln.replace(" = ", " &= ", 1)
            for ln in lines]


def _tex_lines(P: str, u, tex_num) -> list[str]:
    if not u.trainable:
        return []
    lines = (_render(line, "tex", tex_num) for line in _update_pieces(_Sp(P, P), u))
    return [ln for ln in lines if ln]
