"""What an export reproduces (ExportSpec: sizes, activations and constants, bias modes, dtype, scaling, classes,
weights), the exported arrays by name, and the mapping of every entry to bpcli's parameter names."""

from __future__ import annotations

import ast
import math
import re
from dataclasses import dataclass

import numpy as np

from bpcli import __version__
from bpcli.errors import BpcliError
from bpcli.nn.model import Network, node_name, weight_name

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


# --- user text in generated code: only as literals -------------------------------------------------


def literal(value) -> str:
    """value as Python source that can only be that value: repr of plain str, number, bool, None, tuple, list or
    dict (exact types, so no subclass brings its own repr), checked by reading it back with ast.literal_eval.

    Every name, path, class and formula text reaches an export's code this way, never inside a comment or a
    docstring, so nothing a config or a file name says can change what the code does."""
    def plain(v) -> bool:
        if type(v) in (str, int, bool) or v is None:
            return True
        if type(v) is float:
            return math.isfinite(v)
        if type(v) in (tuple, list):
            return all(plain(x) for x in v)
        if type(v) is dict:
            return all(type(k) is str and plain(x) for k, x in v.items())
        return False

    if not plain(value):
        raise BpcliError(f"export: cannot write {type(value).__name__} {str(value)[:40]!r} as a Python literal")
    text = repr(value)
    if ast.literal_eval(text) != value:  # cannot happen for these types; a guard, not a branch
        raise BpcliError(f"export: {text[:40]} does not read back as itself")
    return text


def number(value) -> str:
    """A finite number from the config (an activation's slope, huber's delta) as a float literal."""
    return literal(float(value))


def safe_dtype(spec: ExportSpec) -> str:
    """The export's dtype name, one of the two bpcli trains in (it becomes np.<dtype> / torch.<dtype>)."""
    if spec.dtype not in ("float64", "float32"):
        raise BpcliError(f"export: dtype {spec.dtype[:20]!r} is not float64 or float32")
    return spec.dtype


def header_table(spec: ExportSpec) -> list[str]:
    """The data table at the top of an export's code: the network's name and source, inputs, outputs, classes,
    each layer's activation and the text of the config's formulas, all as literals."""
    lines = [f"NETWORK = {literal({'name': str(spec.name), 'source': str(spec.source), 'sizes': spec.sizes})}",
             f"INPUTS = {literal(tuple(str(n) for n in spec.inputs))}",
             f"OUTPUTS = {literal(tuple(spec.outputs))}"]
    if spec.classes:
        lines.append(f"CLASSES = {literal(tuple(str(c) for c in spec.classes))}")
    lines.append(f"ACTIVATIONS = {literal({layer.letter: str(layer.activation) for layer in spec.layers})}")
    formulas = {layer.letter: {k: str(v) for k, v in layer.params.items()} for layer in spec.layers
                if "f" in layer.params}
    if "L" in spec.loss_params:
        formulas["loss"] = {k: str(v) for k, v in spec.loss_params.items()}
    if formulas:
        lines += ["# the config's own formulas as written; the functions below are written from bpcli's checked form",
                  f"FORMULAS = {literal(formulas)}"]
    return lines


def activation_label(layer: LayerSpec) -> str:
    """A layer's activation as a comment may name it: a built-in's registry name, or the formula's function."""
    if "f" in layer.params:
        return f"{formula_function(layer)} (FORMULAS[{layer.letter!r}])"
    return layer.activation if layer.activation.isidentifier() else f"ACTIVATIONS[{layer.letter!r}]"


# --- the config's own activations (formulas), written as functions beside the exported code ----------


def formula_function(layer: LayerSpec) -> str:
    """The Python name of a layer's own activation in the generated code: f_ and the layer's letter (one per layer,
    so two formulas never share a name)."""
    return f"f_{layer.letter}"


def formula_lines(spec: ExportSpec, target: str) -> list[str]:
    """A function per layer whose activation the config wrote as a formula (its f, written from the checked tree
    bpcli evaluates; autograd differentiates it), for torch the config's own loss L if it has one and the _t
    helper those functions use; nothing when the network has no formula."""
    from bpcli.nn.formula import FormulaError, parse_formula  # only configs with a formula pay for the parser
    from bpcli.bridge.formula_code import formula_source

    lines = []
    for layer in spec.layers:
        if "f" not in layer.params:
            continue
        name = formula_function(layer)
        try:
            expr = formula_source(parse_formula(layer.params["f"], ("z",)), {"z": "z"}, target)
        except FormulaError as err:
            raise BpcliError(f"layer {layer.letter}: its activation's f cannot be exported: {err}") from None
        doc = f'    """Layer {layer.letter}\'s own activation f(z) (FORMULAS), as bpcli computes it."""'
        if target == "numpy":
            lines += ["", "", f"def {name}(z):", doc,
                      "    with np.errstate(all=\"ignore\"):  # overflow and log(0) give inf and nan, as in bpcli",
                      f"        v = np.asarray({expr})",
                      "    return np.array(np.broadcast_to(v, z.shape), dtype=z.dtype)"]
        else:
            lines += ["", "", f"def {name}(z):", doc, f"    return torch.broadcast_to(({expr}).to(z.dtype), z.shape)"]
    if target == "torch" and "L" in spec.loss_params:  # the config's own loss, for cost()
        try:
            expr = formula_source(parse_formula(spec.loss_params["L"], ("y", "yhat")), {"y": "y", "yhat": "yhat"},
                                  target)
        except FormulaError as err:
            raise BpcliError(f"loss: its L cannot be exported: {err}") from None
        lines += ["", "", "def loss_formula(y, yhat):",
                  '    """The config\'s own loss L(y, y\') of each output (FORMULAS["loss"]), as bpcli computes it."""',
                  f"    return torch.broadcast_to(({expr}).to(yhat.dtype), yhat.shape)"]
    if lines and target == "torch":
        lines = ["", "", "def _t(v):", '    """A number as a tensor in the model\'s dtype."""',
                 "    return torch.as_tensor(v, dtype=DTYPE)", "", "",
                 "def _t64(v):", '    """A number as a float64 tensor: numpy computes with it in float64, as bpcli."""',
                 "    return torch.as_tensor(v, dtype=torch.float64)"] + lines
    return lines
