"""bpcli show: the layers, every parameter name with its value, and a diagram in the seed's style."""

from __future__ import annotations

from dataclasses import dataclass

from bpcli.model import Network, node_name


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
    params: tuple[ParamRow, ...]
    diagram: str
    equations: tuple[str, ...]
    loss: str
    loss_formula: str
    n_params: int

    def to_dict(self) -> dict:
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
        }


def _join(names: list[str], limit: int = 6) -> str:
    if len(names) <= limit:
        return ", ".join(names)
    return ", ".join(names[: limit - 2]) + ", ..., " + names[-1]


def describe(net: Network, name: str, source: str, max_equations: int = 12) -> ShowResult:
    """Everything `bpcli show` prints, as data."""
    layers = tuple(
        LayerRow(layer.letter, tuple(node_name(layer, j) for j in range(layer.n_out)), layer.n_in, layer.n_out,
                 layer.activation.name, layer.activation.formula, layer.bias, layer.symbol, layer.n_params)
        for layer in net.layers
    )
    params = []
    for ref in net.param_refs():
        layer = net.layers[ref.layer]
        trainable = ref.kind == "W" or layer.bias_trainable
        to = node_name(layer, ref.to_node) if ref.to_node is not None else f"all of {layer.letter}"
        frm = net.source_name(ref.layer, ref.from_node) if ref.kind == "W" else "1"
        params.append(ParamRow(ref.name, layer.letter, "weight" if ref.kind == "W" else "bias", to, frm,
                               net.get(ref), trainable))
    stages = [_join(list(net.input_names))] + [_join(list(r.nodes)) for r in layers]
    diagram = " -> ".join(stages) + "  (output y')"
    equations = []
    for l, layer in enumerate(net.layers):
        for j in range(layer.n_out):
            if len(equations) >= max_equations:
                break
            node = node_name(layer, j)
            from bpcli.model import weight_name
            terms = [f"{weight_name(layer, j, k)}*{net.source_name(l, k)}" for k in range(layer.n_in)]
            if len(" + ".join(terms)) > 44:
                terms = terms[:2] + ["..."] + terms[-1:]
            if layer.bias == "shared":
                terms.append(f"b_{layer.letter}")
            elif layer.has_bias:
                terms.append(f"b_{node}")
            out = "y'" if l == len(net.layers) - 1 and layer.n_out == 1 else (
                f"y'{j + 1}" if l == len(net.layers) - 1 else _out_symbol(net, l, j))
            equations.append(f"{out} = {layer.activation.name}(z_{node}),  z_{node} = {' + '.join(terms)}")
    return ShowResult(name, source, tuple(net.input_names), layers, tuple(params), diagram, tuple(equations),
                      net.loss.name, net.loss.formula, net.n_params)


def _out_symbol(net: Network, l: int, j: int) -> str:
    from bpcli.model import output_symbol
    return output_symbol(net, l, j)
