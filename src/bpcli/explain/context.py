"""The context explain reads for one parameter (the tape and the engine's gradients) and the network's symbols."""

from __future__ import annotations

import numpy as np

from bpcli.nn.engine import Gradients, Tape
from bpcli.nn.model import Network, ParamRef, output_symbol, weight_name
from bpcli.schema import TrainConfig

Array = np.ndarray

# index letters for "each node q of a layer" and "summed over the nodes r it feeds", in this order of preference;
# never a letter the network uses as a weight symbol (a deep network's layers take q, r, p, ...), nor one with a
# meaning of its own in explain's text (i: sample, j: shared bias, k: softmax output, m: sample count)
INDEX_LETTERS = "qrpnhgatsuvwcdefl"


class Names:
    """Symbols of one network, in the seed's spelling; the class each output node stands for."""

    def __init__(self, net: Network, class_names: tuple[str, ...] | None = None):
        self.net = net
        self.n = len(net.layers)
        used = {layer.symbol for layer in net.layers}
        free = [c for c in INDEX_LETTERS if c not in used] + ["q", "r"]
        self.q, self.r = free[0], free[1]
        k = net.n_outputs
        names = tuple(class_names or ())
        # one output node per class, or a single output scoring the second of two classes (P(class 1))
        self._classes = names if len(names) == k and k > 1 else names[1:] if k == 1 and len(names) == 2 else ()

    def node_class(self, l: int, j: int) -> str | None:
        """The class output node j stands for (layer l the output layer), or None."""
        return self._classes[j] if l == self.n - 1 and self._classes else None

    def label(self, l: int, j: int) -> str:
        """The node's name, with its class beside it: B1 (class "setosa")."""
        c = self.node_class(l, j)
        return self.node(l, j) + (f' (class "{c}")' if c is not None else "")

    def classes(self) -> tuple[tuple[str, str], ...]:
        return tuple((self.node(self.n - 1, j), c) for j, c in enumerate(self._classes))

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
        return layer.letter if layer.n_out == 1 else f"{layer.letter}{self.q}"

    def z_equation(self, l: int, j: int) -> str:
        layer = self.net.layers[l]
        terms = [f"{self.weight(l, j, k)}*{self.src(l, k)}" for k in range(min(layer.n_in, 4))]
        if layer.n_in > 4:
            terms.append("...")
        if layer.shared_bias:
            terms.append(f"b_{layer.letter}")
        elif layer.has_bias:
            terms.append(f"b_{self.node(l, j)}")
        return f"z_{self.node(l, j)} = {' + '.join(terms)}"


def _output_mode(net: Network) -> str:
    if net.fused_output:
        return "fused"
    return "elementwise" if net.layers[-1].activation.elementwise else "softmax_jacobian"


class ExplainContext:
    """What explaining one parameter reads: the network, the data, the tape and the engine's gradients, with the
    names, the detail sample i and f'(z) of every layer; explain builds on it, its steps and tables read it."""

    def __init__(self, net, ref: ParamRef, x, y, y_hat, tape: Tape, grads: Gradients, i: int, sample_given: bool,
                 want_paths: bool, settings: TrainConfig, buffers: dict | None, step: int,
                 class_names: tuple[str, ...] | None, update_note: str = ""):
        self.net, self.ref, self.x, self.y, self.y_hat = net, ref, x, y, y_hat
        self.tape, self.g, self.i = tape, grads, i
        self.sample_given, self.want_paths = sample_given, want_paths
        self.settings, self.buffers, self.step, self.update_note = settings, buffers, step, update_note
        self.N = Names(net, class_names)
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

    def path_count(self) -> int:
        c = len(self.nodes)
        for l2 in range(self.l + 1, self.n):
            c *= self.net.layers[l2].n_out
        if self.mode == "softmax_jacobian":
            c *= self.net.n_outputs
        return c
