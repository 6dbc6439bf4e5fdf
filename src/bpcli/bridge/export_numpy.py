"""The text of an exported predict.py: the trained network's forward pass in plain numpy, no framework."""

from __future__ import annotations

from bpcli.bridge.export_spec import (
    ExportSpec, LayerSpec, activation_label, formula_function, formula_lines, header_table, number, safe_dtype,
)
from bpcli.prose import wrap

# each function as bpcli's registry computes it (stable in both tails); only those the network uses are written
FUNCTIONS = {
    "identity": ("def identity(z):", "    return z"),
    "sigmoid": ("def sigmoid(z):", "    e = np.exp(-np.abs(z))  # never overflows",
                "    return np.where(z >= 0, 1.0, e) / (1.0 + e)"),
    "tanh": ("def tanh(z):", "    return np.tanh(z)"),
    "relu": ("def relu(z):", "    return np.maximum(z, 0.0)"),
    "leaky_relu": ("def leaky_relu(z, slope):", "    return np.where(z > 0, z, slope * z)"),
    "elu": ("def elu(z, alpha):", "    return np.where(z > 0, z, alpha * np.expm1(np.minimum(z, 0.0)))"),
    "softplus": ("def softplus(z):", "    return np.logaddexp(0.0, z)  # ln(1 + e^z)"),
    "silu": ("def silu(z):", "    return z * sigmoid(z)"),
    "gelu": ("def gelu(z):", "    zc = np.clip(z, -50.0, 50.0)  # tanh is +-1 long before; keeps z^3 finite",
             "    return 0.5 * z * (1.0 + np.tanh(np.sqrt(2.0 / np.pi) * (zc + 0.044715 * zc**3)))"),
    "softmax": ("def softmax(z):", "    e = np.exp(z - z.max(axis=1, keepdims=True))",
                "    return e / e.sum(axis=1, keepdims=True)"),
}


def _call(layer: LayerSpec, z: str) -> str:
    if "f" in layer.params:  # the config's own activation, written out by formula_lines
        return f"{formula_function(layer)}({z})"
    if layer.activation not in FUNCTIONS:
        from bpcli.errors import BpcliError
        raise BpcliError(f"layer {layer.letter}: activation '{layer.activation}' has no numpy form in bpcli export "
                         f"yet (exportable: {', '.join(FUNCTIONS)})")
    if layer.activation == "identity":
        return z
    args = "".join(f", {number(v)}" for v in layer.params.values())
    return f"{layer.activation}({z}{args})"


def numpy_source(spec: ExportSpec) -> str:
    """predict.py for this network."""
    needed = {layer.activation for layer in spec.layers}
    if "silu" in needed:
        needed.add("sigmoid")
    top = spec.layers[-1]
    dtype = safe_dtype(spec)
    lines = [
        *wrap(f'"""The {spec.sizes} network bpcli trained, in plain numpy ({dtype}); NETWORK names it and its '
              "source."),
        "",
        *wrap("The weights are in weights.npz beside this file, keyed as in a run folder: A.W (nodes x inputs: "
              "A.W[j-1, k-1] is w_jk), A.b, ...; names.json names each entry."),
        "",
        "    from predict import predict",
        f"    y_hat = predict(x)  # x: (m, {len(spec.inputs)}) array, its columns as INPUTS lists them",
        '"""',
        "",
        "from pathlib import Path",
        "",
        "import numpy as np",
        "",
        f"DTYPE = np.{dtype}",
        *header_table(spec),
    ]
    lines += ["", "", "def load(path=Path(__file__).with_name(\"weights.npz\")):",
              '    """The arrays of weights.npz by name (read without pickle)."""',
              "    with np.load(path, allow_pickle=False) as npz:", "        return {k: npz[k] for k in npz.files}",
              "", "", "WEIGHTS = load()"]
    for name in FUNCTIONS:
        if name in needed and name != "identity":
            lines += ["", ""] + list(FUNCTIONS[name])
    lines += formula_lines(spec, "numpy")
    lines += ["", "", "def predict(x, weights=WEIGHTS):",
              f'    """The network\'s output y\' for x: (m, {len(spec.inputs)}) -> (m, {top.n_out})."""',
              "    w = weights", "    a = np.asarray(x, dtype=np.float64)"]
    if spec.mean is not None:
        lines.append("    a = (a - w[\"input_mean\"]) / w[\"input_std\"]  # standardised as in training")
    lines.append("    a = a.astype(DTYPE)")
    for layer in spec.layers:
        z = f"a @ w[\"{layer.letter}.W\"].T" + ("" if layer.b is None else f" + w[\"{layer.letter}.b\"]")
        comment = f"  # layer {layer.letter}: {layer.n_out} {activation_label(layer)}"
        lines.append(f"    a = {_call(layer, z)}{comment}")
    lines.append("    return a")
    if spec.classes:
        rule = "y_hat[:, 0] >= 0.5" if top.n_out == 1 else "np.argmax(y_hat, axis=1)"
        lines += ["", "", "def classes(y_hat):", '    """The class of each row of the output."""',
                  f"    return [CLASSES[int(i)] for i in {rule}]"]
    return "\n".join(lines) + "\n"
