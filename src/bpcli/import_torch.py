"""bpcli import: the state of a small PyTorch MLP (Linear layers, saved with numpy.savez) -> a bpcli config.

The arrays are read with allow_pickle=False; a pickled torch.save file is refused, never loaded.  The config
holds the weights explicitly, so explain, gradcheck and show --dot work on the network as PyTorch trained it.
"""

from __future__ import annotations

import csv
import json
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import yaml

from bpcli.activations import get_activation
from bpcli.errors import BpcliError, ConfigError, DataError
from bpcli.files import atomic_write_text, read_npz
from bpcli.losses import get_loss
from bpcli.model import LETTERS
from bpcli.prose import wrap

Array = np.ndarray

MAX_STATE_BYTES = 400_000_000  # any one array; a small MLP is far below
MAX_INLINE_VALUES = 200_000  # x and y from an .npz are written into the config; beyond this, use a CSV
SAVE_HINT = "save the state with numpy: np.savez(path, **{k: v.numpy() for k, v in model.state_dict().items()})"


@dataclass(frozen=True)
class ImportedLayer:
    letter: str
    weight_key: str
    bias_key: str | None
    n_in: int
    n_out: int
    activation: str
    bias: str  # on | off | frozen | shared | shared_frozen

    def to_dict(self) -> dict:
        return {"letter": self.letter, "weight": self.weight_key, "bias_array": self.bias_key, "inputs": self.n_in,
                "size": self.n_out, "activation": self.activation, "bias": self.bias}


@dataclass(frozen=True)
class ImportResult:
    state_file: str
    out: str
    name: str
    sizes: str
    layers: tuple[ImportedLayer, ...]
    loss: str
    n_params: int
    dtype: str
    data: str
    samples: int
    notes: tuple[str, ...]

    def to_dict(self) -> dict:
        return {"command": "import", "state_file": self.state_file, "out": self.out, "name": self.name,
                "sizes": self.sizes, "layers": [layer.to_dict() for layer in self.layers], "loss": self.loss,
                "params": self.n_params, "dtype": self.dtype, "data": self.data, "samples": self.samples,
                "notes": list(self.notes)}


def parse_arch(text: str) -> list[int]:
    """'2-4-3' -> [2, 4, 3]: the inputs, then each layer's size."""
    parts = [p.strip() for p in str(text).replace(",", "-").split("-")]
    if len(parts) < 2 or not all(p.isdigit() and int(p) > 0 for p in parts):
        raise BpcliError(f"--arch: expected the sizes from the inputs to the outputs joined by '-', e.g. 2-4-3, "
                         f"found '{text}'")
    return [int(p) for p in parts]


def parse_named(text: str, what: str) -> tuple[str, dict]:
    """'leaky_relu:slope=0.2' -> ('leaky_relu', {'slope': 0.2}); 'squared_error:convention=mean' likewise."""
    name, _, rest = str(text).strip().partition(":")
    params: dict = {}
    for item in filter(None, (s.strip() for s in rest.split(";"))):
        key, eq, value = item.partition("=")
        if not eq:
            raise BpcliError(f"{what}: expected NAME:KEY=VALUE, e.g. leaky_relu:slope=0.2, found '{text}'")
        try:
            params[key.strip()] = float(value)
        except ValueError:
            params[key.strip()] = value.strip()
    return name.strip(), params


def _natural(key: str) -> list:
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", key)]


def read_state(path: Path) -> dict[str, Array]:
    """The arrays of an .npz state file, never unpickling; BpcliError for anything else."""
    path = Path(path)
    if path.suffix.lower() in (".pt", ".pth", ".bin", ".pkl", ".ckpt"):
        raise BpcliError(f"{path}: a torch.save file is a pickle, which bpcli never loads; {SAVE_HINT}")
    if path.suffix.lower() == ".safetensors":
        raise BpcliError(f"{path}: safetensors is not read by bpcli; {SAVE_HINT}")
    try:
        return read_npz(path, MAX_STATE_BYTES, "state file")
    except BpcliError as err:
        raise BpcliError(f"{err}; {SAVE_HINT}") from None


def _bias_modes(path: Path) -> dict[str, str]:
    """Bias modes recorded by `bpcli export` in names.json beside the weights (frozen or shared), if any."""
    try:
        arrays = json.loads((Path(path).parent / "names.json").read_text(encoding="utf-8")).get("arrays", {})
        return {k: v["bias"] for k, v in arrays.items() if isinstance(v, dict) and "bias" in v}
    except (OSError, ValueError, AttributeError, TypeError, KeyError):
        return {}


def layers_of(path: Path, arrays: dict[str, Array], arch: list[int], activations: list[str]
              ) -> tuple[list[ImportedLayer], list[Array], list[Array | None], list[str]]:
    """Match the arrays to --arch: (layers, W, b, notes); ConfigError listing every mismatch."""
    notes, problems = [], []
    for key in ("input_mean", "input_std"):
        if key in arrays:
            arrays = {k: v for k, v in arrays.items() if k != key}
            notes.append(f"{key}: the export's input standardisation is not part of the config; give data that is "
                         "already standardised")
    prefixes = sorted((k[: -len(".weight")] for k in arrays if k.endswith(".weight")), key=_natural)
    used = {f"{p}.weight" for p in prefixes} | {f"{p}.bias" for p in prefixes} | {f"{p}_bias" for p in prefixes}
    stray = [k for k in arrays if k not in used]
    if stray:
        problems.append(f"{path}: unexpected array(s) {', '.join(stray)}: only Linear layers' weight and bias "
                        "are understood (keys like 0.weight, 0.bias, 2.weight)")
    n_layers = len(arch) - 1
    if len(prefixes) != n_layers:
        problems.append(f"{path}: holds {len(prefixes)} Linear layer(s) ({', '.join(prefixes) or 'none'}); "
                        f"--arch {'-'.join(map(str, arch))} describes {n_layers}")
    if len(activations) != n_layers:
        problems.append(f"--activations: {len(activations)} given for {n_layers} layer(s); give one per layer, "
                        "the output layer's last")
    if problems:
        raise ConfigError(problems)
    modes = _bias_modes(path)
    layers, Ws, bs = [], [], []
    for i, prefix in enumerate(prefixes):
        n_in, n_out, letter = arch[i], arch[i + 1], LETTERS[i]
        W = arrays[f"{prefix}.weight"]
        if W.shape != (n_out, n_in):
            problems.append(f"{path}: {prefix}.weight has shape {W.shape}; --arch needs ({n_out}, {n_in}) for layer "
                            f"{letter} ({n_out} nodes from {n_in} inputs)")
        bkey = next((k for k in (f"{prefix}.bias", f"{prefix}_bias") if k in arrays), None)
        b = None if bkey is None else arrays[bkey]
        mode = "off" if b is None else modes.get(bkey, "shared" if b.shape == (1,) and n_out > 1 else "on")
        if bkey is not None and mode == "on" and bkey.endswith("_bias"):
            mode = "frozen"
        if b is not None and b.shape != ((1,) if mode in ("shared", "shared_frozen") else (n_out,)):
            problems.append(f"{path}: {bkey} has shape {b.shape}; layer {letter} needs ({n_out},)")
        for key, arr in ((f"{prefix}.weight", W), (bkey, b)):
            if arr is not None and (arr.dtype.kind not in "fi" or not np.all(np.isfinite(arr))):
                problems.append(f"{path}: {key} holds values that are not finite numbers")
        act_name, act_params = parse_named(activations[i], "--activations")
        act = get_activation(act_name, act_params, where=f"--activations[{i + 1}]")
        layers.append(ImportedLayer(letter, f"{prefix}.weight", bkey, n_in, n_out,
                                    _activation_text(act.name, act.params), mode))
        Ws.append(W)
        bs.append(b)
    if problems:
        raise ConfigError(problems)
    return layers, Ws, bs, notes


def _activation_text(name: str, params: dict) -> str:
    """('leaky_relu', {'slope': 0.2}) -> 'leaky_relu:slope=0.2', the form --activations and --loss take."""
    items = [f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in params.items()]
    return name + (":" + ";".join(items) if items else "")


def data_section(data: str, target: str | None, out: Path, n_out: int | None = None) -> tuple[dict, str]:
    """The config's data section for --data: a CSV file, an .npz with arrays x and y, or a generator's name.

    y given as one class index per sample (what PyTorch's F.cross_entropy takes) is one-hot encoded for an
    output layer of n_out > 1 nodes.
    """
    from bpcli.data import GENERATORS
    if data in GENERATORS:
        return {"generator": data}, f"generator {data}"
    p = Path(data)
    if p.suffix.lower() == ".npz":
        arrays = read_npz(p, MAX_STATE_BYTES, "data file")
        if "x" not in arrays or "y" not in arrays:
            raise DataError(f"--data: {p} needs arrays named x and y (found {', '.join(arrays) or 'none'})")
        x, y = np.atleast_2d(arrays["x"]).astype(float), arrays["y"].astype(float)
        if n_out is not None and n_out > 1 and y.ndim == 1 and y.size and np.all(y == np.round(y)) \
                and 0 <= y.min() and y.max() < n_out:
            y = np.eye(n_out)[y.astype(np.intp)]  # class indices -> one-hot targets
        y = y.reshape(-1, 1) if y.ndim == 1 else y
        if x.size + y.size > MAX_INLINE_VALUES:
            raise DataError(f"--data: {p} holds {x.size + y.size:,} values, too many to write into a config; "
                            "give them as a CSV file")
        return {"x": x.tolist(), "y": y.tolist()}, f"{p} (x, y inline)"
    if p.suffix.lower() == ".csv" or p.exists():
        if not p.is_file():
            raise DataError(f"--data: data file not found: {p}")
        if target is None:
            with open(p, "rb") as fh:
                first = fh.readline(1 << 20)
            try:
                header = next(csv.reader([first.decode("utf-8-sig").strip()]), None)
            except UnicodeDecodeError:
                raise DataError(f"--data: {p}:1: the header row is not UTF-8 text") from None
            except csv.Error as err:
                raise DataError(f"--data: {p}:1: the header row is not CSV ({err})") from None
            if not header or not header[-1].strip():
                raise DataError(f"--data: {p}:1: no header row naming the columns (the last is the target)")
            target = header[-1].strip()
        return {"csv": str(p.resolve()), "target": target}, f"{p} (target {target})"
    raise DataError(f"--data: '{data}' is neither a file nor a generator; give a CSV file (with --target), an .npz "
                    f"with arrays x and y, or one of {', '.join(GENERATORS)}")


def import_state(state_file: Path, arch: str, activations: str, loss: str, data: str | None, out: Path,
                 target: str | None = None, force: bool = False) -> ImportResult:
    """Write a bpcli config with the state's weights; every problem is a BpcliError before anything is written."""
    from bpcli.config import parse
    from bpcli.yamlsrc import read_yaml

    out = Path(out)
    if out.exists() and not force:
        raise BpcliError(f"-o: {out} already exists; choose another file or add --force to overwrite it")
    sizes = parse_arch(arch)
    acts = [a for a in (s.strip() for s in activations.split(",")) if a]
    loss_name, loss_params = parse_named(loss, "--loss")
    loss_obj = get_loss(loss_name, loss_params, where="--loss")
    if data is None:
        raise BpcliError("--data: give the samples to explain and check on: a CSV file (with --target), an .npz "
                         "with arrays x and y, or a generator such as xor")
    arrays = read_state(state_file)
    layers, Ws, bs, notes = layers_of(Path(state_file), arrays, sizes, acts)
    dsec, dtext = data_section(data, target, out, sizes[-1])
    dtype = "float32" if all(a.dtype == np.float32 for a in Ws) else "float64"
    doc = {"version": 1, "name": out.stem, "description": f"imported by bpcli import from {Path(state_file).name}",
           "inputs": sizes[0], "layers": [], "loss": {"name": loss_obj.name, **loss_obj.params}, "data": dsec,
           "train": {"dtype": dtype}}
    for layer, W, b in zip(layers, Ws, bs):
        act_name, act_params = parse_named(layer.activation, "--activations")
        entry = {"size": layer.n_out, "activation": {"name": act_name, **act_params} if act_params else act_name,
                 "bias": layer.bias, "weights": W.astype(np.float64).tolist()}
        if b is not None:
            entry["biases"] = float(b[0]) if layer.bias in ("shared", "shared_frozen") else b.astype(np.float64).tolist()
        doc["layers"].append(entry)
    head = wrap(f"A PyTorch MLP imported by `bpcli import {Path(state_file).name}`: {'-'.join(map(str, sizes))}, "
                "its weights written out below.", indent="# ")
    text = ("\n".join(head) + "\n" + yaml.safe_dump(doc, sort_keys=False, default_flow_style=None,
                                                                  width=120))
    try:  # the config must load as it will be read: every problem is ours to report now, not the user's later
        doc_read, locs = read_yaml(text, str(out))
        _, dataset = parse(doc_read, str(out), locs, out.resolve().parent)
    except ConfigError as err:
        raise ConfigError([f"the imported config would not load: {p}" for p in err.problems]) from None
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(out, text)
    except OSError as err:
        raise BpcliError(f"-o: cannot write {out} ({err.strerror or err})") from None
    n_params = sum(W.size + (0 if b is None else b.size) for W, b in zip(Ws, bs))
    return ImportResult(str(state_file), str(out), out.stem, "-".join(map(str, sizes)), tuple(layers),
                        _activation_text(loss_obj.name, loss_obj.params),
                        int(n_params), dtype, dtext, dataset.m, tuple(notes))
