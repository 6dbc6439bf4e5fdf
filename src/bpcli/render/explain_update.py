"""explain's update lines: the configured optimiser's next step of one parameter, every term with its number
(plain text here; explain_doc writes the same lines in LaTeX)."""

from __future__ import annotations

from bpcli.render.numbers import digits_apart, fmt

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


def update_lines(P: str, u) -> list[str]:
    """The update of parameter P as formulas with their numbers, one line per quantity, the last the new value."""
    if not u.trainable:
        return []
    d = digits_apart(u.old, u.new)
    old, new = fmt(u.old, d), fmt(u.new, d)
    T, H = dict(u.terms), dict(u.hyper)
    lr = fmt(u.lr)
    lines = []
    G = f"dC/d{P}"
    if "l1" in T:  # the L1 term's subgradient l1 * sign(P) (0 at P = 0), with the L2 term when there is one
        l2 = bool(u.weight_decay and u.optimizer != "adamw")
        sym = f"dC/d{P}" + (f" + wd * {P}" if l2 else "") + f" + l1 * sign({P})"
        nums = f"{num(u.gradient)}" + (f" + {fmt(u.weight_decay)} * {num(u.old)}" if l2 else "") + \
            f" + {fmt(H['l1'])} * sign({num(u.old)})"
        vals = f"{num(u.gradient)}" + (f" + {num(T['decay'])}" if l2 else "") + f" + {num(T['l1'])}"
        lines.append(f"g = {sym} = {nums} = {vals} = {fmt(T['g'])}")
        G = "g"
    elif u.weight_decay and u.optimizer != "adamw":  # adamw's decay is on the weight, below
        lines.append(f"g = dC/d{P} + wd * {P} = {num(u.gradient)} + {fmt(u.weight_decay)} * {num(u.old)} "
                     f"= {num(u.gradient)} + {num(T['decay'])} = {fmt(T['g'])}")
        G = "g"
    g = num(T["g"])
    if u.optimizer == "momentum":
        mu = fmt(H["momentum"])
        lines.append(f"v = mu * v_prev + {G} = {mu} * {num(T['v_prev'])} + {g} = {fmt(T['v'])}")
        lines.append(f"{P} <- {P} - lr * v = {old} - {lr} * {num(T['v'])} = {new}")
    elif u.optimizer == "nesterov":
        mu = fmt(H["momentum"])
        lines += [f"v = mu * v_prev + {G} = {mu} * {num(T['v_prev'])} + {g} = {fmt(T['v'])}",
                  f"{G} + mu * v = {g} + {mu} * {num(T['v'])} = {fmt(T['look'])}",
                  f"{P} <- {P} - lr * ({G} + mu * v) = {old} - {lr} * {num(T['look'])} = {new}"]
    elif u.optimizer in ("rmsprop", "adagrad"):
        G2 = "g^2" if G == "g" else f"({G})^2"
        eps = fmt(H["epsilon"])
        if u.optimizer == "rmsprop":
            a = fmt(H["alpha"])
            lines.append(f"v = alpha * v_prev + (1 - alpha) * {G2} = {a} * {num(T['v_prev'])} + (1 - {a}) * {g}^2 "
                         f"= {fmt(T['v'])}")
            acc = "v"
        else:
            lines.append(f"s = s_prev + {G2} = {num(T['s_prev'])} + {g}^2 = {fmt(T['s'])}")
            acc = "s"
        lines.append(f"{P} <- {P} - lr * {G} / (sqrt({acc}) + eps) = {old} - {lr} * {g} / (sqrt({fmt(T[acc])}) + {eps}) "
                     f"= {old} - {lr} * {g} / {fmt(T['denom'])} = {old} - {num(T['step'])} = {new}")
    elif u.optimizer in ("adam", "adamw"):
        b1, b2, eps, t = fmt(H["beta1"]), fmt(H["beta2"]), fmt(H["epsilon"]), u.t
        G2 = "g^2" if G == "g" else f"({G})^2"
        lines += [
            f"m = beta1 * m_prev + (1 - beta1) * {G} = {b1} * {num(T['m_prev'])} + (1 - {b1}) * {g} = {fmt(T['m'])}",
            f"v = beta2 * v_prev + (1 - beta2) * {G2} = {b2} * {num(T['v_prev'])} + (1 - {b2}) * {g}^2 "
            f"= {fmt(T['v'])}",
            f"m_hat = m / (1 - beta1^t) = {fmt(T['m'])} / (1 - {b1}^{t}) = {fmt(T['m'])} / {fmt(T['c1'])} "
            f"= {fmt(T['m_hat'])}",
            f"v_hat = v / (1 - beta2^t) = {fmt(T['v'])} / (1 - {b2}^{t}) = {fmt(T['v'])} / {fmt(T['c2'])} "
            f"= {fmt(T['v_hat'])}",
        ]
        if u.optimizer == "adamw":  # lr * wd * P off the weight first, then the Adam step
            lines += [
                f"lr * wd * {P} = {lr} * {fmt(u.weight_decay)} * {num(u.old)} = {fmt(T['decay'])}",
                f"{P} <- {P} - lr * wd * {P} - lr * m_hat / (sqrt(v_hat) + eps) = {old} - {num(T['decay'])} - {lr} * "
                f"{num(T['m_hat'])} / (sqrt({fmt(T['v_hat'])}) + {eps}) = {old} - {num(T['decay'])} - {num(T['step'])} "
                f"= {new}",
            ]
            return lines
        lines += [
            f"{P} <- {P} - lr * m_hat / (sqrt(v_hat) + eps) = {old} - {lr} * {num(T['m_hat'])} / "
            f"(sqrt({fmt(T['v_hat'])}) + {eps}) = {old} - {lr} * {num(T['m_hat'])} / {fmt(T['denom'])} "
            f"= {old} - {num(T['step'])} = {new}",
        ]
    else:
        lines.append(f"{P} <- {P} - lr * {G} = {old} - {lr} * {g} = {new}")
    return lines


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
    d = digits_apart(u.old, u.new)
    old, new = tex_num(u.old, d), tex_num(u.new, d)
    T, H = dict(u.terms), dict(u.hyper)

    def n(v: float) -> str:  # a number inside a formula: negative ones in parentheses
        s = tex_num(v)
        return f"({s})" if s.startswith("-") or "times" in s else s

    lr, dC = tex_num(u.lr), rf"\frac{{\partial C}}{{\partial {P}}}"
    lines, G = [], dC
    if "l1" in T:  # the L1 term's subgradient (0 at P = 0), with the L2 term when there is one
        l2 = bool(u.weight_decay and u.optimizer != "adamw")
        sym = dC + (rf" + \lambda {P}" if l2 else "") + rf" + \lambda_1 \operatorname{{sign}}({P})"
        nums = n(u.gradient) + (rf" + {tex_num(u.weight_decay)} \cdot {n(u.old)}" if l2 else "") + \
            rf" + {tex_num(H['l1'])} \operatorname{{sign}}({n(u.old)})"
        vals = n(u.gradient) + (f" + {n(T['decay'])}" if l2 else "") + f" + {n(T['l1'])}"
        lines.append(rf"g = {sym} = {nums} = {vals} = {tex_num(T['g'])}")
        G = "g"
    elif u.weight_decay and u.optimizer != "adamw":
        lines.append(rf"g = {dC} + \lambda {P} = {n(u.gradient)} + {tex_num(u.weight_decay)} \cdot {n(u.old)} "
                     rf"= {n(u.gradient)} + {n(T['decay'])} = {tex_num(T['g'])}")
        G = "g"
    g = n(T["g"])
    if u.optimizer == "momentum":
        mu = tex_num(H["momentum"])
        lines.append(rf"v = \mu\, v_{{\mathrm{{prev}}}} + {G} = {mu} \cdot {n(T['v_prev'])} + {g} = {tex_num(T['v'])}")
        lines.append(rf"{P} \leftarrow {P} - \eta\, v = {old} - {lr} \cdot {n(T['v'])} = {new}")
    elif u.optimizer == "nesterov":
        mu = tex_num(H["momentum"])
        lines += [rf"v = \mu\, v_{{\mathrm{{prev}}}} + {G} = {mu} \cdot {n(T['v_prev'])} + {g} = {tex_num(T['v'])}",
                  rf"{G} + \mu\, v = {g} + {mu} \cdot {n(T['v'])} = {tex_num(T['look'])}",
                  rf"{P} \leftarrow {P} - \eta\,\left({G} + \mu\, v\right) = {old} - {lr} \cdot {n(T['look'])} "
                  rf"= {new}"]
    elif u.optimizer in ("rmsprop", "adagrad"):
        G2 = "g^2" if G == "g" else rf"\left({G}\right)^2"
        if u.optimizer == "rmsprop":
            a = tex_num(H["alpha"])
            lines.append(rf"v = \alpha\, v_{{\mathrm{{prev}}}} + (1 - \alpha)\, {G2} = {a} \cdot {n(T['v_prev'])} "
                         rf"+ (1 - {a}) \cdot {g}^2 = {tex_num(T['v'])}")
            acc = "v"
        else:
            lines.append(rf"s = s_{{\mathrm{{prev}}}} + {G2} = {n(T['s_prev'])} + {g}^2 = {tex_num(T['s'])}")
            acc = "s"
        lines += [
            rf"\sqrt{{{acc}}} + \epsilon = \sqrt{{{tex_num(T[acc])}}} + {tex_num(H['epsilon'])} = {tex_num(T['denom'])}",
            rf"{P} \leftarrow {P} - \eta\,\frac{{{G}}}{{\sqrt{{{acc}}} + \epsilon}} = {old} - {lr} \cdot "
            rf"\frac{{{tex_num(T['g'])}}}{{{tex_num(T['denom'])}}} = {old} - {n(T['step'])} = {new}",
        ]
    elif u.optimizer in ("adam", "adamw"):
        b1, b2, t = tex_num(H["beta1"]), tex_num(H["beta2"]), u.t
        G2 = "g^2" if G == "g" else rf"\left({G}\right)^2"
        lines += [
            rf"m = \beta_1 m_{{\mathrm{{prev}}}} + (1 - \beta_1)\, {G} = {b1} \cdot {n(T['m_prev'])} + (1 - {b1}) "
            rf"\cdot {g} = {tex_num(T['m'])}",
            rf"v = \beta_2 v_{{\mathrm{{prev}}}} + (1 - \beta_2)\, {G2} = {b2} \cdot {n(T['v_prev'])} + (1 - {b2}) "
            rf"\cdot {g}^2 = {tex_num(T['v'])}",
            rf"\hat m = \frac{{m}}{{1 - \beta_1^{{t}}}} = \frac{{{tex_num(T['m'])}}}{{1 - {b1}^{{{t}}}}} "
            rf"= {tex_num(T['m_hat'])}",
            rf"\hat v = \frac{{v}}{{1 - \beta_2^{{t}}}} = \frac{{{tex_num(T['v'])}}}{{1 - {b2}^{{{t}}}}} "
            rf"= {tex_num(T['v_hat'])}",
            rf"\sqrt{{\hat v}} + \epsilon = \sqrt{{{tex_num(T['v_hat'])}}} + {tex_num(H['epsilon'])} "
            rf"= {tex_num(T['denom'])}",
        ]
        if u.optimizer == "adamw":  # eta lambda P off the weight first, then the Adam step
            lines += [
                rf"\eta \lambda {P} = {lr} \cdot {tex_num(u.weight_decay)} \cdot {n(u.old)} = {tex_num(T['decay'])}",
                rf"{P} \leftarrow {P} - \eta \lambda {P} - \eta\,\frac{{\hat m}}{{\sqrt{{\hat v}} + \epsilon}} = {old} "
                rf"- {n(T['decay'])} - {lr} \cdot \frac{{{tex_num(T['m_hat'])}}}{{{tex_num(T['denom'])}}} = {old} "
                rf"- {n(T['decay'])} - {n(T['step'])} = {new}",
            ]
            return lines
        lines += [
            rf"{P} \leftarrow {P} - \eta\,\frac{{\hat m}}{{\sqrt{{\hat v}} + \epsilon}} = {old} - {lr} \cdot "
            rf"\frac{{{tex_num(T['m_hat'])}}}{{{tex_num(T['denom'])}}} = {old} - {n(T['step'])} = {new}",
        ]
    else:
        lines.append(rf"{P} \leftarrow {P} - \eta\,{G} = {old} - {lr} \cdot {g} = {new}")
    return lines
