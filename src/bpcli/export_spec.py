"""What an export reproduces (ExportSpec: sizes, activations and constants, bias modes, dtype, scaling, classes,
weights), the exported arrays by name, and the mapping of every entry to bpcli's parameter names."""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from bpcli import __version__
from bpcli.model import Network, node_name, weight_name

Array = np.ndarray

@dataclass(frozen=True)
class LayerSpec:
    """One layer as the exported code needs it. W: (n_out, n_in); b: (n_out,), (1,) when shared, None when off."""

    letter: str
    n_in: int
    n_out: int
    activation: str
    params: dict
    bias: str  # on | off | frozen | shared | shared_frozen
    W: Array
    b: Array | None
    weight_names: tuple[tuple[str, ...], ...]  # bpcli's name of W[j, k]
    bias_names: tuple[str, ...]  # bpcli's name of b[j] (one for a shared bias)


@dataclass(frozen=True)
class ExportSpec:
    """Everything an exported model reproduces, independent of the target format."""

    name: str
    source: str
    inputs: tuple[str, ...]
    layers: tuple[LayerSpec, ...]
    loss: str
    loss_params: dict
    fused: bool  # the cost is computed from the output layer's z (sigmoid + BCE, softmax + CE)
    dtype: str  # float64 | float32
    mean: Array | None  # input standardisation x' = (x - mean) / std, float64
    std: Array | None
    classes: tuple[str, ...] | None

    @property
    def sizes(self) -> str:
        return "-".join(str(n) for n in [len(self.inputs)] + [layer.n_out for layer in self.layers])

    @property
    def class_name(self) -> str:
        """The module's class: the network's name in CamelCase, ending in Net (IrisNet, WorkedExampleNet)."""
        words = [w for w in re.split(r"[^0-9A-Za-z]+", self.name) if w]
        base = "".join(w[0].upper() + w[1:] for w in words)
        if not base or not base[0].isalpha() or not base.isascii():
            base = "Bpcli" + base if base.isascii() else "Bpcli"
        return base if base.endswith("Net") else base + "Net"

    @property
    def outputs(self) -> tuple[str, ...]:
        top = self.layers[-1]
        return tuple(top.letter if top.n_out == 1 else f"{top.letter}{j + 1}" for j in range(top.n_out))


def spec_from_network(net: Network, name: str, source: str = "", scaling=None,
                      classes: tuple[str, ...] | None = None) -> ExportSpec:
    """The ExportSpec of a network (weights copied), with the run's input scaling and class names if any."""
    layers = []
    for layer, W, b in zip(net.layers, net.W, net.b):
        wn = tuple(tuple(weight_name(layer, j, k) for k in range(layer.n_in)) for j in range(layer.n_out))
        if layer.shared_bias:
            bn: tuple[str, ...] = (f"b_{layer.letter}",)
        elif layer.has_bias:
            bn = tuple(f"b_{node_name(layer, j)}" for j in range(layer.n_out))
        else:
            bn = ()
        layers.append(LayerSpec(layer.letter, layer.n_in, layer.n_out, layer.activation.name,
                                dict(layer.activation.params), layer.bias, np.array(W),
                                None if b is None else np.array(b), wn, bn))
    dtype = np.dtype(net.dtype).name
    mean = std = None
    if scaling is not None:
        mean, std = np.asarray(scaling.mean, dtype=np.float64), np.asarray(scaling.std, dtype=np.float64)
    return ExportSpec(name, source, tuple(net.input_names), tuple(layers), net.loss.name, dict(net.loss.params),
                      net.fused_output, dtype, mean, std, tuple(classes) if classes else None)


# --- the weights and the name mapping --------------------------------------------------------


def torch_arrays(spec: ExportSpec) -> dict[str, Array]:
    """The module's state_dict as plain arrays: A.weight (n_out, n_in), A.bias, or A_bias for a frozen or shared
    bias (a buffer, or one parameter broadcast), and input_mean/input_std when the inputs are standardised."""
    return _arrays(spec, lambda layer: f"{layer.letter}.weight", bias_key)


def bias_key(layer: LayerSpec) -> str:
    """nn.Linear's own bias when it is an ordinary one; A_bias beside the layer when frozen or shared."""
    return f"{layer.letter}.bias" if layer.bias == "on" else f"{layer.letter}_bias"


def numpy_arrays(spec: ExportSpec) -> dict[str, Array]:
    """The arrays keyed as in a run folder's weights.npz (A.W, A.b), plus input_mean/input_std."""
    return _arrays(spec, lambda layer: f"{layer.letter}.W", lambda layer: f"{layer.letter}.b")


def _arrays(spec: ExportSpec, weight_key, bias_key_of) -> dict[str, Array]:
    """Every parameter array in the export's dtype under the given keys, and the input scaling if any."""
    out: dict[str, Array] = {}
    if spec.mean is not None:
        out["input_mean"], out["input_std"] = spec.mean, spec.std
    for layer in spec.layers:
        out[weight_key(layer)] = layer.W.astype(spec.dtype)
        if layer.b is not None:
            out[bias_key_of(layer)] = layer.b.astype(spec.dtype)
    return out


def name_mapping(spec: ExportSpec, to: str) -> dict:
    """names.json: for every exported array, bpcli's array and the bpcli name of each of its entries."""
    arrays = {}
    for layer in spec.layers:
        wkey = f"{layer.letter}.weight" if to == "pytorch" else f"{layer.letter}.W"
        arrays[wkey] = {"bpcli": f"{layer.letter}.W", "shape": [layer.n_out, layer.n_in],
                        "names": [list(row) for row in layer.weight_names]}
        if layer.b is not None:
            bkey = bias_key(layer) if to == "pytorch" else f"{layer.letter}.b"
            arrays[bkey] = {"bpcli": f"{layer.letter}.b", "shape": [int(layer.b.size)], "bias": layer.bias,
                            "names": list(layer.bias_names)}
    if spec.mean is not None:
        arrays["input_mean"] = {"bpcli": "scaling.json mean", "shape": [len(spec.inputs)], "names": list(spec.inputs)}
        arrays["input_std"] = {"bpcli": "scaling.json std", "shape": [len(spec.inputs)], "names": list(spec.inputs)}
    return {"network": spec.name, "source": spec.source, "bpcli_version": __version__, "format": to,
            "sizes": spec.sizes, "dtype": spec.dtype, "inputs": list(spec.inputs), "outputs": list(spec.outputs),
            "classes": list(spec.classes) if spec.classes else None, "arrays": arrays}


# --- the config's own activations (formulas), written as functions beside the exported code ----------


def formula_function(layer: LayerSpec) -> str:
    """The Python name of a config's own activation in the generated code (a function written beside the model)."""
    return "f_" + "".join(c if c.isascii() and c.isalnum() else "_" for c in layer.activation)


def formula_lines(spec: ExportSpec, target: str) -> list[str]:
    """A function per activation the config wrote as a formula (its f; autograd differentiates it), and for torch
    the _t helper those functions use; nothing when the network has none."""
    from bpcli.formula import formula_code  # only configs with a formula pay for the parser

    lines, seen = [], set()
    for layer in spec.layers:
        name = formula_function(layer)
        if "f" not in layer.params or name in seen:
            continue
        seen.add(name)
        lines += ["", "", f"def {name}(z):", f'    """{layer.activation}: f(z) = {layer.params["f"]}, the config\'s own."""',
                  f"    return {formula_code(layer.params['f'], {'z': 'z'}, target)}"]
    if lines and target == "torch":
        lines = ["", "", "def _t(v):", '    """A number or tensor as a tensor in the model\'s dtype."""',
                 "    return torch.as_tensor(v, dtype=DTYPE)"] + lines
    return lines
