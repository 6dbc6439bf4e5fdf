"""The classic backprop mistakes: each a small function that recomputes the gradients with that mistake made.

Each one goes through the engine (backward on the true forward pass's tape, with one piece of the network swapped
for the mistaken one: a derivative, a sign, a weight matrix) or rescales the engine's result; none restates the
maths.  A Variant is one concrete way of making a mistake (at layer B, keeping only the term through B1, ...),
with the gradient of every parameter as it comes out and the explanation in the seed's notation.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np

from bpcli.nn.engine import Gradients, Tape, backward, forward
from bpcli.nn.model import Network, node_name, output_symbol

Array = np.ndarray


@dataclass(frozen=True)
class Variant:
    """One way of making mistake `key`: every parameter's gradient with it made, and what it means."""

    key: str  # the registry key, e.g. activation_left_out
    where: str  # e.g. "B" (a layer), "B1", "all layers", "" when it applies everywhere
    label: str  # short: "activation derivative left out at layer B"
    text: str  # the explanation, with the factor that differs
    values: dict[str, float]


@dataclass
class Context:
    """What every mistake reads: the network, the samples, the engine's tape and gradients, the learning rate."""

    net: Network
    x: Array
    y: Array
    tape: Tape
    grads: Gradients
    lr: float

    @property
    def m(self) -> int:
        return int(self.x.shape[0])

    def values(self, g: Gradients) -> dict[str, float]:
        """Parameter name -> gradient, for gradients laid out like the engine's."""
        out = {}
        for ref in self.net.param_refs():
            arr = g.dW[ref.layer] if ref.kind == "W" else g.db[ref.layer]
            out[ref.name] = float(arr[ref.index])
        return out

    def with_layer(self, l: int, **changes) -> Network:
        """The network with layer l's activation changed (fn stays: only backprop sees the change)."""
        layers = list(self.net.layers)
        layers[l] = replace(layers[l], activation=replace(layers[l].activation, **changes))
        return Network(self.net.input_names, tuple(layers), self.net.W, self.net.b, self.net.loss, self.net.dtype)

    def rerun(self, net: Network) -> dict[str, float]:
        """The engine's backward pass on the true tape, through `net`'s (mistaken) derivatives and weights."""
        with np.errstate(all="ignore"):
            return self.values(backward(net, self.tape, self.y))


# --- notation ----------------------------------------------------------------------------------


def _generic(net: Network, l: int) -> str:
    layer = net.layers[l]
    return layer.letter if layer.n_out == 1 else f"{layer.letter}q"


def _fp(net: Network, l: int, at: str | None = None) -> str:
    g = _generic(net, l)
    return f"f_{g}'({at or 'z_' + g})"


def _out(net: Network, l: int) -> str:
    if l == len(net.layers) - 1:
        return "y'" if net.n_outputs == 1 else "y'q"
    return output_symbol(net, l, 0).replace("1", "q") if net.layers[l].n_out > 1 else output_symbol(net, l, 0)


def _mean_text(v: Array) -> str:
    v = np.ravel(v)
    return f"{v[0]:.4g}" if v.size == 1 else f"between {v.min():.4g} and {v.max():.4g}"


def _elementwise(net: Network, l: int) -> bool:
    act = net.layers[l].activation
    return act.elementwise and act.name != "identity" and not (l == len(net.layers) - 1 and net.fused_output)


# --- the mistakes ------------------------------------------------------------------------------


def activation_left_out(c: Context) -> list[Variant]:
    out = []
    for l, layer in enumerate(c.net.layers):
        if not _elementwise(c.net, l):
            continue
        t = c.tape[l]
        factor = layer.activation.grad(t.z, t.a_out)
        net = c.with_layer(l, grad=lambda z, a, out=None: np.ones_like(z) if out is None else _fill(out))
        g, o = _generic(c.net, l), _out(c.net, l)
        out.append(Variant(
            "activation_left_out", layer.letter, f"activation derivative left out at layer {layer.letter}",
            f"you differentiated the cost but not the activation: dL/dz_{g} = dL/d{o} * {_fp(c.net, l)}, and the "
            f"factor {_fp(c.net, l)} ({layer.activation.name}'s derivative, {_mean_text(factor)} here) is missing",
            c.rerun(net)))
    return out


def _fill(out: Array) -> Array:
    out.fill(1.0)
    return out


def derivative_at_output(c: Context) -> list[Variant]:
    out, layers = [], []
    for l, layer in enumerate(c.net.layers):
        if not _elementwise(c.net, l):
            continue
        act = layer.activation
        layers.append(l)
        o = _out(c.net, l)
        net = c.with_layer(l, grad=_at_output(act))
        out.append(Variant(
            "derivative_at_output", layer.letter, f"f'(o) for f'(z) at layer {layer.letter}",
            f"you evaluated the derivative at the node's output instead of its weighted sum: "
            f"{_fp(c.net, l, o)} where {_fp(c.net, l)} belongs", c.rerun(net)))
    if len(layers) > 1:
        net = c.net
        for l in layers:
            layers_ = list(net.layers)
            layers_[l] = replace(layers_[l], activation=replace(layers_[l].activation,
                                                                 grad=_at_output(layers_[l].activation)))
            net = Network(net.input_names, tuple(layers_), net.W, net.b, net.loss, net.dtype)
        out.append(Variant("derivative_at_output", "all layers", "f'(o) for f'(z) at every layer",
                           "you evaluated every activation's derivative at the node's output instead of its "
                           "weighted sum: f'(o) where f'(z) belongs", c.rerun(net)))
    return out


def _at_output(act) -> Callable:
    def grad(z: Array, a: Array, out: Array | None = None) -> Array:
        return act.grad(a, act.fn(a), out=out) if out is not None else act.grad(a, act.fn(a))
    return grad


def sign_flipped(c: Context) -> list[Variant]:
    true = c.values(c.grads)
    return [Variant("sign_flipped", "", "sign of dL/dy' flipped",
                    f"you used (y - y') where the loss's derivative is {c.net.loss.grad_formula}: the error runs "
                    "the wrong way, so every gradient has the opposite sign (factor -1)",
                    {k: -v for k, v in true.items()})]


def sum_not_mean(c: Context) -> list[Variant]:
    if c.m < 2:
        return []
    true = c.values(c.grads)
    return [Variant("sum_not_mean", "", "sum over samples instead of the mean",
                    f"you added the {c.m} samples' gradients without dividing by m: C = 1/m * sum_i L_i, so "
                    f"dC/dw = 1/m * sum_i dL_i/dw (factor {c.m})", {k: c.m * v for k, v in true.items()})]


def half_dropped(c: Context) -> list[Variant]:
    loss = c.net.loss
    if loss.name != "squared_error" or loss.params.get("convention") not in ("half_sum", "sklearn"):
        return []
    true = c.values(c.grads)
    return [Variant("half_dropped", "", "the 1/2 dropped",
                    "you dropped the 1/2 of L = 1/2 (y - y')^2 when differentiating: dL/dy' = (y' - y), "
                    "not 2 (y' - y) (factor 2)", {k: 2 * v for k, v in true.items()})]


def indices_transposed(c: Context) -> list[Variant]:
    true = c.values(c.grads)
    values = dict(true)
    swapped = []
    for ref in c.net.param_refs():
        layer = c.net.layers[ref.layer]
        if ref.kind != "W" or layer.n_out == 1 or ref.to_node == ref.from_node:
            continue
        j, k = ref.to_node, ref.from_node
        if k < layer.n_out and j < layer.n_in:
            other = next(r.name for r in c.net.param_refs()
                         if r.layer == ref.layer and r.kind == "W" and r.to_node == k and r.from_node == j)
            values[ref.name] = true[other]
            swapped.append(ref.name)
    if not swapped:
        return []
    return [Variant("indices_transposed", "", "weight indices transposed",
                    "you swapped the weight's indices: w_jk is the weight into node j from node k, so the gradient "
                    "you computed belongs to w_kj (w21 is into A2 from x1, w12 into A1 from x2)", values)]


def upstream_cut(c: Context) -> list[Variant]:
    out = []
    n = len(c.net.layers)
    for l in range(n - 1):
        above = c.net.layers[l + 1]
        if above.n_out < 2:
            continue
        for r in range(above.n_out):
            W = [w for w in c.net.W]
            W[l + 1] = np.zeros_like(c.net.W[l + 1])
            W[l + 1][r] = c.net.W[l + 1][r]
            net = Network(c.net.input_names, c.net.layers, W, c.net.b, c.net.loss, c.net.dtype)
            below = c.net.layers[l]
            o = _out(c.net, l)
            node = node_name(above, r)
            out.append(Variant(
                "upstream_cut", node, f"upstream sum cut to the term through {node}",
                f"{o} feeds every node of layer {above.letter}, so dL/d{o} = sum_r dL/dz_{above.letter}r * "
                f"{above.symbol}_r{'q' if below.n_out > 1 else '1'}; you kept only the term through {node}",
                c.rerun(net)))
    return out


def bias_input(c: Context) -> list[Variant]:
    refs = [r for r in c.net.param_refs() if r.kind == "b"]
    if not refs:
        return []
    true = c.values(c.grads)
    out = []
    for k in (0.0, -1.0):
        values = dict(true)
        for r in refs:
            values[r.name] = k * true[r.name]
        out.append(Variant("bias_input", f"{k:g}", f"bias input taken as {k:g}",
                           f"you took the bias's input as {k:g}: z = ... + b * 1, so dz/db = 1 and dC/db is the "
                           f"mean of dL/dz (factor {k:g})", values))
    return out


def after_update(c: Context) -> list[Variant]:
    net = c.net.copy()
    for l in range(len(net.layers)):
        net.W[l] -= c.lr * c.grads.dW[l]
        if net.b[l] is not None and net.layers[l].bias_trainable:
            net.b[l] -= c.lr * c.grads.db[l]
    with np.errstate(all="ignore"):
        _, tape = forward(net, c.x)
        values = c.values(backward(net, tape, c.y))
    return [Variant("after_update", "", "weights after the update used",
                    f"you took the gradient at the weights after the step w - lr * dC/dw (lr = {c.lr:g}); it "
                    "belongs at the weights the forward pass used, before the update", values)]


# key -> (title, function); the order is the order of the report
MISTAKES: dict[str, tuple[str, Callable[[Context], list[Variant]]]] = {
    "activation_left_out": ("the activation's derivative left out at a layer", activation_left_out),
    "derivative_at_output": ("the derivative evaluated at the output, f'(o) for f'(z)", derivative_at_output),
    "sign_flipped": ("the sign of dL/dy' flipped (y - y')", sign_flipped),
    "sum_not_mean": ("a sum over samples instead of the mean (m times too large)", sum_not_mean),
    "half_dropped": ("the 1/2 of the squared error dropped (2 times too large)", half_dropped),
    "indices_transposed": ("the weight indices transposed (w12 for w21)", indices_transposed),
    "upstream_cut": ("the upstream sum over the next layer's nodes cut to one term", upstream_cut),
    "bias_input": ("the bias input taken as something other than 1", bias_input),
    "after_update": ("the weights after the update used instead of before", after_update),
}


def all_variants(c: Context) -> list[Variant]:
    out: list[Variant] = []
    for _, fn in MISTAKES.values():
        out.extend(fn(c))
    return out
