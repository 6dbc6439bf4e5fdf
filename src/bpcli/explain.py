"""bpcli explain: the chain rule for one parameter, every factor's value read from the engine's tape.

Nothing here recomputes the network a second way: the factors are the tape's z, a_in and a_out, the
registry derivatives the engine itself calls (Loss.grad, Activation.grad / jacobian) and the engine's
backpropagated deltas (Gradients.dz). The one independent computation is the central-difference
check of the single parameter, in float64.
"""

from __future__ import annotations

import numpy as np

from bpcli.engine import Gradients, Tape, backward, forward
from bpcli.errors import BpcliError
# the result types are re-exported: they belong to this module's API
from bpcli.explain_result import (  # noqa: F401
    tex_symbol,
    d_text,
    d_tex,
    fp_text,
    fp_tex,
    Step,
    Factor,
    Operand,
    DetailLine,
    SumRow,
    SumTable,
    NodeDelta,
    LayerDeltas,
    PathTerm,
    Paths,
    NumericCheck,
    Update,
    Explanation,
    ExplainReport,
)
from bpcli.gradcheck import naive_numeric_gradient
from bpcli.model import Network, ParamRef, output_symbol, weight_name

Array = np.ndarray

PATH_LIMIT = 64  # --paths lists the paths only when there are at most this many
FD_STEP = 1e-5  # central-difference step, scaled by max(1, |p|)


# --- helpers over the network --------------------------------------------------------------------


class _Names:
    """Symbols of one network, in the seed's spelling."""

    def __init__(self, net: Network):
        self.net = net
        self.n = len(net.layers)

    def node(self, l: int, j: int) -> str:
        return self.net.node_name(l, j)

    def out(self, l: int, j: int) -> str:
        """The symbol of node j's output: y' / y'1 at the output layer, o1 / o_A1 below it."""
        if l == self.n - 1:
            return "y'" if self.net.n_outputs == 1 else f"y'{j + 1}"
        return output_symbol(self.net, l, j)

    def target(self, j: int) -> str:
        return "y" if self.net.n_outputs == 1 else f"y{j + 1}"

    def src(self, l: int, k: int) -> str:
        return self.net.source_name(l, k)

    def weight(self, l: int, j: int, k: int) -> str:
        return weight_name(self.net.layers[l], j, k)

    def generic(self, l: int) -> str:
        """A node of layer l in general: B for a one-node layer, Bq otherwise."""
        layer = self.net.layers[l]
        return layer.letter if layer.n_out == 1 else f"{layer.letter}q"

    def z_equation(self, l: int, j: int) -> str:
        layer = self.net.layers[l]
        terms = [f"{self.weight(l, j, k)}*{self.src(l, k)}" for k in range(min(layer.n_in, 4))]
        if layer.n_in > 4:
            terms.append("...")
        if layer.bias == "shared":
            terms.append(f"b_{layer.letter}")
        elif layer.has_bias:
            terms.append(f"b_{self.node(l, j)}")
        return f"z_{self.node(l, j)} = {' + '.join(terms)}"


def _fused_reason(net: Network) -> str:
    act = net.layers[-1].activation.name
    if act == "softmax":
        return ("cross_entropy after softmax: sum_k (-y_k / y'_k) * y'_k ([k = j] - y'_j) = y'_j - y_j "
                "because the targets sum to 1; the engine uses this shortcut, not the full Jacobian")
    return (f"{net.loss.name} after {act}: (y' - y) / (y'(1 - y')) * y'(1 - y') = y' - y; "
            "the engine uses this shortcut")


def _output_mode(net: Network) -> str:
    if net.fused_output:
        return "fused"
    return "elementwise" if net.layers[-1].activation.elementwise else "softmax_jacobian"


def relative_error(a: float, b: float) -> float:
    """|a - b| / max(|a|, |b|), 0 when both are 0."""
    d = max(abs(a), abs(b))
    return 0.0 if d == 0 else abs(a - b) / d


# --- the explanation -----------------------------------------------------------------------------


def explain(net: Network, x: Array, y: Array, name: str, lr: float, sample: int | None = None,
            paths: bool = False, *, optimizer: str = "gd", weight_decay: float = 0.0) -> Explanation:
    """The chain rule for parameter `name` over the samples x: (m, n_in), y: (m, n_out).

    sample: 0-based index of the sample shown in full detail (default the first, marked as not chosen).
    Raises NameError_ (listing valid names) for an unknown name.
    """
    ref = net.resolve(name)
    x = np.asarray(x, dtype=net.dtype)
    y = np.asarray(y, dtype=net.dtype)
    m = x.shape[0]
    if m == 0:
        raise BpcliError("explain needs at least one sample; the data is empty")
    if sample is not None and not 0 <= sample < m:
        raise BpcliError(f"--sample: there is no sample {sample + 1}; the data has {m} (use 1 to {m})")
    i = 0 if sample is None else sample
    y_hat, tape = forward(net, x)
    grads = backward(net, tape, y)
    return _Builder(net, ref, x, y, y_hat, tape, grads, i, sample is not None, paths, lr, optimizer,
                    weight_decay).build()


class _Builder:
    """Assembles one Explanation from the tape and the engine's gradients."""

    def __init__(self, net, ref: ParamRef, x, y, y_hat, tape: Tape, grads: Gradients, i: int, sample_given: bool,
                 want_paths: bool, lr: float, optimizer: str, weight_decay: float):
        self.net, self.ref, self.x, self.y, self.y_hat = net, ref, x, y, y_hat
        self.tape, self.g, self.i = tape, grads, i
        self.sample_given, self.want_paths = sample_given, want_paths
        self.lr, self.optimizer, self.weight_decay = lr, optimizer, weight_decay
        self.N = _Names(net)
        self.n = len(net.layers)
        self.l = ref.layer
        self.layer = net.layers[ref.layer]
        self.m = x.shape[0]
        self.mode = _output_mode(net)
        # the nodes of layer l whose delta reaches p: one node, or all of them for a shared bias
        self.nodes = list(range(self.layer.n_out)) if ref.to_node is None else [ref.to_node]
        # f'(z) of every elementwise layer, from the same registry function the engine's vjp uses
        self.fp: list[Array | None] = [
            lay.activation.grad(t.z, t.a_out) if lay.activation.elementwise else None
            for lay, t in zip(net.layers, tape)
        ]
        top = net.layers[-1]
        self.jac = None if top.activation.elementwise else top.activation.jacobian(tape[-1].z, tape[-1].a_out)

    # --- factor columns ---------------------------------------------------------------------

    def input_factor(self) -> Factor:
        ref, l = self.ref, self.l
        if ref.kind == "b":
            return Factor("1", "1", "one", "a bias's input is always 1", tuple([1.0] * self.m))
        sym = self.N.src(l, ref.from_node)
        if l == 0:
            rule = f"input {sym} of the sample"
        else:
            src_node = self.N.node(l - 1, ref.from_node)
            rule = f"output of node {src_node}: {sym} = f_{src_node}(z_{src_node})"
        return Factor(sym, tex_symbol(sym), "input", rule, _vals(self.tape[l].a_in[:, ref.from_node]))

    def output_factors(self, q: int) -> list[Factor]:
        """The factors of the output delta dL/dz at output node q, loss first (elementwise or fused)."""
        N, n = self.N, self.n
        node, Y, T = N.node(n - 1, q), N.out(n - 1, q), N.target(q)
        if self.mode == "fused":
            return [Factor(f"dL/dz_{node}", d_tex("L", f"z_{node}"), "delta", f"{Y} - {T} (fused shortcut)",
                           _vals(self.g.dz[-1][:, q]))]
        return [
            Factor(d_text("L", Y), d_tex("L", Y), "loss", self.net.loss.grad_formula, _vals(self.g.dy_hat[:, q])),
            Factor(fp_text(node), fp_tex(node), "act", self.net.layers[-1].activation.grad_formula,
                   _vals(self.fp[-1][:, q])),
        ]

    def compact_columns(self) -> list[Factor]:
        """dL_i/dp in at most three factors: [dL/da_j, f'(z_j)] or [dL/dz_j], then the input."""
        l, n, N = self.l, self.n, self.N
        inp = self.input_factor()
        if len(self.nodes) > 1:  # a shared bias: the sum of its layer's deltas
            d = self.g.dz[l].sum(axis=1)
            sym = f"sum dL/dz_{self.layer.letter}j"
            return [Factor(sym, rf"\sum_j \frac{{\partial L}}{{\partial z_{{{self.layer.letter}j}}}}", "delta",
                           f"the deltas of all {self.layer.n_out} nodes of layer {self.layer.letter}", _vals(d)), inp]
        j = self.nodes[0]
        node = N.node(l, j)
        if l == n - 1:
            if self.mode == "softmax_jacobian":
                return [Factor(f"dL/dz_{node}", d_tex("L", f"z_{node}"), "delta",
                               "sum_k dL/dy'k * dy'k/dz via the softmax Jacobian", _vals(self.g.dz[l][:, j])), inp]
            return self.output_factors(j) + [inp]
        O = N.out(l, j)
        up = self.g.dz[l + 1] @ self.net.W[l + 1][:, j]  # upstream sum over the nodes node j feeds
        return [
            Factor(d_text("L", O), d_tex("L", O), "upstream",
                   f"sum over the {self.net.layers[l + 1].n_out} node(s) {node} feeds of delta * weight", _vals(up)),
            Factor(fp_text(node), fp_tex(node), "act", self.layer.activation.grad_formula, _vals(self.fp[l][:, j])),
            inp,
        ]

    # --- paths ------------------------------------------------------------------------------

    def path_count(self) -> int:
        c = len(self.nodes)
        for l2 in range(self.l + 1, self.n):
            c *= self.net.layers[l2].n_out
        if self.mode == "softmax_jacobian":
            c *= self.net.n_outputs
        return c

    def enumerate_paths(self) -> list[tuple[list[str], list[Factor]]]:
        """Every path from p to the loss as (nodes, factors loss first). Only call when path_count is small."""
        N, n, net = self.N, self.n, self.net
        inp = self.input_factor()
        out: list[tuple[list[str], list[Factor]]] = []

        def walk(l: int, c: int, nodes: list[str], factors: list[Factor]) -> None:
            # factors so far run from p upwards; node c of layer l is reached
            node = N.node(l, c)
            if l == n - 1:
                if self.mode == "softmax_jacobian":
                    for k in range(net.n_outputs):
                        Y = N.out(n - 1, k)
                        jac = Factor(f"d{Y}/dz_{node}", d_tex(Y, f"z_{node}"), "jacobian",
                                     net.layers[-1].activation.grad_formula, _vals(self.jac[:, k, c]))
                        loss = Factor(d_text("L", Y), d_tex("L", Y), "loss", net.loss.grad_formula,
                                      _vals(self.g.dy_hat[:, k]))
                        out.append((nodes + [Y], (factors + [jac, loss])[::-1]))
                else:
                    out.append((nodes, (factors + self.output_factors(c)[::-1])[::-1]))
                return
            fpf = Factor(fp_text(node), fp_tex(node), "act", net.layers[l].activation.grad_formula,
                         _vals(self.fp[l][:, c]))
            for q in range(net.layers[l + 1].n_out):
                w = N.weight(l + 1, q, c)
                wf = Factor(w, tex_symbol(w), "weight", f"weight from {node} into {N.node(l + 1, q)}",
                            tuple([float(net.W[l + 1][q, c])] * self.m))
                walk(l + 1, q, nodes + [N.node(l + 1, q)], factors + [fpf, wf])

        for j in self.nodes:
            walk(self.l, j, [N.node(self.l, j)], [inp])
        return out

    def build_paths(self, enumerated) -> Paths:
        count = self.path_count()
        if enumerated is None:
            return Paths(count, PATH_LIMIT, None, None, None)
        terms = []
        for nodes, factors in enumerated:
            prod = np.prod(np.array([f.values for f in factors]), axis=0)
            terms.append(PathTerm(tuple(nodes), tuple(f.symbol for f in factors), tuple(f.tex for f in factors),
                                  tuple(f.values[self.i] for f in factors), float(prod[self.i]), float(prod.mean())))
        return Paths(count, PATH_LIMIT, tuple(terms), float(sum(t.sample_product for t in terms)),
                     float(sum(t.contribution for t in terms)))

    # --- the symbolic steps ------------------------------------------------------------------

    def output_delta_step(self, label: str) -> Step:
        """How the output layer's delta dL/dz is formed (for one node or each node q)."""
        net, N, n = self.net, self.N, self.n
        many = net.n_outputs > 1
        g = N.generic(n - 1)
        Y, T = ("y'q", "yq") if many else ("y'", "y")
        act = net.layers[-1].activation
        pre = "for each output node q: " if many else ""
        if self.mode == "fused":
            return Step(label, f"{pre}dL/dz_{g} = {Y} - {T}",
                        rf"\frac{{\partial L}}{{\partial z_{{{g}}}}} = {tex_symbol(Y)} - {tex_symbol(T)}",
                        _fused_reason(net))
        if self.mode == "softmax_jacobian":
            return Step(label, f"{pre}dL/dz_{g} = sum_k dL/dy'k * dy'k/dz_{g}",
                        rf"\frac{{\partial L}}{{\partial z_{{{g}}}}} = \sum_k \frac{{\partial L}}{{\partial y'_k}}"
                        rf"\frac{{\partial y'_k}}{{\partial z_{{{g}}}}}",
                        f"the full softmax Jacobian: {act.grad_formula}; loss {net.loss.name}: {net.loss.grad_formula}")
        return Step(label, f"{pre}dL/dz_{g} = dL/d{Y} * {fp_text(g)}",
                    rf"\frac{{\partial L}}{{\partial z_{{{g}}}}} = {d_tex('L', Y)}\,{fp_tex(g)}",
                    f"loss {net.loss.name}: {net.loss.grad_formula}; {act.name}: {act.grad_formula}")

    def hidden_delta_step(self, l: int, label: str) -> Step:
        """dL/dz of the nodes of hidden layer l from the deltas of layer l + 1."""
        net, N = self.net, self.N
        g = N.generic(l)
        below, above = net.layers[l], net.layers[l + 1]
        idx = ("r" if above.n_out > 1 else "") + ("q" if below.n_out > 1 else "1")
        w, w_tex = (f"{above.symbol}{idx}" if idx.isdigit() else f"{above.symbol}_{idx}"), f"{above.symbol}_{{{idx}}}"
        o = f"o_{g}" if self.n > 2 else ("oq" if below.n_out > 1 else "o1")
        pre = f"for each node q of layer {below.letter}: " if below.n_out > 1 else ""
        up = f"{above.letter}r" if above.n_out > 1 else above.letter
        s = "sum_r " if above.n_out > 1 else ""
        s_tex = r"\sum_r " if s else ""
        text = f"{pre}dL/dz_{g} = {fp_text(g)} * dL/d{o},  dL/d{o} = {s}dL/dz_{up} * {w}"
        tex = (rf"\frac{{\partial L}}{{\partial z_{{{g}}}}} = {fp_tex(g)}\,\frac{{\partial L}}{{\partial {tex_symbol(o)}}},"
               rf"\quad \frac{{\partial L}}{{\partial {tex_symbol(o)}}} = {s_tex}"
               rf"\frac{{\partial L}}{{\partial z_{{{up}}}}}\,{w_tex}")
        note = (f"{below.activation.name}: {below.activation.grad_formula}; "
                f"{w} is the weight from {g} into {up}")
        return Step(label, text, tex, note)

    def steps(self, paths_single: list[Factor] | None) -> tuple[list[Step], Step]:
        net, N, ref, l, n = self.net, self.N, self.ref, self.l, self.n
        P = ref.name
        Pt = tex_symbol(P)
        steps = [Step("Step 1", f"dC/d{P} = 1/m * sum_i dL_i/d{P}",
                      rf"\frac{{\partial C}}{{\partial {Pt}}} = \frac{{1}}{{m}}\sum_{{i=1}}^{{m}} "
                      rf"\frac{{\partial L_i}}{{\partial {Pt}}}",
                      f"the cost C is the mean of the m = {self.m} sample losses L_i")]
        act = self.layer.activation
        dLi = rf"\frac{{\partial L_i}}{{\partial {Pt}}}"
        if len(self.nodes) > 1:  # shared bias
            L = self.layer.letter
            steps.append(Step("Step 2", f"dL_i/d{P} = sum_j dL_i/dz_{L}j * dz_{L}j/d{P}",
                              rf"{dLi} = \sum_j \frac{{\partial L_i}}{{\partial z_{{{L}j}}}}"
                              rf"\frac{{\partial z_{{{L}j}}}}{{\partial {Pt}}}",
                              f"{P} is shared by all {self.layer.n_out} nodes of layer {L}, so its gradient "
                              "sums over them"))
            steps.append(Step("Step 3", f"dz_{L}j/d{P} = 1", rf"\frac{{\partial z_{{{L}j}}}}{{\partial {Pt}}} = 1",
                              "the bias enters every weighted sum with input 1"))
            k = 4
            if l == n - 1:
                steps.append(self.output_delta_step(f"Step {k}"))
            else:
                steps.append(self.hidden_delta_step(l, f"Step {k}"))
                for l2 in range(l + 1, n - 1):
                    k += 1
                    steps.append(self.hidden_delta_step(l2, f"Step {k}"))
                steps.append(self.output_delta_step(f"Step {k + 1}"))
            chain = Step("So", f"dL_i/d{P} = sum_j dL/dz_{L}j * 1",
                         rf"{dLi} = \sum_j \frac{{\partial L}}{{\partial z_{{{L}j}}}} \cdot 1", "")
            return steps, chain

        j = self.nodes[0]
        node = N.node(l, j)
        Z = f"z_{node}"
        A = "1" if ref.kind == "b" else N.src(l, ref.from_node)
        z_note = (f"the bias adds 1 * {P} to {Z}" if ref.kind == "b" else f"the weighted sum {N.z_equation(l, j)}")
        step4 = Step("Step 4", f"d{Z}/d{P} = {A}", rf"\frac{{\partial {tex_symbol(Z)}}}{{\partial {Pt}}} = {tex_symbol(A)}",
                     z_note)
        if l == n - 1:
            Y, T = N.out(l, j), N.target(j)
            if self.mode == "elementwise":
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
                if self.mode == "fused":
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

        # a hidden layer: through the node's output, then back from the loss layer by layer
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
            rhs = f"sum_q dL/dz_{above.letter}q * {above.symbol}_q{j + 1}"
            rhs_tex = rf"\sum_q \frac{{\partial L}}{{\partial z_{{{above.letter}q}}}}\,{above.symbol}_{{q{j + 1}}}"
        feeds = ("one node, " + N.node(l + 1, 0)) if above.n_out == 1 else (
            f"all {above.n_out} nodes of layer {above.letter}: its gradient is the sum over them of each "
            "node's delta times the connecting weight")
        steps.append(Step("Step 5", f"dL/d{O} = {rhs}", rf"\frac{{\partial L}}{{\partial {tex_symbol(O)}}} = {rhs_tex}",
                          f"{O} feeds {feeds}"))
        k = 6
        for l2 in range(l + 1, n - 1):
            steps.append(self.hidden_delta_step(l2, f"Step {k}"))
            k += 1
        steps.append(self.output_delta_step(f"Step {k}"))
        if paths_single is not None:
            chain = Step("So", f"dL_i/d{P} = " + " * ".join(f.symbol for f in paths_single),
                         f"{dLi} = " + r"\,".join(_tex_factor(f) for f in paths_single),
                         "a single path leads from the parameter to the loss")
        else:
            chain = Step("So", f"dL_i/d{P} = dL/d{O} * {fp_text(node)} * {A}",
                         rf"{dLi} = \frac{{\partial L}}{{\partial {tex_symbol(O)}}}\,{fp_tex(node)}\,{tex_symbol(A)}",
                         f"dL/d{O} collects {self.path_count()} paths to the loss (Step 5 onwards)")
        return steps, chain

    # --- at the detail sample ----------------------------------------------------------------

    def detail_lines(self, columns: list[Factor]) -> list[DetailLine]:
        """Each factor at the detail sample with the numbers it is computed from."""
        N, i, n = self.N, self.i, self.n
        where = {N.node(l2, q): (l2, q) for l2 in range(n) for q in range(self.net.layers[l2].n_out)}
        outs = {N.out(n - 1, q): q for q in range(self.net.n_outputs)}

        def yy(q: int) -> list[Operand]:
            return [Operand(N.out(n - 1, q), float(self.y_hat[i, q])), Operand(N.target(q), float(self.y[i, q]))]

        lines = []
        for f in columns:
            ops: list[Operand] = []
            if f.kind == "loss":
                ops = yy(outs[f.symbol[4:]])
            elif f.kind == "delta" and self.mode == "fused" and f.symbol[6:] in where \
                    and where[f.symbol[6:]][0] == n - 1:
                ops = yy(where[f.symbol[6:]][1])
            elif f.kind == "act":
                l2, q = where[f.symbol[2:f.symbol.index("'")]]
                node = N.node(l2, q)
                ops = [Operand(f"z_{node}", float(self.tape[l2].z[i, q])),
                       Operand(f"f(z_{node})", float(self.tape[l2].a_out[i, q]))]
            elif f.kind == "jacobian":
                yk, zq = f.symbol[1:].split("/dz_")
                ops = [Operand(yk, float(self.y_hat[i, outs[yk]])),
                       Operand(N.out(n - 1, where[zq][1]), float(self.y_hat[i, where[zq][1]]))]
            lines.append(DetailLine(f.symbol, f.values[i], f.rule, tuple(ops)))
        return lines

    def sum_tables(self) -> list[SumTable]:
        """The sums at the detail sample: the upstream sum of node j, the softmax Jacobian, a shared bias."""
        net, N, i, l, n = self.net, self.N, self.i, self.l, self.n
        tables = []
        if len(self.nodes) > 1:
            L = self.layer.letter
            rows = tuple(SumRow(N.node(l, q), f"dL/dz_{N.node(l, q)}", float(self.g.dz[l][i, q]), "1", 1.0,
                                float(self.g.dz[l][i, q])) for q in self.nodes)
            total = float(self.g.dz[l][i].sum())
            tables.append(SumTable(f"{self.ref.name} is shared by the nodes of layer {L}", f"dL_{i + 1}/d{self.ref.name}",
                                   "delta dL/dz", "input", rows, total, (), None))
            return tables
        j = self.nodes[0]
        node = N.node(l, j)
        if l < n - 1:
            above = net.layers[l + 1]
            O = N.out(l, j)
            rows = tuple(
                SumRow(N.node(l + 1, q), f"dL/dz_{N.node(l + 1, q)}", float(self.g.dz[l + 1][i, q]),
                       N.weight(l + 1, q, j), float(net.W[l + 1][q, j]),
                       float(self.g.dz[l + 1][i, q] * net.W[l + 1][q, j]))
                for q in range(above.n_out)
            )
            total = float(self.g.dz[l + 1][i] @ net.W[l + 1][:, j])
            A = "1" if self.ref.kind == "b" else N.src(l, self.ref.from_node)
            a_val = 1.0 if self.ref.kind == "b" else float(self.tape[l].a_in[i, self.ref.from_node])
            combine = (Operand(fp_text(node), float(self.fp[l][i, j])), Operand(f"dL/dz_{node}", float(self.g.dz[l][i, j])),
                       Operand(A, a_val))
            result = Operand(f"dL_{i + 1}/d{self.ref.name}", float(self.g.dz[l][i, j]) * a_val)
            tables.append(SumTable(f"{O} feeds " + (f"node {N.node(l + 1, 0)}" if above.n_out == 1 else f"the {above.n_out} nodes of layer {above.letter}"), f"dL/d{O}",
                                   "delta dL/dz", "weight", rows, total, combine, result))
        if l == n - 1 and self.mode == "softmax_jacobian":
            onode = N.node(n - 1, j)
            rows = tuple(
                SumRow(N.out(n - 1, k), d_text("L", N.out(n - 1, k)), float(self.g.dy_hat[i, k]),
                       f"d{N.out(n - 1, k)}/dz_{onode}", float(self.jac[i, k, j]),
                       float(self.g.dy_hat[i, k] * self.jac[i, k, j]))
                for k in range(net.n_outputs)
            )
            A = "1" if self.ref.kind == "b" else N.src(l, self.ref.from_node)
            a_val = 1.0 if self.ref.kind == "b" else float(self.tape[l].a_in[i, self.ref.from_node])
            tables.append(SumTable(f"the softmax Jacobian into z_{onode}", f"dL/dz_{onode}", "dL/dy'k", "dy'k/dz",
                                   rows, float(self.g.dz[-1][i, j]), (Operand(A, a_val),),
                                   Operand(f"dL_{i + 1}/d{self.ref.name}", float(self.g.dz[-1][i, j]) * a_val)))
        return tables

    def layer_deltas(self) -> list[LayerDeltas]:
        """Every layer's deltas at the detail sample, from the output layer down to the parameter's layer."""
        net, N, i, n = self.net, self.N, self.i, self.n
        out = []
        for l2 in range(n - 1, self.l - 1, -1):
            layer = net.layers[l2]
            qs = self.nodes if l2 == self.l else range(layer.n_out)
            nodes = []
            for q in qs:
                node = N.node(l2, q)
                delta = float(self.g.dz[l2][i, q])
                if l2 == n - 1:
                    Y = N.out(l2, q)
                    up = None if self.mode == "fused" else float(self.g.dy_hat[i, q])
                    fpv = float(self.fp[l2][i, q]) if self.mode == "elementwise" else None
                    nodes.append(NodeDelta(node, d_text("L", Y), up, fpv, delta))
                else:
                    up = float(self.g.dz[l2 + 1][i] @ net.W[l2 + 1][:, q])
                    nodes.append(NodeDelta(node, d_text("L", N.out(l2, q)), up, float(self.fp[l2][i, q]), delta))
            if l2 == n - 1:
                rule = {"fused": "dL/dz = y' - y (fused)", "elementwise": "dL/dz = dL/dy' * f'(z)",
                        "softmax_jacobian": "dL/dz_q = sum_k dL/dy'k * dy'k/dz_q (softmax Jacobian)"}[self.mode]
            else:
                rule = f"dL/dz = f'(z) * dL/do, dL/do = sum over layer {net.layers[l2 + 1].letter} of delta * weight"
            out.append(LayerDeltas(layer.letter, rule, tuple(nodes)))
        return out

    # --- checks and the step -----------------------------------------------------------------

    def numeric_check(self, engine: float) -> NumericCheck:
        net64 = self.net.astype(np.float64)
        x64, y64 = self.x.astype(np.float64), self.y.astype(np.float64)
        h = FD_STEP * max(1.0, abs(net64.get(self.ref)))
        num = float(naive_numeric_gradient(net64, x64, y64, h, [self.ref])[0])
        abs_err = abs(num - engine)
        rel = relative_error(num, engine)
        if self.net.dtype == np.float64:
            agrees = abs_err <= 1e-6 * max(abs(num), abs(engine)) + 1e-9
        else:
            agrees = abs_err <= 1e-3 * max(abs(num), abs(engine)) + 1e-5
        note = ""
        if not agrees:
            kinked = [lay.activation.name for lay in self.net.layers[self.l:] if lay.activation.kinks]
            if self.net.loss.kinks:
                kinked.append(self.net.loss.name)
            if kinked:
                note = (f"{', '.join(sorted(set(kinked)))} has a kink; one may lie within h of this point, "
                        "where central differences are unreliable")
            else:
                note = "the engine's gradient and the central difference disagree"
        return NumericCheck(float(num), float(h), float(abs_err), float(rel), bool(agrees), note)

    def update_step(self, engine: float) -> Update:
        old = float(self.net.get(self.ref))
        trainable = self.ref.kind == "W" or self.layer.bias_trainable
        wd = self.weight_decay if self.ref.kind == "W" else 0.0
        new = old - self.lr * (engine + wd * old) if trainable else old
        notes = []
        if not trainable:
            notes.append(f"{self.ref.name} is frozen: training leaves it at {old:g}")
        if self.optimizer == "sgd":
            notes.append("sgd steps on mini-batches, so each step uses the gradient of one batch, not this full mean")
        elif self.optimizer not in ("gd",):
            notes.append(f"the config trains with {self.optimizer}, which rescales this step; shown is the plain "
                         "gradient-descent step")
        return Update(float(self.lr), old, float(engine), float(wd), float(new), self.optimizer, trainable,
                      "; ".join(notes))

    # --- all together ------------------------------------------------------------------------

    def build(self) -> Explanation:
        net, ref, N, l, n, i = self.net, self.ref, self.N, self.l, self.n, self.i
        count = self.path_count()
        enumerated = self.enumerate_paths() if count <= PATH_LIMIT else None
        single = enumerated[0][1] if enumerated is not None and count == 1 else None
        compact = self.compact_columns()
        columns = single if single is not None else compact
        products = np.prod(np.array([f.values for f in columns]), axis=0)
        # the engine's own dL_i/dp: its delta times the input (a shared bias sums its layer's deltas)
        if len(self.nodes) > 1:
            eng_samples = self.g.dz[l].sum(axis=1)
        else:
            a = 1.0 if ref.kind == "b" else self.tape[l].a_in[:, ref.from_node]
            eng_samples = self.g.dz[l][:, self.nodes[0]] * a
        engine = float((self.g.dW[l] if ref.kind == "W" else self.g.db[l])[ref.index])
        steps, chain = self.steps(single)
        j = self.nodes[0]
        if self.mode == "softmax_jacobian" or (l < n - 1) or len(self.nodes) > 1:
            focus = tuple(range(net.n_outputs)) if net.n_outputs <= 3 else ()
        else:
            focus = (j,)
        layer = self.layer
        return Explanation(
            name=ref.name, kind="weight" if ref.kind == "W" else "bias", layer=layer.letter, layer_index=l,
            to_node=N.node(l, j) if len(self.nodes) == 1 else f"all of {layer.letter}",
            from_node=N.src(l, ref.from_node) if ref.kind == "W" else "1",
            value=float(net.get(ref)), trainable=ref.kind == "W" or layer.bias_trainable,
            position="output" if l == n - 1 else "hidden", output_mode=self.mode, loss=net.loss.name,
            steps=tuple(steps), chain=chain, m=self.m,
            input_names=tuple(net.input_names),
            output_names=tuple(N.out(n - 1, q) for q in range(net.n_outputs)),
            target_names=tuple(N.target(q) for q in range(net.n_outputs)),
            focus_outputs=focus,
            x=_rows(self.x), y=_rows(self.y), y_hat=_rows(self.y_hat),
            columns=tuple(columns), compact=tuple(compact), products=_vals(products),
            mean=float(products.mean()), engine=engine,
            engine_samples_diff=float(np.max(np.abs(products - eng_samples))),
            numeric=self.numeric_check(engine), update=self.update_step(engine),
            sample=i, sample_given=self.sample_given,
            detail=tuple(self.detail_lines(list(columns))), sums=tuple(self.sum_tables()),
            layers=tuple(self.layer_deltas()),
            paths=self.build_paths(enumerated) if self.want_paths else None,
            dtype=np.dtype(net.dtype).name,
        )


def _tex_factor(f: Factor) -> str:
    return f.tex


def _vals(a: Array) -> tuple[float, ...]:
    return tuple(float(v) for v in np.asarray(a, dtype=np.float64).ravel())


def _rows(a: Array) -> tuple[tuple[float, ...], ...]:
    return tuple(tuple(float(v) for v in row) for row in np.asarray(a, dtype=np.float64))


def explain_many(net: Network, x: Array, y: Array, names: list[str], lr: float, sample: int | None = None,
                 paths: bool = False, *, optimizer: str = "gd", weight_decay: float = 0.0, title: str = "",
                 source: str = "", scaled: bool = False) -> ExplainReport:
    """One Explanation per name (names resolved first, so a typo fails before any work)."""
    for nm in names:
        net.resolve(nm)
    exps = tuple(explain(net, x, y, nm, lr, sample, paths, optimizer=optimizer, weight_decay=weight_decay)
                 for nm in names)
    return ExplainReport(title, source, scaled, exps)
