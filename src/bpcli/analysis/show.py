"""bpcli show: the layers, every parameter name with its value, and a diagram in the seed's style."""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

from bpcli.errors import sample_row
from bpcli.nn.model import LISTED_PARAMS, Network, node_name, weight_name


@dataclass(frozen=True)
class LayerRow:
    letter: str
    nodes: tuple[str, ...]
    n_in: int
    n_out: int
    activation: str
    activation_formula: str
    bias: str
    symbol: str
    n_params: int


@dataclass(frozen=True)
class ParamRow:
    name: str
    layer: str
    kind: str  # weight | bias
    to_node: str
    from_node: str  # input symbol (x1, o1, ...) or "1" for a bias
    value: float
    trainable: bool


@dataclass(frozen=True)
class ShowResult:
    name: str
    source: str
    inputs: tuple[str, ...]
    layers: tuple[LayerRow, ...]
    params: tuple[ParamRow, ...]  # the first LISTED_PARAMS of the network's n_params
    diagram: str
    equations: tuple[str, ...]
    loss: str
    loss_formula: str
    n_params: int
    sample: SampleTrace | None = None  # set by `show --sample I`
    classes: tuple[str, ...] | None = None  # a classifier's class names (two for one sigmoid output)
    output_labels: tuple[str, ...] | None = None  # per output node: 'class "setosa"'
    snapshots: dict | None = None  # a run's: snapshots.kept_summary (every, epochs, count, bytes, first, last)
    epoch: int | None = None  # `show RUN --epoch N`: the weights are those after epoch N
    status: str | None = None  # a run's (runs.store.status_of: "stepped" for one `bpcli step --out` made)
    stepped: int | None = None  # ... and the steps that made it

    def to_dict(self) -> dict:
        extra = {"sample": self.sample.to_dict()} if self.sample is not None else {}
        if self.snapshots is not None:
            extra |= {"epoch": self.epoch, "snapshots": self.snapshots, "status": self.status, "stepped": self.stepped}
        if self.output_labels is not None:
            extra["classes"] = list(self.classes)
            # one sigmoid output stands for the second class (y' >= 0.5)
            extra["outputs"] = [{"node": n, "class": c} for n, c in zip(self.layers[-1].nodes, self.classes[-len(
                self.layers[-1].nodes):])]
        return {
            "command": "show", "name": self.name, "source": self.source, "inputs": list(self.inputs),
            "loss": {"name": self.loss, "formula": self.loss_formula},
            "layers": [
                {"letter": r.letter, "nodes": list(r.nodes), "inputs": r.n_in, "size": r.n_out,
                 "activation": r.activation, "formula": r.activation_formula, "bias": r.bias,
                 "symbol": r.symbol, "parameters": r.n_params}
                for r in self.layers
            ],
            "parameters": [
                {"name": p.name, "layer": p.layer, "kind": p.kind, "to": p.to_node, "from": p.from_node,
                 "value": p.value, "trainable": p.trainable}
                for p in self.params
            ],
            "n_params": self.n_params, "diagram": self.diagram, "equations": list(self.equations),
        } | extra | ({"parameters_listed": len(self.params)} if len(self.params) < self.n_params else {})


def _join(names: list[str], limit: int = 6) -> str:
    if len(names) <= limit:
        return ", ".join(names)
    return ", ".join(names[: limit - 2]) + ", ..., " + names[-1]


def describe(net: Network, name: str, source: str, max_equations: int = 12,
             classes: tuple[str, ...] | None = None) -> ShowResult:
    """Everything `bpcli show` prints, as data; `classes` names a classifier's outputs (labels.class_names_of)."""
    layers = tuple(
        LayerRow(layer.letter, tuple(node_name(layer, j) for j in range(layer.n_out)), layer.n_in, layer.n_out,
                 layer.activation.name, layer.activation.formula, layer.bias, layer.symbol, layer.n_params)
        for layer in net.layers
    )
    params = []
    for ref in itertools.islice(net.iter_param_refs(), LISTED_PARAMS):
        layer = net.layers[ref.layer]
        trainable = ref.kind == "W" or layer.bias_trainable
        to = node_name(layer, ref.to_node) if ref.to_node is not None else f"all of {layer.letter}"
        frm = net.source_name(ref.layer, ref.from_node) if ref.kind == "W" else "1"
        params.append(ParamRow(ref.name, layer.letter, "weight" if ref.kind == "W" else "bias", to, frm,
                               net.get(ref), trainable))
    stages = [_join(list(net.input_names))] + [_join(list(r.nodes)) for r in layers]
    diagram = " -> ".join(stages) + "  (output y')"
    equations: list[str] = []
    last = len(net.layers) - 1
    keep = min(net.layers[-1].n_out, 3)  # the output layer's first equations are always among them
    for l, layer in enumerate(net.layers):
        for j in range(layer.n_out):
            if len(equations) >= max_equations - (keep if l < last else 0):
                break
            node = node_name(layer, j)
            from bpcli.nn.model import weight_name
            terms = [f"{weight_name(layer, j, k)}*{net.source_name(l, k)}" for k in range(layer.n_in)]
            if len(" + ".join(terms)) > 44:
                terms = terms[:2] + ["..."] + terms[-1:]
            if layer.shared_bias:
                terms.append(f"b_{layer.letter}")
            elif layer.has_bias:
                terms.append(f"b_{node}")
            out = "y'" if l == len(net.layers) - 1 and layer.n_out == 1 else (
                f"y'{j + 1}" if l == len(net.layers) - 1 else _out_symbol(net, l, j))
            # softmax is a function of the whole layer's z: y'1 = softmax(z_B)_1
            f = (f"{layer.activation.name}(z_{node})" if layer.activation.elementwise
                 else f"{layer.activation.name}(z_{layer.letter})_{j + 1}")
            equations.append(f"{out} = {f},  z_{node} = {' + '.join(terms)}")
    from bpcli.data.labels import output_labels
    return ShowResult(name, source, tuple(net.input_names), layers, tuple(params), diagram, tuple(equations),
                      net.loss.name, net.loss.formula, net.n_params, classes=classes,
                      output_labels=output_labels(net.n_outputs, classes))


def _out_symbol(net: Network, l: int, j: int) -> str:
    from bpcli.nn.model import output_symbol
    return output_symbol(net, l, j)


# --- one sample through the network (`show --sample I`) ---------------------------------------


@dataclass(frozen=True)
class NodeTrace:
    """One node for one sample: z, its output f(z), the delta dL_i/dz and its bias's gradient."""

    name: str
    output_symbol: str  # o1, o_A1, y' or y'1
    z: float
    output: float
    delta: float
    bias: str | None  # the bias's name (None when the layer has none)
    bias_value: float | None
    bias_grad: float | None  # dL_i/db: the delta itself (summed over the layer for a shared bias)


@dataclass(frozen=True)
class EdgeTrace:
    """One weight for one sample: value and dL_i/dw = delta of its node * the input it multiplies."""

    name: str
    layer: str
    source: str  # x1, o1, ... (the input it multiplies)
    target: str  # the node it feeds
    value: float
    grad: float


@dataclass(frozen=True)
class LayerTrace:
    letter: str
    activation: str
    nodes: tuple[NodeTrace, ...]


@dataclass(frozen=True)
class SampleTrace:
    """Forward values and backpropagated deltas of one training sample, as the engine computed them."""

    index: int  # 1-based, in the training part of the data
    of: int
    inputs: tuple[tuple[str, float], ...]  # as the network sees them (standardized when configured)
    raw_inputs: tuple[tuple[str, float], ...] | None  # before standardizing, else None
    target: tuple[float, ...]
    loss: float  # L_i
    dy_hat: tuple[float, ...] | None  # dL_i/dy' (None when the fused softmax/sigmoid shortcut skipped it)
    layers: tuple[LayerTrace, ...]
    edges: tuple[EdgeTrace, ...]

    def to_dict(self) -> dict:
        return {
            "index": self.index, "of": self.of, "inputs": dict(self.inputs),
            "raw_inputs": dict(self.raw_inputs) if self.raw_inputs is not None else None,
            "target": list(self.target), "loss": self.loss,
            "dL_dy_hat": list(self.dy_hat) if self.dy_hat is not None else None,
            "layers": [
                {"layer": la.letter, "activation": la.activation, "nodes": [
                    {"node": n.name, "output_symbol": n.output_symbol, "z": n.z, "output": n.output,
                     "delta": n.delta, "bias": n.bias, "bias_value": n.bias_value, "bias_grad": n.bias_grad}
                    for n in la.nodes]}
                for la in self.layers
            ],
            "weights": [{"name": e.name, "layer": e.layer, "from": e.source, "to": e.target, "value": e.value,
                         "grad": e.grad} for e in self.edges],
        }


def trace_sample(net: Network, x: np.ndarray, y: np.ndarray, index: int, scaling=None) -> SampleTrace:
    """Run sample `index` (1-based) of x (m, n_in), y (m, n_out) forward and backward through `net`."""
    from bpcli.nn.engine import backward, forward, sample_losses

    i = sample_row(index, int(x.shape[0]))
    xi = x[i:i + 1].astype(net.dtype, copy=False)
    yi = y[i:i + 1].astype(net.dtype, copy=False)
    y_hat, tape = forward(net, xi)
    grads = backward(net, tape, yi)  # with one sample, dW is exactly dL_i/dW
    last = len(net.layers) - 1
    layers, edges = [], []
    for l, (layer, t) in enumerate(zip(net.layers, tape)):
        nodes = []
        for j in range(layer.n_out):
            if l == last:
                out = "y'" if layer.n_out == 1 else f"y'{j + 1}"
            else:
                out = _out_symbol(net, l, j)
            bname = bval = bgrad = None
            if layer.shared_bias:
                bname, bval, bgrad = f"b_{layer.letter}", float(net.b[l][0]), float(grads.db[l][0])
            elif layer.has_bias:
                bname, bval, bgrad = f"b_{node_name(layer, j)}", float(net.b[l][j]), float(grads.dz[l][0, j])
            nodes.append(NodeTrace(node_name(layer, j), out, float(t.z[0, j]), float(t.a_out[0, j]),
                                   float(grads.dz[l][0, j]), bname, bval, bgrad))
            for k in range(layer.n_in):
                edges.append(EdgeTrace(weight_name(layer, j, k), layer.letter, net.source_name(l, k),
                                       node_name(layer, j), float(net.W[l][j, k]), float(grads.dW[l][j, k])))
        layers.append(LayerTrace(layer.letter, layer.activation.name, tuple(nodes)))
    names = net.input_names
    raw = None
    if scaling is not None:
        r = xi[0] * scaling.std + scaling.mean
        raw = tuple((nm, float(v)) for nm, v in zip(names, r))
    loss = float(sample_losses(net, tape[-1].z, y_hat, yi)[0])  # the engine's L_i: a fused pair from z, exactly
    dy = tuple(float(v) for v in grads.dy_hat[0]) if grads.dy_hat is not None else None
    return SampleTrace(index, int(x.shape[0]), tuple((nm, float(v)) for nm, v in zip(names, xi[0])), raw,
                       tuple(float(v) for v in yi[0]), loss, dy, tuple(layers), tuple(edges))
