"""YAML -> validated, frozen dataclasses; every problem reported with file, line and config path."""

from __future__ import annotations

import math
import re
import reprlib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from bpcli import data as data_mod
from bpcli.activations import get_activation
from bpcli.errors import BpcliError, ConfigError, did_you_mean, is_finite_number, one_of
from bpcli.losses import get_loss
from bpcli.model import BIAS_MODES, INIT_SCHEMES, LETTERS, SYMBOLS, Layer, Network, init_weights

FORMAT_VERSION = 1
OPTIMIZERS = ("gd", "sgd", "momentum", "adam")
DTYPES = ("float64", "float32")
MAX_PARAMS = 50_000_000  # 400 MB of float64 weights: far beyond "small", refused before allocating
MAX_LAYER = 1_000_000
MAX_DATA_VALUES = data_mod.MAX_DATA_VALUES  # samples x (features + outputs): 400 MB as float64
MAX_PASS_BYTES = 4 * 2**30  # z, a and dz of every layer for one pass over all samples
MAX_CLASSES = 100  # spirals and blobs

TOP_KEYS = ("version", "name", "description", "inputs", "layers", "bias", "loss", "init", "data", "train")
LAYER_KEYS = ("size", "activation", "bias", "symbol", "letter", "weights", "biases")
INIT_KEYS = ("scheme", "seed", "low", "high", "std", "bias", "values")
DATA_KEYS = ("x", "y", "csv", "features", "target", "max_rows", "generator", "samples", "noise", "seed",
             "classes", "validation", "standardize", "task")
TRAIN_KEYS = ("optimizer", "lr", "epochs", "batch_size", "momentum", "beta1", "beta2", "epsilon", "seed",
              "weight_decay", "early_stopping", "dtype")


@dataclass(frozen=True)
class LayerConfig:
    size: int
    activation: str
    activation_params: dict
    bias: str
    symbol: str
    letter: str
    weights: list | None = None  # explicit (n_out, n_in) matrix
    biases: list | float | None = None


@dataclass(frozen=True)
class InitConfig:
    scheme: str = "xavier_uniform"
    seed: int = 0
    low: float = -0.5
    high: float = 0.5
    std: float = 0.1
    bias: float = 0.0
    values: dict = field(default_factory=dict)


@dataclass(frozen=True)
class DataConfig:
    source: str  # "inline" | "csv" | "generator"
    x: list | None = None
    y: list | None = None
    csv: str | None = None  # absolute path
    features: list | None = None
    target: list | None = None
    max_rows: int | None = None
    generator: str | None = None
    samples: int = 200
    noise: float = 0.1
    seed: int = 0
    classes: int | None = None
    validation: float = 0.0
    standardize: bool = False
    task: str = "auto"


@dataclass(frozen=True)
class TrainConfig:
    optimizer: str = "gd"
    lr: float = 0.5
    epochs: int = 1000
    batch_size: int | None = None  # None = full batch
    momentum: float = 0.9
    beta1: float = 0.9
    beta2: float = 0.999
    epsilon: float = 1e-8
    seed: int = 0
    weight_decay: float = 0.0
    patience: int | None = None  # early stopping on validation loss
    min_delta: float = 0.0
    dtype: str = "float64"


@dataclass(frozen=True)
class NetConfig:
    """A whole validated config: the network, loss, initial weights, data and training settings."""

    name: str
    path: str  # the file it came from ("<built-in seed>" for the default)
    inputs: tuple[str, ...]
    layers: tuple[LayerConfig, ...]
    loss: str
    loss_params: dict
    init: InitConfig
    data: DataConfig
    train: TrainConfig
    description: str = ""

    def to_dict(self) -> dict:
        """The resolved config as plain data, loadable again by load_config."""
        layers = []
        for lc in self.layers:
            d: dict[str, Any] = {"size": lc.size, "letter": lc.letter, "symbol": lc.symbol, "bias": lc.bias}
            d["activation"] = {"name": lc.activation, **lc.activation_params} if lc.activation_params else lc.activation
            if lc.weights is not None:
                d["weights"] = lc.weights
            if lc.biases is not None:
                d["biases"] = lc.biases
            layers.append(d)
        data = {k: v for k, v in asdict(self.data).items() if v is not None and k != "source"}
        train = asdict(self.train)
        patience, min_delta = train.pop("patience"), train.pop("min_delta")
        if patience is not None:
            train["early_stopping"] = {"patience": patience, "min_delta": min_delta}
        init = asdict(self.init)
        if not init["values"]:
            init.pop("values")
        return {
            "version": FORMAT_VERSION, "name": self.name, "description": self.description,
            "inputs": list(self.inputs), "layers": layers,
            "loss": {"name": self.loss, **self.loss_params}, "init": init, "data": data, "train": train,
        }


# --- reading YAML with locations -------------------------------------------------


class _Locations:
    """Line numbers of every config path, from PyYAML's node tree."""

    def __init__(self, node: yaml.Node | None):
        self.lines: dict[tuple, int] = {}
        self.duplicates: list[tuple[tuple, int]] = []
        self._budget = 200_000
        self._seen: set[int] = set()  # an alias repeats a node: its inside keeps the alias's line
        if node is not None:
            self._walk(node, (), 0)

    def _walk(self, node: yaml.Node, path: tuple, depth: int) -> None:
        self._budget -= 1
        if self._budget < 0 or depth > 60:
            return
        self.lines.setdefault(path, node.start_mark.line + 1)
        if isinstance(node, yaml.CollectionNode):
            if id(node) in self._seen:
                return
            self._seen.add(id(node))
        if isinstance(node, yaml.MappingNode):
            seen = set()
            for k, v in node.value:
                key = k.value if isinstance(k, yaml.ScalarNode) else str(k)
                if key in seen:
                    self.duplicates.append((path + (key,), k.start_mark.line + 1))
                seen.add(key)
                self.lines.setdefault(path + (key,), k.start_mark.line + 1)
                self._walk(v, path + (key,), depth + 1)
        elif isinstance(node, yaml.SequenceNode):
            for i, v in enumerate(node.value):
                self._walk(v, path + (i,), depth + 1)

    def line(self, path: tuple) -> int | None:
        while path:
            if path in self.lines:
                return self.lines[path]
            path = path[:-1]
        return self.lines.get(())


def format_path(path: tuple) -> str:
    out = ""
    for p in path:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out or "(top level)"


def read_yaml(text: str, source: str) -> tuple[Any, _Locations]:
    """Parse YAML safely; ConfigError with the line on a syntax error or a Python-object tag."""
    node = None
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        doc = yaml.safe_load(text)
    except yaml.constructor.ConstructorError as err:
        line = f":{err.problem_mark.line + 1}" if err.problem_mark else ""
        problem = err.problem or ""
        if "constructor for the tag" in problem:
            tag = problem.split("'")[1] if "'" in problem else "?"
            tag = tag.replace("tag:yaml.org,2002:", "!!")
            raise ConfigError([f"{source}{line}: refused YAML tag '{tag}': bpcli reads plain YAML only "
                               "and never constructs Python objects"]) from None
        if "unhashable key" in problem:
            problem = "a key is a list or a mapping; keys must be plain names"
        raise ConfigError([f"{source}{line}: invalid YAML: {problem}"]) from None
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        raise ConfigError([f"{source}{line}: invalid YAML: {problem}"]) from None
    except RecursionError:
        raise ConfigError([f"{source}: YAML is nested too deeply"]) from None
    except ValueError:  # int() refuses integers of more than 4300 digits
        raise ConfigError([f"{source}{_long_scalar_line(node)}: a number is too long (over 4300 digits)"]) from None
    return doc, _Locations(node)


def _long_scalar_line(node: yaml.Node | None) -> str:
    """':N' for the first scalar longer than 4000 characters, else ''."""
    stack, budget = [node], 200_000
    while stack and budget > 0:
        n = stack.pop()
        budget -= 1
        if isinstance(n, yaml.ScalarNode) and len(n.value) > 4000:
            return f":{n.start_mark.line + 1}"
        if isinstance(n, yaml.SequenceNode):
            stack.extend(reversed(n.value))
        elif isinstance(n, yaml.MappingNode):
            stack.extend(x for kv in reversed(n.value) for x in reversed(kv))
    return ""


# --- validation --------------------------------------------------------------------


def _by_line(problems: list[str]) -> list[str]:
    """Problems in file order (stable), so they read top to bottom like the file."""
    def key(p: str) -> int:
        m = re.match(r"^.*?:(\d+): ", p)
        return int(m.group(1)) if m else 0
    return sorted(problems, key=key)


class _Checker:
    def __init__(self, source: str, locs: _Locations):
        self.source = source
        self.locs = locs
        self.problems: list[str] = []

    def problem(self, path: tuple, msg: str) -> None:
        line = self.locs.line(path)
        where = f"{self.source}:{line}" if line else self.source
        self.problems.append(f"{where}: {format_path(path)}: {msg}")

    def mapping(self, value: Any, path: tuple, allowed: tuple[str, ...]) -> dict:
        if value is None:
            return {}
        if not isinstance(value, dict):
            self.problem(path, f"expected a mapping of keys ({', '.join(allowed)}), found {_kind(value)}")
            return {}
        for key in value:
            if key not in allowed:
                self.problem(path + (key,), f"unknown key '{key}'{did_you_mean(str(key), allowed)}; "
                             f"valid keys here: {', '.join(allowed)}")
        return value

    def integer(self, d: dict, key: str, path: tuple, default, lo: int | None = None, hi: int | None = None,
                allow_none: bool = False):
        v = d.get(key, default)
        if v is None and allow_none:
            return None
        if isinstance(v, bool) or not isinstance(v, int):
            if isinstance(v, float) and v.is_integer() and math.isfinite(v):
                v = int(v)
            else:
                self.problem(path + (key,), f"expected a whole number, found {_kind(v)} {_short(v)}")
                return default
        if lo is not None and v < lo:
            self.problem(path + (key,), f"must be at least {lo}, found {v}")
            return default
        if hi is not None and v > hi:
            self.problem(path + (key,), f"must be at most {hi}, found {v}")
            return default
        return v

    def number(self, d: dict, key: str, path: tuple, default, lo: float | None = None, hi: float | None = None,
               lo_open: bool = False, hi_open: bool = False):
        v = d.get(key, default)
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            self.problem(path + (key,), f"expected a number, found {_kind(v)} {_short(v)}")
            return default
        if not is_finite_number(v):
            self.problem(path + (key,), f"expected a finite number, found {_short(v)}")
            return default
        v = float(v)
        if lo is not None and (v < lo or (lo_open and v == lo)):
            self.problem(path + (key,), f"must be {'>' if lo_open else '>='} {lo:g}, found {v:g}")
            return default
        if hi is not None and (v > hi or (hi_open and v == hi)):
            self.problem(path + (key,), f"must be {'<' if hi_open else '<='} {hi:g}, found {v:g}")
            return default
        return v

    def choice(self, d: dict, key: str, path: tuple, default: str, choices: tuple[str, ...]) -> str:
        v = d.get(key, default)
        if v is True and "on" in choices:  # YAML 1.1 reads a bare `on` as true
            v = "on"
        if v is False and "off" in choices:
            v = "off"
        if not isinstance(v, str) or v.lower() not in choices:
            self.problem(path + (key,), f"unknown value {_short(v)}{did_you_mean(str(v), choices)}; "
                         f"expected {one_of(choices)}")
            return default
        return v.lower()

    def string(self, d: dict, key: str, path: tuple, default: str | None) -> str | None:
        v = d.get(key, default)
        if v is not None and not isinstance(v, str):
            self.problem(path + (key,), f"expected text, found {_kind(v)} {_short(v)}")
            return default
        return v


def human_bytes(n: float) -> str:
    """1536 -> '1.5 KiB'; absurd sizes stay short ('8.88e+84 EiB')."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if n < 1024:
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:,.1f} {unit}"
        n /= 1024
    return f"{n:,.1f} EiB" if n < 1e6 else f"{n:.3g} EiB"


def _count(n: int) -> str:
    return f"{n:,}" if n < 10**15 else f"{float(n):.3g}"


def _kind(v: Any) -> str:
    return {dict: "a mapping", list: "a list", str: "text", bool: "true/false", int: "a number",
            float: "a number", type(None): "nothing"}.get(type(v), type(v).__name__)


_REPR = reprlib.Repr()
_REPR.maxlevel, _REPR.maxlist, _REPR.maxdict, _REPR.maxstring, _REPR.maxother = 2, 4, 3, 40, 40
_REPR.maxlong = 40


def _short(v: Any) -> str:
    """A repr of at most 40 characters that never walks a whole (possibly alias-exploded) structure."""
    s = _REPR.repr(v)
    return s if len(s) <= 40 else s[:37] + "..."


def _matrix(ck: _Checker, v: Any, path: tuple) -> np.ndarray | None:
    """A list of equal-length lists of finite numbers as a 2-D float64 array."""
    if not isinstance(v, list) or not v:
        ck.problem(path, f"expected a non-empty list of rows, found {_kind(v)}")
        return None
    rows = [r if isinstance(r, list) else [r] for r in v]
    width = len(rows[0])
    if width == 0:
        ck.problem(path + (0,), "the row is empty; each row needs at least one number")
        return None
    for i, r in enumerate(rows):
        if len(r) != width:
            ck.problem(path + (i,), f"row has {len(r)} values, row 0 has {width}")
            return None
        for j, c in enumerate(r):
            if isinstance(c, bool) or not isinstance(c, (int, float)):
                ck.problem(path + (i,), f"value {j} is {_kind(c)} {_short(c)}, expected a number")
                return None
            if not is_finite_number(c):
                ck.problem(path + (i,), f"value {j} is {_short(c)} (NaN, infinite or beyond float range)")
                return None
    return np.asarray(rows, dtype=np.float64)


def parse(doc: Any, source: str, locs: _Locations, base_dir: Path) -> tuple[NetConfig, data_mod.Dataset]:
    """Validate a parsed YAML document; ConfigError listing every problem found."""
    ck = _Checker(source, locs)
    for path, line in locs.duplicates:
        ck.problems.append(f"{source}:{line}: {format_path(path)}: duplicate key (it is given twice)")
    if doc is None:
        raise ConfigError([f"{source}: the config is empty; start from `bpcli init`"])
    if not isinstance(doc, dict):
        raise ConfigError([f"{source}:1: expected a mapping with keys such as layers, loss, data, found {_kind(doc)}"])
    top = ck.mapping(doc, (), TOP_KEYS)
    version = ck.integer(top, "version", (), FORMAT_VERSION, lo=1)
    if isinstance(version, int) and version > FORMAT_VERSION:
        ck.problem(("version",), f"config format version {version} is newer than this bpcli understands "
                   f"({FORMAT_VERSION}); upgrade bpcli")
    name = ck.string(top, "name", (), Path(source).stem) or "network"
    description = ck.string(top, "description", (), "") or ""
    default_bias = ck.choice(top, "bias", (), "on", BIAS_MODES)

    # layers
    layers_raw = top.get("layers")
    layer_cfgs: list[LayerConfig] = []
    if layers_raw is None:
        ck.problem(("layers",), "missing: give a list of layers, e.g. [{size: 2, activation: sigmoid}, ...]")
    elif not isinstance(layers_raw, list) or not layers_raw:
        found = "an empty list" if layers_raw == [] else _kind(layers_raw)
        ck.problem(("layers",), f"expected a non-empty list of layers, found {found}")
    elif len(layers_raw) > len(SYMBOLS):
        ck.problem(("layers",), f"at most {len(SYMBOLS)} layers are supported, found {len(layers_raw)}")
    else:
        for i, raw in enumerate(layers_raw):
            p = ("layers", i)
            if isinstance(raw, int) and not isinstance(raw, bool):
                raw = {"size": raw}
            lay = ck.mapping(raw, p, LAYER_KEYS)
            if not isinstance(raw, dict):
                continue
            # no upper bound here: the size check below refuses absurd layers with the memory they need
            size = ck.integer(lay, "size", p, None, lo=1) if "size" in lay else None
            if "size" not in lay:
                ck.problem(p, "missing key 'size' (the number of nodes)")
            act = lay.get("activation", "sigmoid")
            act_params: dict = {}
            if isinstance(act, dict):
                act_params = {k: v for k, v in act.items() if k != "name"}
                act = act.get("name")
            act_name = None
            if not isinstance(act, str):
                ck.problem(p + ("activation",), f"expected an activation name, found {_kind(act)}")
            else:
                try:
                    act_name = get_activation(act, act_params, where=format_path(p + ("activation",))).name
                except ConfigError as err:
                    for msg in err.problems:
                        line = locs.line(p + ("activation",))
                        ck.problems.append(f"{source}:{line}: {msg}" if line else f"{source}: {msg}")
            bias = ck.choice(lay, "bias", p, default_bias, BIAS_MODES)
            symbol = ck.string(lay, "symbol", p, SYMBOLS[i]) or SYMBOLS[i]
            if not symbol.isalpha() or not symbol.islower() or symbol in ("b", "o", "x", "y", "z"):
                ck.problem(p + ("symbol",), f"weight symbol must be lower-case letters other than b, o, x, y, z; "
                           f"found '{symbol}'")
            letter = ck.string(lay, "letter", p, LETTERS[i]) or LETTERS[i]
            if len(letter) != 1 or not letter.isalpha() or not letter.isupper():
                ck.problem(p + ("letter",), f"layer letter must be one upper-case letter, found '{letter}'")
            layer_cfgs.append(LayerConfig(size or 1, act_name or "sigmoid", act_params, bias, symbol,
                                          letter, lay.get("weights"), lay.get("biases")))
        symbols = [lc.symbol for lc in layer_cfgs]
        letters = [lc.letter for lc in layer_cfgs]
        for i, lc in enumerate(layer_cfgs):
            if symbols.index(lc.symbol) != i:
                ck.problem(("layers", i, "symbol"), f"symbol '{lc.symbol}' is already used by layer {symbols.index(lc.symbol)}")
            if letters.index(lc.letter) != i:
                ck.problem(("layers", i, "letter"), f"letter '{lc.letter}' is already used by layer {letters.index(lc.letter)}")
            if lc.activation == "softmax" and i != len(layer_cfgs) - 1:
                ck.problem(("layers", i, "activation"), "softmax is supported on the output layer only")
        if layer_cfgs and layer_cfgs[-1].activation == "softmax" and layer_cfgs[-1].size < 2:
            ck.problem(("layers", len(layer_cfgs) - 1, "size"), "a softmax layer needs at least 2 nodes "
                       "(with 1 node it always outputs 1); use sigmoid for a single output")

    # loss
    loss_raw = top.get("loss", "squared_error")
    loss_params: dict = {}
    if isinstance(loss_raw, dict):
        loss_params = {k: v for k, v in loss_raw.items() if k != "name"}
        loss_raw = loss_raw.get("name", "squared_error")
    loss_name = "squared_error"
    if not isinstance(loss_raw, str):
        ck.problem(("loss",), f"expected a loss name, found {_kind(loss_raw)}")
    else:
        try:
            loss_name = get_loss(loss_raw, loss_params).name
        except ConfigError as err:
            line = locs.line(("loss",))
            for msg in err.problems:
                ck.problems.append(f"{source}:{line}: {msg}" if line else f"{source}: {msg}")
    if layer_cfgs:
        out_act = layer_cfgs[-1].activation
        if loss_name == "binary_cross_entropy" and out_act not in ("sigmoid", "softmax"):
            ck.problem(("loss",), f"binary_cross_entropy needs outputs in (0, 1), but the output layer is "
                       f"{out_act}; use a sigmoid output layer")
        if loss_name == "cross_entropy" and out_act not in ("softmax", "sigmoid"):
            ck.problem(("loss",), f"cross_entropy needs probabilities, but the output layer is {out_act}; "
                       "use a softmax output layer")

    # init
    ip = ("init",)
    ini = ck.mapping(top.get("init"), ip, INIT_KEYS)
    values = ini.get("values") or {}
    if not isinstance(values, dict):
        ck.problem(ip + ("values",), f"expected a mapping of parameter name to value, found {_kind(values)}")
        values = {}
    for k, v in values.items():
        if not is_finite_number(v):
            ck.problem(ip + ("values", k), f"expected a finite number, found {_short(v)}")
    init = InitConfig(
        scheme=ck.choice(ini, "scheme", ip, "xavier_uniform", INIT_SCHEMES + ("glorot_uniform", "glorot_normal")),
        seed=ck.integer(ini, "seed", ip, 0, lo=0),
        low=ck.number(ini, "low", ip, -0.5, lo=-1e6, hi=1e6), high=ck.number(ini, "high", ip, 0.5, lo=-1e6, hi=1e6),
        std=ck.number(ini, "std", ip, 0.1, lo=0, hi=1e6), bias=ck.number(ini, "bias", ip, 0.0, lo=-1e6, hi=1e6),
        values={str(k): float(v) for k, v in values.items() if is_finite_number(v)},
    )
    init = InitConfig(**{**asdict(init), "scheme": init.scheme.replace("glorot", "xavier")})
    if init.low >= init.high and init.scheme == "uniform":
        ck.problem(ip + ("low",), f"low ({init.low:g}) must be below high ({init.high:g})")

    # train
    tp = ("train",)
    tr = ck.mapping(top.get("train"), tp, TRAIN_KEYS)
    es = tr.get("early_stopping")
    patience, min_delta = None, 0.0
    if isinstance(es, int) and not isinstance(es, bool):
        es = {"patience": es}
    if isinstance(es, dict):
        esd = ck.mapping(es, tp + ("early_stopping",), ("patience", "min_delta"))
        patience = ck.integer(esd, "patience", tp + ("early_stopping",), 10, lo=1)
        min_delta = ck.number(esd, "min_delta", tp + ("early_stopping",), 0.0, lo=0)
    elif es not in (None, False):
        ck.problem(tp + ("early_stopping",), f"expected {{patience: N}} or a number, found {_kind(es)}")
    bs = tr.get("batch_size")
    if isinstance(bs, str) and bs.lower() in ("full", "all"):
        bs = None
    train = TrainConfig(
        optimizer=ck.choice(tr, "optimizer", tp, "gd", OPTIMIZERS),
        lr=ck.number(tr, "lr", tp, 0.5, lo=0, lo_open=True, hi=1e6),
        epochs=ck.integer(tr, "epochs", tp, 1000, lo=1, hi=10_000_000),
        batch_size=ck.integer({"batch_size": bs}, "batch_size", tp, None, lo=1, allow_none=True),
        momentum=ck.number(tr, "momentum", tp, 0.9, lo=0, hi=1, hi_open=True),
        beta1=ck.number(tr, "beta1", tp, 0.9, lo=0, hi=1, hi_open=True),
        beta2=ck.number(tr, "beta2", tp, 0.999, lo=0, hi=1, hi_open=True),
        epsilon=ck.number(tr, "epsilon", tp, 1e-8, lo=0, lo_open=True),
        seed=ck.integer(tr, "seed", tp, 0, lo=0),
        weight_decay=ck.number(tr, "weight_decay", tp, 0.0, lo=0),
        patience=patience, min_delta=min_delta,
        dtype=ck.choice(tr, "dtype", tp, "float64", DTYPES),
    )

    # inputs (names or a count)
    inputs_raw = top.get("inputs")
    inputs: list[str] | None = None
    if isinstance(inputs_raw, int) and not isinstance(inputs_raw, bool):
        if 1 <= inputs_raw <= MAX_LAYER:
            inputs = [f"x{k + 1}" for k in range(inputs_raw)]
        else:
            ck.problem(("inputs",), f"must be between 1 and {MAX_LAYER}, found {inputs_raw}")
    elif isinstance(inputs_raw, list):
        if not inputs_raw or not all(isinstance(s, (str, int)) and not isinstance(s, bool) for s in inputs_raw):
            ck.problem(("inputs",), "expected a non-empty list of input names")
        elif len(set(map(str, inputs_raw))) != len(inputs_raw):
            ck.problem(("inputs",), "input names must be different from each other")
        else:
            inputs = [str(s) for s in inputs_raw]
    elif inputs_raw is not None:
        ck.problem(("inputs",), f"expected a number of inputs or a list of names, found {_kind(inputs_raw)}")

    # data
    dp = ("data",)
    dd = ck.mapping(top.get("data"), dp, DATA_KEYS)
    n_out = layer_cfgs[-1].size if layer_cfgs else None
    dataset, dcfg = _parse_data(ck, dd, dp, base_dir, inputs, n_out, train.seed)

    if dataset is not None and inputs is None:
        inputs = list(dataset.feature_names)
    if inputs is None and not ck.problems:
        ck.problem(("inputs",), "missing: give the number of inputs or their names (or a data section)")

    if dataset is not None and inputs is not None and dataset.x.shape[1] != len(inputs):
        ck.problem(("inputs",), f"the network has {len(inputs)} inputs but the data has "
                   f"{dataset.x.shape[1]} feature columns")
    if dataset is not None and np.all(np.isfinite(dataset.y)):
        # the losses' own conditions on the targets; the y' - y shortcut of softmax + cross-entropy needs rows
        # that are probability distributions, else its gradient would be silently wrong
        if loss_name in ("cross_entropy", "binary_cross_entropy") and (np.any(dataset.y < 0) or np.any(dataset.y > 1)):
            ck.problem(dp + ("y",) if "y" in dd else dp, f"{loss_name} needs targets between 0 and 1 "
                       f"(found {float(dataset.y.min()):g} to {float(dataset.y.max()):g})")
        elif (loss_name == "cross_entropy" and layer_cfgs and layer_cfgs[-1].activation == "softmax"
              and not np.allclose(dataset.y.sum(axis=1), 1.0)):
            bad = int(np.argmax(np.abs(dataset.y.sum(axis=1) - 1.0)))
            ck.problem(dp + ("y",) if "y" in dd else dp, f"softmax with cross_entropy needs each target row to add "
                       f"up to 1 (one-hot or probabilities); row {bad} adds up to {float(dataset.y[bad].sum()):g}")
    if dataset is not None and n_out is not None and dataset.y.shape[1] != n_out:
        ck.problem(("layers", len(layer_cfgs) - 1, "size"), f"the output layer has {n_out} nodes but the "
                   f"targets have {dataset.y.shape[1]} columns")
    if dataset is not None and train.batch_size is not None and train.batch_size > dataset.m:
        ck.problem(tp + ("batch_size",), f"batch size {train.batch_size} is larger than the "
                   f"{dataset.m} samples; use at most {dataset.m} or leave it out for full batch")
    if dataset is not None and dcfg.validation > 0:
        n_val = int(round(dcfg.validation * dataset.m))  # the same arithmetic as data.split
        if n_val < 1 or n_val >= dataset.m:
            ck.problem(dp + ("validation",), f"{dcfg.validation:g} of {dataset.m} samples leaves "
                       f"{'no' if n_val < 1 else 'no training'} samples; use a fraction that keeps both parts "
                       "non-empty")

    # sizes: refuse absurd networks before allocating anything
    if layer_cfgs:
        n_params, fan_in = 0, len(inputs) if inputs else 1
        for lc in layer_cfgs:
            n_params += lc.size * (fan_in + 1)
            fan_in = lc.size
        too_wide = [i for i, lc in enumerate(layer_cfgs) if lc.size > MAX_LAYER]
        if n_params > MAX_PARAMS or too_wide:
            at = ("layers", too_wide[0], "size") if too_wide else ("layers",)
            ck.problem(at, f"this network has {_count(n_params)} parameters and would need "
                       f"{human_bytes(n_params * 8)} for its weights alone; bpcli is for small networks "
                       f"(at most {MAX_PARAMS:,} parameters and {MAX_LAYER:,} nodes per layer)")
        elif dataset is not None:
            need = dataset.m * sum(lc.size for lc in layer_cfgs) * 3 * 8
            if need > MAX_PASS_BYTES:
                ck.problem(("layers",), f"one pass over the {dataset.m:,} samples would need {human_bytes(need)} "
                           f"for the layer values (z, a and dz of every node for every sample); "
                           f"use fewer samples (data.max_rows) or smaller layers (at most "
                           f"{human_bytes(MAX_PASS_BYTES)})")

    if ck.problems:
        raise ConfigError(_by_line(ck.problems))
    cfg = NetConfig(name, source, tuple(inputs), tuple(layer_cfgs), loss_name, loss_params, init,
                    dcfg, train, description)
    # explicit weights and named values are checked against the built network
    build(cfg, _checker=ck)
    if ck.problems:
        raise ConfigError(_by_line(ck.problems))
    return cfg, dataset


def _parse_data(ck: _Checker, dd: dict, dp: tuple, base_dir: Path, inputs: list[str] | None, n_out: int | None,
                seed: int) -> tuple[data_mod.Dataset | None, DataConfig]:
    common = dict(
        validation=ck.number(dd, "validation", dp, 0.0, lo=0, hi=1, hi_open=True),
        standardize=bool(dd.get("standardize", False)),
        task=ck.choice(dd, "task", dp, "auto", ("auto", "classification", "regression")),
    )
    if "standardize" in dd and not isinstance(dd["standardize"], bool):
        ck.problem(dp + ("standardize",), f"expected true or false, found {_short(dd['standardize'])}")
    sources = [k for k in ("x", "csv", "generator") if k in dd]
    if not dd:
        ck.problem(dp, "missing: give inline x and y, a csv file, or a generator (e.g. generator: xor)")
        return None, DataConfig("inline", **common)
    if len(sources) != 1:
        ck.problem(dp, "give exactly one data source: x and y, csv, or generator"
                   + (f" (found {', '.join(sources)})" if sources else ""))
        return None, DataConfig("inline", **common)
    src = sources[0]
    dataset = None
    try:
        if src == "x":
            x = _matrix(ck, dd.get("x"), dp + ("x",))
            if "y" not in dd:
                ck.problem(dp, "inline data needs 'y' beside 'x'")
                return None, DataConfig("inline", **common)
            y = _matrix(ck, dd.get("y"), dp + ("y",))
            if x is None or y is None:
                return None, DataConfig("inline", **common)
            if x.shape[0] != y.shape[0]:
                ck.problem(dp + ("y",), f"x has {x.shape[0]} samples but y has {y.shape[0]}")
                return None, DataConfig("inline", **common)
            names = tuple(inputs) if inputs and len(inputs) == x.shape[1] else tuple(f"x{k + 1}" for k in range(x.shape[1]))
            dataset = data_mod.Dataset(x, y, names, tuple(f"y{k + 1}" for k in range(y.shape[1])) if y.shape[1] > 1 else ("y",),
                                       None, data_mod.infer_task(y))
            dcfg = DataConfig("inline", x=x.tolist(), y=y.tolist(), **common)
        elif src == "csv":
            csv_path = dd.get("csv")
            if not isinstance(csv_path, str) or not csv_path:
                ck.problem(dp + ("csv",), f"expected a file path, found {_kind(csv_path)}")
                return None, DataConfig("csv", **common)
            full = (base_dir / csv_path).resolve()
            target = dd.get("target")
            if isinstance(target, str):
                target = [target]
            if not isinstance(target, list) or not target or not all(isinstance(t, str) for t in target):
                ck.problem(dp + ("target",), "expected the target column name (or a list of names)")
                return None, DataConfig("csv", **common)
            features = dd.get("features", inputs)
            if features is not None and (not isinstance(features, list) or not all(isinstance(f, str) for f in features)):
                ck.problem(dp + ("features",), "expected a list of column names")
                return None, DataConfig("csv", **common)
            max_rows = ck.integer(dd, "max_rows", dp, None, lo=1, allow_none=True)
            try:
                dataset = data_mod.read_csv(full, features, target, n_out, format_path(dp + ("csv",)), max_rows)
            except BpcliError as err:
                line = ck.locs.line(dp + ("csv",))
                ck.problems.append(f"{ck.source}:{line}: {err}")
                return None, DataConfig("csv", **common)
            dcfg = DataConfig("csv", csv=str(full), features=list(dataset.feature_names), target=target,
                              max_rows=max_rows, **common)
        else:
            gen = ck.choice(dd, "generator", dp, "xor", data_mod.GENERATORS)
            samples = ck.integer(dd, "samples", dp, 4 if gen in ("xor", "and", "or") else 200, lo=1, hi=10_000_000)
            noise = ck.number(dd, "noise", dp, 0.0 if gen in ("xor", "and", "or") else 0.1, lo=0)
            gseed = ck.integer(dd, "seed", dp, seed, lo=0)
            classes = ck.integer(dd, "classes", dp, None, lo=2, hi=MAX_CLASSES, allow_none=True)
            if classes is None:
                classes = n_out if (n_out or 0) > 1 else 2
            if gen in ("spirals", "blobs") and classes > MAX_CLASSES:
                ck.problem(dp + ("generator",), f"{gen} makes at most {MAX_CLASSES} classes, but the output "
                           f"layer has {classes} nodes")
                return None, DataConfig("generator", **common)
            width = 2 + (classes if gen in ("spirals", "blobs") else 1)
            if samples * width > MAX_DATA_VALUES:
                ck.problem(dp + ("samples",), f"{samples:,} samples would need {human_bytes(samples * width * 8)}; "
                           f"use at most {MAX_DATA_VALUES // width:,}")
                return None, DataConfig("generator", **common)
            dataset = data_mod.generate(gen, samples, noise, gseed, classes)
            if n_out == 1 and dataset.y.shape[1] == 2:  # two classes, one sigmoid output: 0/1 targets
                dataset = data_mod.Dataset(dataset.x, dataset.y[:, 1:], dataset.feature_names, ("y",),
                                           dataset.class_names, dataset.task)
            dcfg = DataConfig("generator", generator=gen, samples=samples, noise=noise, seed=gseed,
                              classes=classes if gen in ("spirals", "blobs") else None, **common)
    except BpcliError as err:
        ck.problem(dp, str(err))
        return None, DataConfig(src, **common)
    if common["task"] != "auto":
        dataset = data_mod.Dataset(dataset.x, dataset.y, dataset.feature_names, dataset.target_names,
                                   dataset.class_names, common["task"], dataset.note)
    if not np.all(np.isfinite(dataset.x)) or not np.all(np.isfinite(dataset.y)):
        ck.problem(dp, "the data contains NaN or infinite values")
    return dataset, dcfg


def build(cfg: NetConfig, _checker: _Checker | None = None) -> Network:
    """Make the Network a config describes, with its initial weights (scheme, then explicit values)."""
    ck = _checker
    rng = np.random.default_rng(cfg.init.seed)
    layers, Ws, bs = [], [], []
    n_in = len(cfg.inputs)
    for i, lc in enumerate(cfg.layers):
        act = get_activation(lc.activation, lc.activation_params)
        layer = Layer(lc.letter, n_in, lc.size, act, lc.bias, lc.symbol)
        W = init_weights((lc.size, n_in), cfg.init.scheme, rng, cfg.init.low, cfg.init.high, cfg.init.std)
        b = None
        if lc.bias != "off":
            b = np.full(1 if lc.bias == "shared" else lc.size, cfg.init.bias, dtype=np.float64)
        if lc.weights is not None:
            W2 = _matrix(ck, lc.weights, ("layers", i, "weights")) if ck else np.asarray(lc.weights, dtype=float)
            if W2 is not None:
                if W2.shape != W.shape:
                    if ck:
                        ck.problem(("layers", i, "weights"), f"expected a {lc.size} x {n_in} matrix "
                                   f"(one row per node of this layer, one column per input to it), "
                                   f"found {W2.shape[0]} x {W2.shape[1]}")
                else:
                    W = W2
        if lc.biases is not None:
            bv = np.atleast_1d(np.asarray(lc.biases, dtype=object))
            if b is None:
                if ck:
                    ck.problem(("layers", i, "biases"), "this layer has bias: off; remove 'biases' or turn bias on")
            elif bv.ndim != 1 or bv.shape[0] != b.shape[0] or not all(is_finite_number(v) for v in bv):
                if ck:
                    ck.problem(("layers", i, "biases"), f"expected {b.shape[0]} finite number(s), found {_short(lc.biases)}")
            else:
                b = bv.astype(np.float64)
        layers.append(layer)
        Ws.append(W)
        bs.append(b)
        n_in = lc.size
    loss = get_loss(cfg.loss, cfg.loss_params).for_outputs(layers[-1].n_out)
    net = Network(tuple(cfg.inputs), tuple(layers), Ws, bs, loss)
    for pname, value in cfg.init.values.items():
        from bpcli.model import parse_name
        ref = parse_name(net, pname)
        if ref is None:
            if ck:
                names = net.param_names()
                ck.problem(("init", "values", pname), f"unknown parameter '{pname}'{did_you_mean(pname, names)}; "
                           f"valid names: {', '.join(names[:30])}{' ...' if len(names) > 30 else ''}")
            continue
        net.set(ref, value)
    if cfg.train.dtype == "float32":
        net = net.astype(np.float32)
    return net


# --- entry points --------------------------------------------------------------------


def builtin_config_dir() -> Path:
    return Path(__file__).parent / "configs"


def load_config(path: str | Path | None = None) -> tuple[NetConfig, data_mod.Dataset]:
    """Read and validate a config file (the built-in seed network when path is None)."""
    if path is None:
        p = builtin_config_dir() / "seed.yaml"
        source = "<built-in seed.yaml>"
    else:
        p = Path(path)
        source = str(path)
        if not p.exists():
            raise ConfigError([f"{source}: config file not found"])
        if p.is_dir():
            hint = " (or use --run for a run folder)" if (p / "config.yaml").is_file() else ""
            raise ConfigError([f"{source}: is a folder; give a config file{hint}"])
    try:
        raw = p.read_bytes()
    except OSError as err:
        raise ConfigError([f"{source}: cannot read: {err.strerror}"]) from None
    if len(raw) > 50_000_000:
        raise ConfigError([f"{source}: the config is {len(raw) / 1e6:.0f} MB; put large data in a CSV file"])
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        line = raw[: err.start].count(b"\n") + 1
        raise ConfigError([f"{source}:{line}: the file is not UTF-8 text"]) from None
    doc, locs = read_yaml(text, source)
    return parse(doc, source, locs, p.resolve().parent)
