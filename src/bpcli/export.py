"""bpcli export: a trained network as a PyTorch model.py or a plain-numpy predict.py, with its weights in an .npz.

Exporting needs neither torch nor anything else beyond numpy: the model files are text written from an
ExportSpec (the network's sizes, activations with their constants, bias modes, dtype, input scaling, class
names and weights), and the weights are plain arrays that the generated loader reads with allow_pickle=False.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bpcli import __version__
from bpcli.errors import BpcliError, SaveError
from bpcli.files import atomic_write_files, npz_bytes
from bpcli.model import Network, node_name, weight_name

Array = np.ndarray

FORMATS = ("pytorch", "numpy", "onnx")
ONNX_LEFT = ("--to onnx is not built yet: export --to pytorch, then torch.onnx.export(load(), x, "
             "'model.onnx') turns the module into ONNX")


@dataclass(frozen=True)
class LayerSpec:
    """One layer as the exported code needs it. W: (n_out, n_in); b: (n_out,), (1,) when shared, None when off."""

    letter: str
    n_in: int
    n_out: int
    activation: str
    params: dict
    bias: str  # on | off | frozen | shared
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
        if layer.bias == "shared":
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
    out: dict[str, Array] = {}
    if spec.mean is not None:
        out["input_mean"], out["input_std"] = spec.mean, spec.std
    for layer in spec.layers:
        out[f"{layer.letter}.weight"] = layer.W.astype(spec.dtype)
        if layer.b is not None:
            out[bias_key(layer)] = layer.b.astype(spec.dtype)
    return out


def bias_key(layer: LayerSpec) -> str:
    """nn.Linear's own bias when it is an ordinary one; A_bias beside the layer when frozen or shared."""
    return f"{layer.letter}.bias" if layer.bias == "on" else f"{layer.letter}_bias"


def numpy_arrays(spec: ExportSpec) -> dict[str, Array]:
    """The arrays keyed as in a run folder's weights.npz (A.W, A.b), plus input_mean/input_std."""
    out: dict[str, Array] = {}
    if spec.mean is not None:
        out["input_mean"], out["input_std"] = spec.mean, spec.std
    for layer in spec.layers:
        out[f"{layer.letter}.W"] = layer.W.astype(spec.dtype)
        if layer.b is not None:
            out[f"{layer.letter}.b"] = layer.b.astype(spec.dtype)
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


# --- the command's result -------------------------------------------------------------------


@dataclass(frozen=True)
class ExportResult:
    name: str
    source: str
    to: str
    out_dir: str
    files: tuple[tuple[str, int], ...]  # (file name, bytes)
    sizes: str
    activations: tuple[str, ...]
    n_params: int
    dtype: str
    scaled: bool
    classes: tuple[str, ...] | None
    usage: str  # how to load it, one line of Python

    def to_dict(self) -> dict:
        return {"command": "export", "name": self.name, "source": self.source, "to": self.to,
                "out_dir": self.out_dir, "files": [{"name": n, "bytes": b} for n, b in self.files],
                "sizes": self.sizes, "activations": list(self.activations), "params": self.n_params,
                "dtype": self.dtype, "scaled": self.scaled, "classes": list(self.classes) if self.classes else None,
                "usage": self.usage}


def export_files(spec: ExportSpec, to: str) -> dict[str, bytes]:
    """The files of an export, by name (nothing written)."""
    if to == "pytorch":
        from bpcli.export_torch import torch_source
        return {"model.py": torch_source(spec).encode(), "weights.npz": npz_bytes(torch_arrays(spec)),
                "names.json": (json.dumps(name_mapping(spec, to), indent=2) + "\n").encode()}
    if to == "numpy":
        from bpcli.export_numpy import numpy_source
        return {"predict.py": numpy_source(spec).encode(), "weights.npz": npz_bytes(numpy_arrays(spec)),
                "names.json": (json.dumps(name_mapping(spec, to), indent=2) + "\n").encode()}
    if to == "onnx":
        raise BpcliError(ONNX_LEFT)
    from bpcli.errors import did_you_mean, one_of
    raise BpcliError(f"--to: unknown format '{to}'{did_you_mean(to, FORMATS)}; expected one of {one_of(FORMATS)}")


def export(spec: ExportSpec, to: str, out_dir: Path, force: bool = False) -> ExportResult:
    """Write the export into out_dir, each file all or nothing; an existing non-empty folder only with force."""
    files = export_files(spec, to)
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise BpcliError(f"--out: {out_dir} is a file; give a folder")
    if out_dir.is_dir() and any(out_dir.iterdir()) and not force:
        clash = [n for n in files if (out_dir / n).exists()]
        what = f"holds {', '.join(clash)}" if clash else "is not empty"
        raise BpcliError(f"--out: {out_dir} {what}; choose another folder or add --force to overwrite")
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_files(out_dir, files)
    except OSError as err:
        raise SaveError(f"{out_dir}: cannot write the export ({err.strerror or err})") from None
    n_params = sum(layer.W.size + (0 if layer.b is None else layer.b.size) for layer in spec.layers)
    usage = ("from model import load; net = load(); y_hat = net(torch.tensor(x))" if to == "pytorch"
             else "from predict import predict; y_hat = predict(x)")
    return ExportResult(spec.name, spec.source, to, str(out_dir), tuple((n, len(b)) for n, b in files.items()),
                        spec.sizes, tuple(layer.activation for layer in spec.layers), int(n_params), spec.dtype,
                        spec.mean is not None, spec.classes, usage)
