"""explain's update lines: the configured optimiser's next step of one parameter, every term with its number,
written once and rendered as plain text or as LaTeX."""

from __future__ import annotations

from dataclasses import dataclass

from bpcli.render.numbers import DIGITS, digits_apart, fmt

NAMES = {"gd": "gradient descent", "sgd": "stochastic gradient descent", "momentum": "gradient descent with momentum",
         "nesterov": "Nesterov momentum", "rmsprop": "RMSprop", "adagrad": "AdaGrad", "adam": "Adam",
         "adamw": "AdamW"}


def num(v: float | None, digits: int = 6) -> str:
    """A number inside a formula: negative numbers in parentheses."""
    s = fmt(v, digits)
    return f"({s})" if s.startswith("-") else s


def settings_text(optimizer: str, lr: float, hyper, weight_decay: float) -> str:
    """An optimiser's settings: 'lr = 0.05, beta1 = 0.9, beta2 = 0.999, eps = 1e-08, weight decay wd = 0.01'."""
    h = dict(hyper)
    parts = [f"lr = {fmt(lr)}"]
    if optimizer in ("momentum", "nesterov"):
        parts.append(f"mu = {fmt(h['momentum'])}")
    elif optimizer in ("adam", "adamw"):
        parts.append(f"beta1 = {fmt(h['beta1'])}, beta2 = {fmt(h['beta2'])}, eps = {fmt(h['epsilon'])}")
    elif optimizer == "rmsprop":
        parts.append(f"alpha = {fmt(h['alpha'])}, eps = {fmt(h['epsilon'])}")
    elif optimizer == "adagrad":
        parts.append(f"eps = {fmt(h['epsilon'])}")
    if weight_decay:
        parts.append(f"{'decoupled ' if optimizer == 'adamw' else ''}weight decay wd = {fmt(weight_decay)}")
    if "l1" in h:
        parts.append(f"L1 penalty l1 = {fmt(h['l1'])}")
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
_LR = _Sp("lr * ", r"\eta\,")
_EPS = _Sp("eps", r"\epsilon")
_PREV = {"m": _Sp("m_prev", r"m_{\mathrm{prev}}"), "v": _Sp("v_prev", r"v_{\mathrm{prev}}"),
         "s": _Sp("s_prev", r"s_{\mathrm{prev}}")}


def _update_pieces(P: _Sp, u) -> list[tuple]:
    """The update of parameter P, one tuple of pieces per line (a line wrapped in _Only is one form's alone)."""
    T, H = dict(u.terms), dict(u.hyper)
    d = digits_apart(u.old, u.new)
    old, new, lr = _Num(u.old, digits=d), _Num(u.new, digits=d), _Num(u.lr)
    lines: list[tuple] = []
    G = _gradient_line(P, u, lines)
    g = _paren(T["g"])
    G2 = "g^2" if G == "g" else (_Sp("(", r"\left("), G, _Sp(")^2", r"\right)^2"))
    if u.optimizer in ("momentum", "nesterov"):
        mu = _Num(H["momentum"])
        lines.append(("v = ", _Sp("mu * ", r"\mu\, "), _PREV["v"], " + ", G, " = ", mu, _TIMES, _paren(T["v_prev"]),
                      " + ", g, " = ", _Num(T["v"])))
        if u.optimizer == "momentum":
            lines.append((P, _ARROW, P, " - ", _Sp("lr * v", r"\eta\, v"), " = ", old, " - ", lr, _TIMES,
                          _paren(T["v"]), " = ", new))
        else:  # the step looks ahead: g + mu * v
            lines += [(G, " + ", _Sp("mu * v", r"\mu\, v"), " = ", g, " + ", mu, _TIMES, _paren(T["v"]), " = ",
                       _Num(T["look"])),
                      (P, _ARROW, P, " - ", _Sp("lr * (", r"\eta\,\left("), G, " + ", _Sp("mu * v)", r"\mu\, v\right)"),
                       " = ", old, " - ", lr, _TIMES, _paren(T["look"]), " = ", new)]
    elif u.optimizer in ("rmsprop", "adagrad"):
        acc = "v" if u.optimizer == "rmsprop" else "s"
        if u.optimizer == "rmsprop":
            a = _Num(H["alpha"])
            lines.append(("v = ", _Sp("alpha * ", r"\alpha\, "), _PREV["v"], " + ",
                          _Sp("(1 - alpha) * ", r"(1 - \alpha)\, "), G2, " = ", a, _TIMES, _paren(T["v_prev"]),
                          " + (1 - ", a, ")", _TIMES, g, "^2 = ", _Num(T["v"])))
        else:
            lines.append(("s = ", _PREV["s"], " + ", G2, " = ", _paren(T["s_prev"]), " + ", g, "^2 = ", _Num(T["s"])))
        eps, root = _Num(H["epsilon"]), _Sqrt((_Num(T[acc]),))
        lines += [
            (_Only("tex", (_Sqrt((acc,)), " + ", _EPS, " = ", root, " + ", eps, " = ", _Num(T["denom"]))),),
            (P, _ARROW, P, " - ", _LR, _Frac((G,), (_Sqrt((acc,)), " + ", _EPS)),
             _Only("text", (" = ", old, " - ", lr, " * ", g, " / (", root, " + ", eps, ")")),
             " = ", old, " - ", lr, _TIMES, _Frac((_Num(T["g"], paren_text=True),), (_Num(T["denom"]),), False),
             " = ", old, " - ", _paren(T["step"]), " = ", new),
        ]
    elif u.optimizer in ("adam", "adamw"):
        lines += _adam_pieces(P, u, G, G2, old, new, lr)
    else:
        lines.append((P, _ARROW, P, " - ", _LR, G, " = ", old, " - ", lr, _TIMES, g, " = ", new))
    return lines


def _gradient_line(P: _Sp, u, lines: list[tuple]):
    """The gradient the update uses, as the line g = dC/dP + wd * P + l1 * sign(P) when the L2 term (coupled weight
    decay, not adamw's) or the L1 term's subgradient (0 at P = 0) is added to it; returns its symbol."""
    T, H = dict(u.terms), dict(u.hyper)
    dC = _Sp(f"dC/d{P.text}", rf"\frac{{\partial C}}{{\partial {P.tex}}}")
    l2, l1 = bool(u.weight_decay and u.optimizer != "adamw"), "l1" in T
    if not (l2 or l1):
        return dC
    grad, value = _paren(u.gradient), _paren(u.old)
    sym, nums, vals = ["g = ", dC], [" = ", grad], [" = ", grad]
    if l2:
        sym += [" + ", _Sp("wd * ", r"\lambda "), P]
        nums += [" + ", _Num(u.weight_decay), _TIMES, value]
        vals += [" + ", _paren(T["decay"])]
    if l1:
        sign = _Sp(" * sign(", r" \operatorname{sign}(")
        sym += [" + ", _Sp("l1", r"\lambda_1"), sign, P, ")"]
        nums += [" + ", _Num(H["l1"]), sign, value, ")"]
        vals += [" + ", _paren(T["l1"])]
    lines.append((*sym, *nums, *vals, " = ", _Num(T["g"])))
    return "g"


def _adam_pieces(P: _Sp, u, G, G2, old: _Num, new: _Num, lr: _Num) -> list[tuple]:
    """Adam's moments, their bias corrections and the step; adamw first takes lr * wd * P off the weight."""
    T, H = dict(u.terms), dict(u.hyper)
    b1, b2, eps, t, g = _Num(H["beta1"]), _Num(H["beta2"]), _Num(H["epsilon"]), u.t, _paren(T["g"])
    m_hat, v_hat = _Sp("m_hat", r"\hat m"), _Sp("v_hat", r"\hat v")
    root = _Sqrt((_Num(T["v_hat"]),))
    lines = [
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
        (_Only("tex", (_Sqrt((v_hat,)), " + ", _EPS, " = ", root, " + ", eps, " = ", _Num(T["denom"]))),),
    ]
    decay_sym, decay = (), ()
    if u.optimizer == "adamw" and u.weight_decay:  # lr * wd * P off the weight first, then the Adam step
        decay_sym, decay = (" - ", _Sp("lr * wd * ", r"\eta \lambda "), P), (" - ", _paren(T["decay"]))
        lines.append((_Sp("lr * wd * ", r"\eta \lambda "), P, " = ", lr, _TIMES, _Num(u.weight_decay), _TIMES,
                      _paren(u.old), " = ", _Num(T["decay"])))
    by_denom = (" = ", old, *decay, " - ", lr, _TIMES,
                _Frac((_Num(T["m_hat"], paren_text=True),), (_Num(T["denom"]),), False))
    lines.append((P, _ARROW, P, *decay_sym, " - ", _LR, _Frac((m_hat,), (_Sqrt((v_hat,)), " + ", _EPS)),
                  _Only("text", (" = ", old, *decay, " - ", lr, " * ", _paren(T["m_hat"]), " / (", root, " + ", eps,
                                 ")")),
                  _Only("tex", by_denom) if decay else by_denom,  # adamw's text skips the step by denom
                  " = ", old, *decay, " - ", _paren(T["step"]), " = ", new))
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
    if not u.trainable:
        return []
    lines = [ln for ln in (_render(line, "tex", tex_num) for line in _update_pieces(_Sp(P, P), u)) if ln]
    if not align:
        return lines
    arrow = rf"{P} \leftarrow "
    return [ln.replace(arrow, rf"{P} &\leftarrow ", 1) if ln.startswith(arrow) else ln.replace(" = ", " &= ", 1)
            for ln in lines]
