"""bpcli explain: the chain rule for one parameter, every factor's value read from the engine's tape.

Nothing here recomputes the network a second way: the factors are the tape's z, a_in and a_out, the
registry derivatives the engine itself calls (Loss.grad, Activation.grad / jacobian) and the engine's
backpropagated deltas and upstream sums (Gradients.dz, .da). The one independent computation is the central-difference
check of the single parameter, in float64.
"""

from __future__ import annotations

import numpy as np

from bpcli.nn.engine import backward, forward
from bpcli.errors import BpcliError, sample_row
from bpcli.explain.result import (
    tex_symbol,
    d_text,
    d_tex,
    fp_text,
    fp_tex,
    Factor,
    PathTerm,
    Paths,
    NumericCheck,
    Update,
    Explanation,
    ExplainReport,
)
from bpcli.explain.context import ExplainContext
from bpcli.explain.derivation import derivation
from bpcli.explain.tables import detail_lines, layer_deltas, sum_tables
from bpcli.explain.update import next_update, settings_of
from bpcli.gradcheck.report import DEFAULT_TOL
from bpcli.gradcheck.verdict import VERDICTS, judge
from bpcli.gradcheck.verdict import relative_error as _relative_error
from bpcli.nn.model import Network
from bpcli.schema import TrainConfig

Array = np.ndarray

PATH_LIMIT = 64  # --paths lists the paths only when there are at most this many


# --- helpers over the network --------------------------------------------------------------------


def relative_error(a: float, b: float) -> float:
    """|a - b| / max(|a|, |b|), 0 when both are 0, NaN when either is not finite."""
    return float(_relative_error(a, b))


# --- the explanation -----------------------------------------------------------------------------


def explain(net: Network, x: Array, y: Array, name: str, train: TrainConfig | float, sample: int | None = None,
            paths: bool = False, *, buffers: dict[str, Array] | None = None, step: int = 0,
            class_names: tuple[str, ...] | None = None, update_note: str = "") -> Explanation:
    """The chain rule for parameter `name` over the samples x: (m, n_in), y: (m, n_out).

    train: the config's training settings (the last step is its optimiser's next update), or a learning rate
    for plain gradient descent. buffers and step: the optimiser state the update continues from (a run's
    TrainState.buffers and .step; none and 0 for a config's initial weights).
    sample: 0-based index of the sample shown in full detail (default the first, marked as not chosen).
    class_names: a classifier's classes, one per output node (or two for a single output).
    update_note: said with the update (how the data explained relates to training's next step).
    Raises NameError_ (listing valid names) for an unknown name.
    """
    ref = net.resolve(name)
    x = np.asarray(x, dtype=net.dtype)
    y = np.asarray(y, dtype=net.dtype)
    m = x.shape[0]
    if m == 0:
        raise BpcliError("explain needs at least one sample; the data is empty")
    i = 0 if sample is None else sample_row(sample + 1, m)
    y_hat, tape = forward(net, x)
    grads = backward(net, tape, y)
    return _Builder(net, ref, x, y, y_hat, tape, grads, i, sample is not None, paths, settings_of(train), buffers,
                    step, class_names, update_note).build()


class _Builder(ExplainContext):
    """Assembles one Explanation from the context: the factors, the paths, the checks and the update."""

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
        up = self.g.da[l][:, j]  # the engine's upstream sum over the nodes node j feeds
        return [
            Factor(d_text("L", O), d_tex("L", O), "upstream",
                   f"sum over the {self.net.layers[l + 1].n_out} node(s) {node} feeds of delta * weight", _vals(up)),
            Factor(fp_text(node), fp_tex(node), "act", self.layer.activation.grad_formula, _vals(self.fp[l][:, j])),
            inp,
        ]

    # --- paths ------------------------------------------------------------------------------

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

    # --- checks and the step -----------------------------------------------------------------

    def numeric_check(self, engine: float) -> NumericCheck:
        """gradcheck's numeric value of this one parameter (float64, every sample, the step chosen as gradcheck
        chooses it) with its error bound, and gradcheck's rule (judge) on the engine's gradient: the same
        verdict gradcheck gives the same entry."""
        from bpcli.gradcheck.report import GradcheckOptions
        from bpcli.gradcheck.check import check

        net64 = self.net.astype(np.float64)
        x64, y64 = self.x.astype(np.float64), self.y.astype(np.float64)
        tol = DEFAULT_TOL
        with np.errstate(all="ignore"):
            rep = check(net64, x64, y64, GradcheckOptions(mode="entries", all_entries=True, samples=None, tol=tol,
                                                          weights=(self.ref.name,)))
        row = rep.arrays[0].row(0)
        num, bound = row.numeric, row.bound
        if self.net.dtype != np.float64:  # the engine ran in float32: its own rounding, in its epsilon
            bound += float(np.finfo(self.net.dtype).eps) * 16 * abs(engine)
        h = row.step
        abs_err = abs(num - engine)
        rel = relative_error(num, engine)
        if self.net.dtype == np.float64:  # the very entry gradcheck judged
            code, passed = VERDICTS.index(row.verdict), row.passed
        else:
            _, code, passed = judge(engine, num, bound, tol)
        verdict = VERDICTS[int(code)]
        note = ""
        if verdict == "not finite":
            note = "the gradient or the cost is not finite at these weights (overflow)"
        elif verdict in ("inconclusive", "kink"):
            note = (f"the check cannot say: the difference lies between the tolerance and the error bound "
                    f"{bound:.3g}, or every step crossed a kink")
        elif not passed:
            kinked = [lay.activation.name for lay in self.net.layers[self.l:] if lay.activation.kinks]
            if self.net.loss.kinks:
                kinked.append(self.net.loss.name)
            if kinked:
                note = (f"{', '.join(sorted(set(kinked)))} has a kink; one may lie within h of this point, "
                        "where central differences are unreliable")
            else:
                note = "the engine's gradient and the central difference disagree"
        return NumericCheck(float(num), float(h), float(abs_err), float(rel), bool(passed), note, verdict)

    def update_step(self) -> Update:
        return next_update(self.net, self.ref, self.g, self.settings, self.buffers, self.step, self.m, self.update_note)

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
        steps, chain = derivation(self, single)
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
            engine_samples_diff=_max_diff(products, eng_samples),
            numeric=self.numeric_check(engine), update=self.update_step(),
            sample=i, sample_given=self.sample_given,
            detail=tuple(detail_lines(self, list(columns))), sums=tuple(sum_tables(self)),
            layers=tuple(layer_deltas(self)),
            paths=self.build_paths(enumerated) if self.want_paths else None,
            dtype=np.dtype(net.dtype).name, classes=N.classes(),
        )


def _max_diff(a: Array, b: Array) -> float:
    """max |a - b|: nan where a value is not finite (inf - inf), which the verdict reports, without numpy's warning."""
    with np.errstate(invalid="ignore"):
        return float(np.max(np.abs(a - b)))


def _vals(a: Array) -> tuple[float, ...]:
    return tuple(float(v) for v in np.asarray(a, dtype=np.float64).ravel())


def _rows(a: Array) -> tuple[tuple[float, ...], ...]:
    return tuple(tuple(float(v) for v in row) for row in np.asarray(a, dtype=np.float64))


def explain_many(net: Network, x: Array, y: Array, names: list[str], train: TrainConfig | float,
                 sample: int | None = None, paths: bool = False, *, buffers: dict[str, Array] | None = None,
                 step: int = 0, class_names: tuple[str, ...] | None = None, update_note: str = "", title: str = "",
                 source: str = "", scaling=None) -> ExplainReport:
    """One Explanation per name (names resolved first, so a typo fails before any work); the arguments as
    explain's; scaling: the data's Scaling (mean, std per input) when x is standardised."""
    for nm in names:
        net.resolve(nm)
    exps = tuple(explain(net, x, y, nm, train, sample, paths, buffers=buffers, step=step, class_names=class_names,
                         update_note=update_note) for nm in names)
    scaled = () if scaling is None else tuple(
        (nm, float(m), float(sd)) for nm, m, sd in zip(net.input_names, scaling.mean, scaling.std))
    return ExplainReport(title, source, scaling is not None, exps, scaled)
