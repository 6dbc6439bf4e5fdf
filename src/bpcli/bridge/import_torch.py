"""bpcli import: the state of a small PyTorch MLP (Linear layers, saved with numpy.savez) -> a bpcli config.

The arrays are read with allow_pickle=False; a pickled torch.save file is refused, never loaded.  The config
holds the weights explicitly, so explain, gradcheck and show --dot work on the network as PyTorch trained it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bpcli.nn.activations import get_activation
from bpcli.errors import BpcliError, ConfigError, DataError
from bpcli.files import read_npz, write_output
from bpcli.nn.losses import get_loss
from bpcli.nn.model import LETTERS
from bpcli.prose import wrap

Array = np.ndarray

MAX_STATE_BYTES = 400_000_000  # any one array, and all of a state file's arrays together; a small MLP is far below
MAX_NAMES_BYTES = 8_000_000  # names.json beside the weights (bpcli's export writes a few kilobytes)
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
    weight_shape: tuple[int, ...] = ()
    bias_shape: tuple[int, ...] | None = None

    @property
    def mapping(self) -> str:
        """'A <- encoder.weight (3, 2), encoder.bias (3,)': which tensors became this layer."""
        text = f"{self.letter} <- {self.weight_key} {tuple(self.weight_shape)}"
        return text if self.bias_key is None else f"{text}, {self.bias_key} {tuple(self.bias_shape)}"

    def to_dict(self) -> dict:
        return {"letter": self.letter, "weight": self.weight_key, "weight_shape": list(self.weight_shape),
                "bias_array": self.bias_key, "bias_shape": None if self.bias_shape is None else list(self.bias_shape),
                "mapping": self.mapping, "inputs": self.n_in, "size": self.n_out, "activation": self.activation,
                "bias": self.bias}


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


def read_state(path: Path) -> dict[str, Array]:
    """The arrays of an .npz state file, never unpickling; BpcliError for anything else."""
    path = Path(path)
    if path.suffix.lower() in (".pt", ".pth", ".bin", ".pkl", ".ckpt"):
        raise BpcliError(f"{path}: a torch.save file is a pickle, which bpcli never loads; {SAVE_HINT}")
    if path.suffix.lower() == ".safetensors":
        raise BpcliError(f"{path}: safetensors is not read by bpcli; {SAVE_HINT}")
    try:
        return read_npz(path, MAX_STATE_BYTES, "state file", max_total=MAX_STATE_BYTES)
    except BpcliError as err:
        raise BpcliError(f"{err}; {SAVE_HINT}") from None


def _bias_modes(path: Path) -> dict[str, str]:
    """Bias modes recorded by `bpcli export` in names.json beside the weights (frozen or shared), if any.

    None when there is no names.json or it is not an export's; BpcliError when it is not a regular file (a FIFO
    is never waited on) or is too large to be one."""
    from bpcli.files import NotReadable, loads_json, read_capped
    names = Path(path).parent / "names.json"
    try:
        arrays = loads_json(read_capped(names, MAX_NAMES_BYTES, "names.json"), names).get("arrays", {})
        return {k: v["bias"] for k, v in arrays.items() if isinstance(v, dict) and "bias" in v}
    except NotReadable as err:
        if err.kind == "missing":
            return {}
        raise BpcliError(f"{err} (names.json beside the state file records its bias modes; remove or fix it)") from None
    except (ValueError, AttributeError, TypeError, KeyError):  # not an export's names.json: no modes from it
        return {}


def layers_of(path: Path, arrays: dict[str, Array], arch: list[int], activations: list[str],
              order: list[str] | None = None
              ) -> tuple[list[ImportedLayer], list[Array], list[Array | None], list[str]]:
    """Match the arrays to --arch: (layers, W, b, notes); ConfigError listing every mismatch.

    The layers are taken in the file's order (np.savez keeps the state_dict's order, which is the order the
    module registered its layers in), or in `order` (--layers) when given.
    """
    notes, problems = [], []
    for key in ("input_mean", "input_std"):
        if key in arrays:
            arrays = {k: v for k, v in arrays.items() if k != key}
            notes.append(f"{key}: the export's input standardisation is not part of the config; give data that is "
                         "already standardised")
    found = [k[: -len(".weight")] for k in arrays if k.endswith(".weight")]  # the file's order: registration order
    prefixes = found if order is None else order
    missing = [p for p in prefixes if f"{p}.weight" not in arrays]
    if missing:
        from bpcli.errors import did_you_mean
        problems.append(f"--layers: no array {missing[0]}.weight in {path}{did_you_mean(missing[0], found)}; its "
                        f"Linear layers are {', '.join(found) or 'none'}")
    used = {f"{p}.weight" for p in prefixes} | {f"{p}.bias" for p in prefixes} | {f"{p}_bias" for p in prefixes}
    stray = [k for k in arrays if k not in used]
    if stray and order is not None and not missing:
        problems.append(f"--layers: {', '.join(stray)} in {path} belong to no layer it names; name every Linear "
                        f"layer, from the input to the output")
    elif stray and order is None:
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
    _check_chain(path, arrays, prefixes, order is not None)
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
                                    _activation_text(act.name, act.params), mode, tuple(W.shape),
                                    None if b is None else tuple(b.shape)))
        Ws.append(W)
        bs.append(b)
    if problems:
        raise ConfigError(problems)
    return layers, Ws, bs, notes


def parse_layers(text: str | None) -> list[str] | None:
    """--layers 'encoder,decoder' -> ['encoder', 'decoder'] (the prefixes of the Linear layers, input first)."""
    if text is None:
        return None
    names = [p.strip().removesuffix(".weight") for p in str(text).split(",")]
    if not all(names) or len(set(names)) != len(names):
        raise BpcliError(f"--layers: expected the layers' prefixes from the input to the output, each once, joined "
                         f"by ',', e.g. --layers encoder,decoder; found '{text}'")
    return names


def _check_chain(path: Path, arrays: dict[str, Array], prefixes: list[str], named: bool) -> None:
    """Each layer's outputs are the next one's inputs; else the order is wrong, and --layers is the way to name it."""
    shapes = [np.shape(arrays[f"{p}.weight"]) for p in prefixes]
    if any(len(s) != 2 for s in shapes):
        bad = next(p for p, s in zip(prefixes, shapes) if len(s) != 2)
        raise ConfigError([f"{path}: {bad}.weight has shape {np.shape(arrays[bad + '.weight'])}; a Linear layer's "
                           "weight is (outputs, inputs)"])
    for (p, s), (q, t) in zip(zip(prefixes, shapes), zip(prefixes[1:], shapes[1:])):
        if s[0] != t[1]:
            order = "the order --layers gives" if named else "the file's order"
            raise ConfigError([f"{path}: in {order} the Linear layers do not form one chain: {p}.weight {s} gives "
                               f"{s[0]} outputs but the next, {q}.weight {t}, takes {t[1]} inputs; name the order "
                               f"from input to output with --layers PREFIX,PREFIX,... (the layers: "
                               f"{', '.join(prefixes)})"])


def _activation_text(name: str, params: dict) -> str:
    """('leaky_relu', {'slope': 0.2}) -> 'leaky_relu:slope=0.2', the form --activations and --loss take."""
    items = [f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in params.items()]
    return name + (":" + ";".join(items) if items else "")


def _csv_header(path: Path) -> list[str]:
    """The column names of a CSV's header row (DataError naming --data when it has none)."""
    import csv
    import io

    from bpcli.data.dataset import csv_header
    from bpcli.files import NotReadable, open_regular
    try:
        with open_regular(path) as fh:
            first = fh.readline(1_000_000)
    except NotReadable as err:
        raise DataError(f"--data: data file not found: {path}" if err.kind == "missing" else f"--data: {err}") \
            from None
    except OSError as err:
        raise DataError(f"--data: cannot read {path} ({err.strerror})") from None
    try:
        text = first.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise DataError(f"--data: {path}:1: the header row is not UTF-8 text") from None
    try:
        return csv_header(csv.reader(io.StringIO(text)), f"--data: {path}", f"--data: {path} is empty (expected a header row)")
    except csv.Error as err:
        raise DataError(f"--data: cannot read {path} ({err})") from None


def data_section(data: str, target: str | None, out: Path, n_out: int | None = None, columns: str | None = None,
                 n_in: int | None = None) -> tuple[dict, str]:
    """The config's data section for --data: a CSV file, an .npz with arrays x and y, or a generator's name.

    A CSV's inputs are --columns (default: every column but the target, as `train` reads it), its target --target
    (default: the last column); the section names both, so the config reads the file by its header.

    y given as one class index per sample (what PyTorch's F.cross_entropy takes) is one-hot encoded for an
    output layer of n_out > 1 nodes.
    """
    from bpcli.data.dataset import GENERATORS
    if data in GENERATORS:
        return {"generator": data}, f"generator {data}"
    p = Path(data)
    if p.suffix.lower() == ".npz":
        arrays = read_npz(p, MAX_STATE_BYTES, "data file", max_total=MAX_STATE_BYTES)
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
    if p.suffix.lower() == ".csv" or p.exists() or p.is_symlink():
        header = _csv_header(p)
        targets = [header[-1]] if target is None else [t.strip() for t in target.split(",") if t.strip()]
        inputs = ([c for c in header if c not in targets] if columns is None
                  else [c.strip() for c in columns.split(",") if c.strip()])
        for opt, names in (("--target", targets), ("--columns", inputs)):
            missing = [c for c in names if c not in header]
            if missing:
                from bpcli.errors import did_you_mean
                raise DataError(f"{opt}: column '{missing[0]}' is not in {p}{did_you_mean(missing[0], header)}; "
                                f"its columns are: {', '.join(header)}")
        if n_in is not None and len(inputs) != n_in:
            raise DataError(f"--columns: {len(inputs)} input column(s) in {p} ({', '.join(inputs) or 'none'}) but "
                            f"--arch starts with {n_in} inputs; name the inputs with --columns A,B,...")
        section = {"csv": str(p.resolve()), "target": targets[0] if len(targets) == 1 else targets,
                   "features": inputs}
        return section, f"{p} (inputs {', '.join(inputs)}; target {', '.join(targets)})"
    raise DataError(f"--data: '{data}' is neither a file nor a generator; give a CSV file (with --target), an .npz "
                    f"with arrays x and y, or one of {', '.join(GENERATORS)}")


def _inputs(state_file: Path, data: str | None) -> tuple[Path, ...]:
    """The files import reads, which -o must never write over: the state, names.json beside it, a data file."""
    found = [Path(state_file), Path(state_file).parent / "names.json"]
    return tuple(found + ([Path(data)] if data is not None else []))


def import_state(state_file: Path, arch: str, activations: str, loss: str, data: str | None, out: Path,
                 target: str | None = None, force: bool = False, layer_order: str | None = None,
                 columns: str | None = None) -> ImportResult:
    """Write a bpcli config with the state's weights; every problem is a BpcliError before anything is written."""
    from bpcli.config.loader import parse
    from bpcli.yamlsrc import dump_yaml, read_yaml

    from bpcli.files import check_output

    out = Path(out)
    reads = _inputs(state_file, data)
    check_output(out, force, "-o", reads=reads, example="imported.yaml", new_folder=True)
    sizes = parse_arch(arch)
    acts = [a for a in (s.strip() for s in activations.split(",")) if a]
    loss_name, loss_params = parse_named(loss, "--loss")
    loss_obj = get_loss(loss_name, loss_params, where="--loss")
    if data is None:
        raise BpcliError("--data: give the samples to explain and check on: a CSV file (with --target), an .npz "
                         "with arrays x and y, or a generator such as xor")
    arrays = read_state(state_file)
    layers, Ws, bs, notes = layers_of(Path(state_file), arrays, sizes, acts, parse_layers(layer_order))
    dsec, dtext = data_section(data, target, out, sizes[-1], columns, sizes[0])
    if columns is not None and "csv" not in dsec:
        raise BpcliError(f"--columns names a CSV's input columns; --data {data} is not a CSV file")
    inputs = dsec.pop("features", sizes[0])  # a CSV's input columns by name: the config reads the file by its header
    dtype = "float32" if all(a.dtype == np.float32 for a in Ws) else "float64"
    doc = {"version": 1, "name": out.stem, "description": f"imported by bpcli import from {Path(state_file).name}",
           "inputs": inputs, "layers": [], "loss": {"name": loss_obj.name, **loss_obj.params}, "data": dsec,
           "train": {"dtype": dtype}}
    for layer, W, b in zip(layers, Ws, bs):
        act_name, act_params = parse_named(layer.activation, "--activations")
        entry = {"size": layer.n_out, "activation": {"name": act_name, **act_params} if act_params else act_name,
                 "bias": layer.bias, "weights": W.astype(np.float64).tolist()}
        if b is not None:
            entry["biases"] = float(b[0]) if layer.bias in ("shared", "shared_frozen") else b.astype(np.float64).tolist()
        doc["layers"].append(entry)
    # the file name in a comment: a CR, NEL or line separator in it would end the comment and start YAML
    shown = "".join(c if c.isprintable() else ascii(c)[1:-1] for c in Path(state_file).name)
    head = wrap(f"A PyTorch MLP imported by `bpcli import {shown}`: {'-'.join(map(str, sizes))}, "
                "its weights written out below.", indent="# ")
    text = ("\n".join(head) + "\n" + dump_yaml(doc, sort_keys=False, default_flow_style=None, width=120))
    try:  # the config must load as it will be read: every problem is ours to report now, not the user's later
        doc_read, locs = read_yaml(text, str(out))
        _, dataset = parse(doc_read, str(out), locs, out.resolve().parent)
    except ConfigError as err:
        raise ConfigError([f"the imported config would not load: {p}" for p in err.problems]) from None
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        write_output(out, text, force, "-o", reads=reads, example="imported.yaml")
    except OSError as err:
        raise BpcliError(f"-o: cannot write {out} ({err.strerror or err})") from None
    n_params = sum(W.size + (0 if b is None else b.size) for W, b in zip(Ws, bs))
    return ImportResult(str(state_file), str(out), out.stem, "-".join(map(str, sizes)), tuple(layers),
                        _activation_text(loss_obj.name, loss_obj.params),
                        int(n_params), dtype, dtext, dataset.m, tuple(notes))
