"""explain's symbolic derivation: the chain-rule steps for one parameter, in plain text and LaTeX."""

from __future__ import annotations

from bpcli.explain.context import ExplainContext
from bpcli.explain.result import Factor, Step, d_tex, fp_tex, fp_text, tex_symbol
from bpcli.nn.model import Network


def _fused_reason(net: Network) -> str:
    act = net.layers[-1].activation.name
    if act == "softmax":
        return ("cross_entropy after softmax: sum_k (-y_k / y'_k) * y'_k * ([k = j] - y'_j) = y'_j - y_j "
                "because the targets sum to 1; the engine uses this shortcut, not the full Jacobian")
    return (f"{net.loss.name} after {act}: (y' - y) / (y' * (1 - y')) * y' * (1 - y') = y' - y; "
            "the engine uses this shortcut")


def output_delta_step(b: ExplainContext, label: str) -> Step:
    """How the output layer's delta dL/dz is formed (for one node or each node q), and the classes its nodes
    stand for."""
    step = _output_delta_step(b, label)
    classes = b.N.classes()
    if not classes:
        return step
    said = ", ".join(f'{node} (class "{c}")' for node, c in classes)
    nodes = "the output node" if len(classes) == 1 else "the output nodes"
    return Step(step.label, step.text, step.tex, f"{step.note}; {nodes}: {said}")


def _output_delta_step(b: ExplainContext, label: str) -> Step:
    net, N, n = b.net, b.N, b.n
    many = net.n_outputs > 1
    g = N.generic(n - 1)
    q = N.q
    Y, T = (f"y'{q}", f"y{q}") if many else ("y'", "y")
    act = net.layers[-1].activation
    pre = f"for each output node {q}: " if many else ""
    if b.mode == "fused":
        return Step(label, f"{pre}dL/dz_{g} = {Y} - {T}",
                    rf"\frac{{\partial L}}{{\partial z_{{{g}}}}} = {tex_symbol(Y)} - {tex_symbol(T)}",
                    _fused_reason(net))
    if b.mode == "softmax_jacobian":
        return Step(label, f"{pre}dL/dz_{g} = sum_k dL/dy'k * dy'k/dz_{g}",
                    rf"\frac{{\partial L}}{{\partial z_{{{g}}}}} = \sum_k \frac{{\partial L}}{{\partial y'_k}}"
                    rf"\frac{{\partial y'_k}}{{\partial z_{{{g}}}}}",
                    f"the full softmax Jacobian: {act.grad_formula}; loss {net.loss.name}: {net.loss.grad_formula}")
    return Step(label, f"{pre}dL/dz_{g} = dL/d{Y} * {fp_text(g)}",
                rf"\frac{{\partial L}}{{\partial z_{{{g}}}}} = {d_tex('L', Y)}\,{fp_tex(g)}",
                f"loss {net.loss.name}: {net.loss.grad_formula}; {act.name}: {act.grad_formula}")

def hidden_delta_step(b: ExplainContext, l: int, label: str) -> Step:
    """dL/dz of the nodes of hidden layer l from the deltas of layer l + 1."""
    net, N = b.net, b.N
    g = N.generic(l)
    below, above = net.layers[l], net.layers[l + 1]
    q, r = N.q, N.r
    idx = (r if above.n_out > 1 else "") + (q if below.n_out > 1 else "1")
    w, w_tex = (f"{above.symbol}{idx}" if idx.isdigit() else f"{above.symbol}_{idx}"), f"{above.symbol}_{{{idx}}}"
    o = f"o_{g}" if b.n > 2 else (f"o{q}" if below.n_out > 1 else "o1")
    pre = f"for each node {q} of layer {below.letter}: " if below.n_out > 1 else ""
    up = f"{above.letter}{r}" if above.n_out > 1 else above.letter
    s = f"sum_{r} " if above.n_out > 1 else ""
    s_tex = rf"\sum_{r} " if s else ""
    text = f"{pre}dL/dz_{g} = {fp_text(g)} * dL/d{o},  dL/d{o} = {s}dL/dz_{up} * {w}"
    tex = (rf"\frac{{\partial L}}{{\partial z_{{{g}}}}} = {fp_tex(g)}\,\frac{{\partial L}}{{\partial {tex_symbol(o)}}},"
           rf"\quad \frac{{\partial L}}{{\partial {tex_symbol(o)}}} = {s_tex}"
           rf"\frac{{\partial L}}{{\partial z_{{{up}}}}}\,{w_tex}")
    note = (f"{below.activation.name}: {below.activation.grad_formula}; "
            f"{w} is the weight from {g} into {up}")
    return Step(label, text, tex, note)

def derivation(b: ExplainContext, paths_single: list[Factor] | None) -> tuple[list[Step], Step]:
    """The chain-rule steps from dC/dp down to the layer's delta, and the whole of dL_i/dp in one line ("So").

    paths_single: the factors of the one path from p to the loss, when there is only one.
    """
    ref, l, n = b.ref, b.l, b.n
    P = ref.name
    Pt = tex_symbol(P)
    steps = [Step("Step 1", f"dC/d{P} = 1/m * sum_i dL_i/d{P}",
                  rf"\frac{{\partial C}}{{\partial {Pt}}} = \frac{{1}}{{m}}\sum_{{i=1}}^{{m}} "
                  rf"\frac{{\partial L_i}}{{\partial {Pt}}}",
                  f"the cost C is the mean of the m = {b.m} sample losses L_i")]
    dLi = rf"\frac{{\partial L_i}}{{\partial {Pt}}}"
    if len(b.nodes) > 1:
        return _shared_bias_steps(b, steps, dLi)
    j = b.nodes[0]
    node = b.N.node(l, j)
    Z = f"z_{node}"
    A = "1" if ref.kind == "b" else b.N.src(l, ref.from_node)
    z_note = (f"the bias adds 1 * {P} to {Z}" if ref.kind == "b" else f"the weighted sum {b.N.z_equation(l, j)}")
    step4 = Step("Step 4", f"d{Z}/d{P} = {A}", rf"\frac{{\partial {tex_symbol(Z)}}}{{\partial {Pt}}} = {tex_symbol(A)}",
                 z_note)
    if l == n - 1:
        return _output_layer_steps(b, steps, step4, dLi, node, Z, A)
    return _hidden_layer_steps(b, steps, step4, dLi, node, Z, A, paths_single)


def _shared_bias_steps(b: ExplainContext, steps: list[Step], dLi: str) -> tuple[list[Step], Step]:
    """A bias shared by a whole layer: the sum over the layer's nodes of their deltas."""
    P, Pt, l, n = b.ref.name, tex_symbol(b.ref.name), b.l, b.n
    L = b.layer.letter
    steps.append(Step("Step 2", f"dL_i/d{P} = sum_j dL_i/dz_{L}j * dz_{L}j/d{P}",
                      rf"{dLi} = \sum_j \frac{{\partial L_i}}{{\partial z_{{{L}j}}}}"
                      rf"\frac{{\partial z_{{{L}j}}}}{{\partial {Pt}}}",
                      f"{P} is shared by all {b.layer.n_out} nodes of layer {L}, so its gradient "
                      "sums over them"))
    steps.append(Step("Step 3", f"dz_{L}j/d{P} = 1", rf"\frac{{\partial z_{{{L}j}}}}{{\partial {Pt}}} = 1",
                      "the bias enters every weighted sum with input 1"))
    k = 4
    if l == n - 1:
        steps.append(output_delta_step(b, f"Step {k}"))
    else:
        steps.append(hidden_delta_step(b, l, f"Step {k}"))
        for l2 in range(l + 1, n - 1):
            k += 1
            steps.append(hidden_delta_step(b, l2, f"Step {k}"))
        steps.append(output_delta_step(b, f"Step {k + 1}"))
    chain = Step("So", f"dL_i/d{P} = sum_j dL/dz_{L}j * 1",
                 rf"{dLi} = \sum_j \frac{{\partial L}}{{\partial z_{{{L}j}}}} \cdot 1", "")
    return steps, chain



def _output_layer_steps(b: ExplainContext, steps: list[Step], step4: Step, dLi: str, node: str, Z: str,
                        A: str) -> tuple[list[Step], Step]:
    """A parameter of the output layer: the loss's derivative, then the activation's (or the fused shortcut)."""
    net, N, P, Pt, l, j, act = b.net, b.N, b.ref.name, tex_symbol(b.ref.name), b.l, b.nodes[0], b.layer.activation
    Y, T = N.out(l, j), N.target(j)
    if b.mode == "elementwise":
        steps += [
            Step("Step 2", f"dL_i/d{P} = dL_i/d{Y} * d{Y}/d{P}",
                 rf"{dLi} = \frac{{\partial L_i}}{{\partial {tex_symbol(Y)}}}\,"
                 rf"\frac{{\partial {tex_symbol(Y)}}}{{\partial {Pt}}}",
                 f"loss {net.loss.name}, {net.loss.formula}: {net.loss.grad_formula}"),
            Step("Step 3", f"d{Y}/d{P} = {fp_text(node)} * d{Z}/d{P}",
                 rf"\frac{{\partial {tex_symbol(Y)}}}{{\partial {Pt}}} = {fp_tex(node)}\,"
                 rf"\frac{{\partial {tex_symbol(Z)}}}{{\partial {Pt}}}",
                 f"{act.name}, {act.formula}: {act.grad_formula}"),
            step4,
        ]
        chain = Step("So", f"dL_i/d{P} = dL/d{Y} * {fp_text(node)} * {A}",
                     rf"{dLi} = {d_tex('L', Y)}\,{fp_tex(node)}\,{tex_symbol(A)}", "")
    else:
        s2 = Step("Step 2", f"dL_i/d{P} = dL_i/d{Z} * d{Z}/d{P}",
                  rf"{dLi} = \frac{{\partial L_i}}{{\partial {tex_symbol(Z)}}}\,"
                  rf"\frac{{\partial {tex_symbol(Z)}}}{{\partial {Pt}}}",
                  f"loss {net.loss.name}, {net.loss.formula}; output {act.name}, {act.formula}")
        if b.mode == "fused":
            s3 = Step("Step 3", f"dL_i/d{Z} = {Y} - {T}",
                      rf"\frac{{\partial L_i}}{{\partial {tex_symbol(Z)}}} = {tex_symbol(Y)} - {tex_symbol(T)}",
                      _fused_reason(net))
            chain = Step("So", f"dL_i/d{P} = ({Y} - {T}) * {A}",
                         rf"{dLi} = ({tex_symbol(Y)} - {tex_symbol(T)})\,{tex_symbol(A)}", "")
        else:
            s3 = Step("Step 3", f"dL_i/d{Z} = sum_k dL/dy'k * dy'k/d{Z}",
                      rf"\frac{{\partial L_i}}{{\partial {tex_symbol(Z)}}} = \sum_k "
                      rf"\frac{{\partial L}}{{\partial y'_k}}\frac{{\partial y'_k}}{{\partial {tex_symbol(Z)}}}",
                      f"the full softmax Jacobian: {act.grad_formula}; loss: {net.loss.grad_formula} "
                      "(the y' - y shortcut holds only with cross_entropy)")
            chain = Step("So", f"dL_i/d{P} = [sum_k dL/dy'k * dy'k/d{Z}] * {A}",
                         rf"{dLi} = \Big[\sum_k \frac{{\partial L}}{{\partial y'_k}}"
                         rf"\frac{{\partial y'_k}}{{\partial {tex_symbol(Z)}}}\Big]\,{tex_symbol(A)}", "")
        steps += [s2, s3, step4]
    return steps, chain



def _hidden_layer_steps(b: ExplainContext, steps: list[Step], step4: Step, dLi: str, node: str, Z: str, A: str,
                        paths_single: list[Factor] | None) -> tuple[list[Step], Step]:
    """A parameter of a hidden layer: through the node's output, then back from the loss layer by layer."""
    net, N, P, Pt, l, n, j = b.net, b.N, b.ref.name, tex_symbol(b.ref.name), b.l, b.n, b.nodes[0]
    act = b.layer.activation
    O = N.out(l, j)
    above = net.layers[l + 1]
    steps += [
        Step("Step 2", f"dL_i/d{P} = dL_i/d{O} * d{O}/d{P}",
             rf"{dLi} = \frac{{\partial L_i}}{{\partial {tex_symbol(O)}}}\,\frac{{\partial {tex_symbol(O)}}}"
             rf"{{\partial {Pt}}}",
             f"{O} = f_{node}({Z}) is the output of node {node}; the loss depends on {P} only through it"),
        Step("Step 3", f"d{O}/d{P} = {fp_text(node)} * d{Z}/d{P}",
             rf"\frac{{\partial {tex_symbol(O)}}}{{\partial {Pt}}} = {fp_tex(node)}\,"
             rf"\frac{{\partial {tex_symbol(Z)}}}{{\partial {Pt}}}",
             f"{act.name}, {act.formula}: {act.grad_formula}"),
        step4,
    ]
    terms = [(f"dL/dz_{N.node(l + 1, q)}", N.weight(l + 1, q, j)) for q in range(above.n_out)]
    if len(terms) <= 4:
        rhs = " + ".join(f"{d} * {w}" for d, w in terms)
        rhs_tex = " + ".join(rf"\frac{{\partial L}}{{\partial z_{{{d[6:]}}}}}\,{tex_symbol(w)}" for d, w in terms)
    else:
        q = N.q
        rhs = f"sum_{q} dL/dz_{above.letter}{q} * {above.symbol}_{q}{j + 1}"
        rhs_tex = (rf"\sum_{q} \frac{{\partial L}}{{\partial z_{{{above.letter}{q}}}}}\,"
                   rf"{above.symbol}_{{{q}{j + 1}}}")
    feeds = ("one node, " + N.label(l + 1, 0)) if above.n_out == 1 else (
        f"all {above.n_out} nodes of layer {above.letter}: its gradient is the sum over them of each "
        "node's delta times the connecting weight")
    steps.append(Step("Step 5", f"dL/d{O} = {rhs}", rf"\frac{{\partial L}}{{\partial {tex_symbol(O)}}} = {rhs_tex}",
                      f"{O} feeds {feeds}"))
    k = 6
    for l2 in range(l + 1, n - 1):
        steps.append(hidden_delta_step(b, l2, f"Step {k}"))
        k += 1
    steps.append(output_delta_step(b, f"Step {k}"))
    if paths_single is not None:
        chain = Step("So", f"dL_i/d{P} = " + " * ".join(f.symbol for f in paths_single),
                     f"{dLi} = " + r"\,".join(_tex_factor(f) for f in paths_single),
                     "a single path leads from the parameter to the loss")
    else:
        chain = Step("So", f"dL_i/d{P} = dL/d{O} * {fp_text(node)} * {A}",
                     rf"{dLi} = \frac{{\partial L}}{{\partial {tex_symbol(O)}}}\,{fp_tex(node)}\,{tex_symbol(A)}",
                     f"dL/d{O} collects {b.path_count()} paths to the loss (Step 5 onwards)")
    return steps, chain


def _tex_factor(f: Factor) -> str:
    return f.tex
