"""YAML -> validated, frozen dataclasses; every problem reported with file, line and config path."""

from __future__ import annotations

from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import numpy as np

from bpcli.data import dataset as data_mod
from bpcli.nn.activations import get_activation
from bpcli.config.checker import Checker, big_count, by_line, human_bytes, kind_of, short_repr
from bpcli.config.data_section import check_stored_size, parse_data
from bpcli.config.values import check_values, parse_schedule, parse_snapshots
from bpcli.errors import ConfigError, is_finite_number
from bpcli.nn.losses import get_loss
from bpcli.nn.model import BIAS_MODES, INIT_SCHEMES, LETTERS, SYMBOLS, letter_problem, symbol_problem
from bpcli.schema import FORMAT_VERSION, InitConfig, LayerConfig, NetConfig, TrainConfig
from bpcli.files import NotReadable, read_capped
from bpcli.yamlsrc import MAX_CONFIG_BYTES, Locations, as_bool, format_path, read_yaml

OPTIMIZERS = ("gd", "sgd", "momentum", "nesterov", "rmsprop", "adagrad", "adam", "adamw")
DTYPES = ("float64", "float32")
MAX_PARAMS = 10_000_000  # 80 MB of float64 weights; every command serves it in at most ~2.2 GB (docs/safety.md)
MAX_LAYER = 1_000_000
MAX_PASS_BYTES = 4 * 2**30  # z, a and dz of every layer for one pass over all samples

TOP_KEYS = ("version", "name", "description", "inputs", "layers", "bias", "loss", "init", "data", "train")
LAYER_KEYS = ("size", "activation", "bias", "symbol", "letter", "weights", "biases")
INIT_KEYS = ("scheme", "seed", "low", "high", "std", "bias", "values")
DATA_KEYS = ("x", "y", "csv", "features", "target", "max_rows", "generator", "samples", "noise", "seed",
             "classes", "validation", "split_seed", "standardize", "task", "test", "test_seed")
# the settings the command line can override: one range each, for the config file and the options alike
RANGES = {"epochs": {"lo": 1, "hi": 10_000_000}, "lr": {"lo": 0, "lo_open": True, "hi": 1e6},
          "batch_size": {"lo": 1}, "seed": {"lo": 0}}
OPTIONS = {"epochs": "--epochs", "lr": "--lr", "batch_size": "--batch-size", "seed": "--seed"}
TRAIN_KEYS = ("optimizer", "lr", "epochs", "batch_size", "momentum", "beta1", "beta2", "epsilon", "alpha", "seed",
              "weight_decay", "l1", "early_stopping", "dtype", "snapshots", "schedule")



def parse(doc: Any, source: str, locs: Locations, base_dir: Path) -> tuple[NetConfig, data_mod.Dataset]:
    """Validate a parsed YAML document; ConfigError listing every problem found."""
    ck = Checker(source, locs)
    for path, first, line in locs.duplicates:
        ck.problems.append(f"{source}:{line}: {format_path(path)}: duplicate key: given on line {first} and again "
                           f"on line {line}; keep one")
    if doc is None:
        raise ConfigError([f"{source}: the config is empty; start from `bpcli init`"])
    if not isinstance(doc, dict) and source.lower().endswith(".csv"):
        raise ConfigError([f"{source} is a CSV data file, not a YAML config: name it in a config's data.csv "
                           f"(`bpcli init my.yaml` writes one), or train on it with `bpcli train {source} --target "
                           "COLUMN`"])
    if not isinstance(doc, dict):
        raise ConfigError([f"{source}:1: expected a mapping with keys such as layers, loss, data, found {kind_of(doc)}"])
    top = ck.mapping(doc, (), TOP_KEYS)
    version = ck.integer(top, "version", (), FORMAT_VERSION, lo=1)
    if isinstance(version, int) and version > FORMAT_VERSION:
        ck.problem(("version",), f"config format version {version} is newer than this bpcli understands "
                   f"({FORMAT_VERSION}); upgrade bpcli")
    name = ck.string(top, "name", (), Path(source).stem) or "network"
    description = ck.string(top, "description", (), "") or ""
    default_bias = ck.choice(top, "bias", (), "on", BIAS_MODES)
    layer_cfgs = _parse_layers(ck, top.get("layers"), default_bias)
    loss_name, loss_params = _parse_loss(ck, top.get("loss", "squared_error"), layer_cfgs)
    init = _parse_init(ck, top.get("init"))
    train = _parse_train(ck, top.get("train"))
    inputs = _parse_inputs(ck, top.get("inputs"))
    dp = ("data",)
    dd = ck.mapping(top.get("data"), dp, DATA_KEYS)
    n_out = layer_cfgs[-1].size if layer_cfgs else None
    dataset, dcfg = parse_data(ck, dd, dp, base_dir, inputs, n_out)
    if dataset is not None and inputs is None:
        inputs = list(dataset.feature_names)
    if inputs is None and not ck.problems:
        ck.problem(("inputs",), "missing: give the number of inputs or their names (or a data section)")
    if dataset is not None:
        _check_data_fits(ck, dataset, dcfg, dd, inputs, layer_cfgs, loss_name, train)
    train = _schedule_fits(ck, train, top.get("train"), dcfg)
    if layer_cfgs:
        _check_size(ck, layer_cfgs, inputs, dataset)
    if ck.problems:
        raise ConfigError(by_line(ck.problems))
    cfg = NetConfig(name, source, tuple(inputs), tuple(layer_cfgs), loss_name, loss_params, init,
                    dcfg, train, description)
    check_values(ck, cfg)
    if ck.problems:
        raise ConfigError(by_line(ck.problems))
    return cfg, dataset


def _add_located(ck: Checker, path: tuple, err: ConfigError) -> None:
    """A registry's problems (they name their config path already) with the file and line of `path`."""
    line = ck.locs.line(path)
    for msg in err.problems:
        ck.problems.append(f"{ck.source}:{line}: {msg}" if line else f"{ck.source}: {msg}")


def _parse_layers(ck: Checker, layers_raw: Any, default_bias: str) -> list[LayerConfig]:
    """The `layers:` list: size, activation (from the registry), bias mode, symbol and letter of each."""
    layer_cfgs: list[LayerConfig] = []
    if layers_raw is None:
        ck.problem(("layers",), "missing: give a list of layers, e.g. [{size: 2, activation: sigmoid}, ...]")
        return layer_cfgs
    if not isinstance(layers_raw, list) or not layers_raw:
        found = "an empty list" if layers_raw == [] else kind_of(layers_raw)
        ck.problem(("layers",), f"expected a non-empty list of layers, found {found}")
        return layer_cfgs
    if len(layers_raw) > len(SYMBOLS):
        ck.problem(("layers",), f"at most {len(SYMBOLS)} layers are supported, found {len(layers_raw)}")
        return layer_cfgs
    for i, raw in enumerate(layers_raw):
        p = ("layers", i)
        if isinstance(raw, int) and not isinstance(raw, bool):
            raw = {"size": raw}
        lay = ck.mapping(raw, p, LAYER_KEYS)
        if not isinstance(raw, dict):
            continue
        # no upper bound here: the size check refuses absurd layers with the memory they need
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
            ck.problem(p + ("activation",), f"expected an activation name, found {kind_of(act)}")
        else:
            try:
                act_name = get_activation(act, act_params, where=format_path(p + ("activation",))).name
            except ConfigError as err:
                _add_located(ck, p + ("activation",), err)
        bias = ck.choice(lay, "bias", p, default_bias, BIAS_MODES)
        symbol = ck.string(lay, "symbol", p, SYMBOLS[i])
        symbol = SYMBOLS[i] if symbol is None else symbol
        if symbol_problem(symbol):
            ck.problem(p + ("symbol",), symbol_problem(symbol))
        letter = ck.string(lay, "letter", p, LETTERS[i])
        letter = LETTERS[i] if letter is None else letter
        if letter_problem(letter):
            ck.problem(p + ("letter",), letter_problem(letter))
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
    return layer_cfgs


def _parse_loss(ck: Checker, loss_raw: Any, layer_cfgs: list[LayerConfig]) -> tuple[str, dict]:
    """The `loss:` name and options (from the registry), checked against the output layer's activation."""
    loss_params: dict = {}
    if isinstance(loss_raw, dict):
        loss_params = {k: v for k, v in loss_raw.items() if k != "name"}
        loss_raw = loss_raw.get("name", "squared_error")
    loss_name = "squared_error"
    if not isinstance(loss_raw, str):
        ck.problem(("loss",), f"expected a loss name, found {kind_of(loss_raw)}")
    else:
        try:
            loss_name = get_loss(loss_raw, loss_params).name
        except ConfigError as err:
            _add_located(ck, ("loss",), err)
    if layer_cfgs:
        out_act = layer_cfgs[-1].activation
        if loss_name == "binary_cross_entropy" and out_act not in ("sigmoid", "softmax"):
            ck.problem(("loss",), f"binary_cross_entropy needs outputs in (0, 1), but the output layer is "
                       f"{out_act}; use a sigmoid output layer")
        if loss_name == "cross_entropy" and out_act not in ("softmax", "sigmoid"):
            ck.problem(("loss",), f"cross_entropy needs probabilities, but the output layer is {out_act}; "
                       "use a softmax output layer")
        if loss_name == "cross_entropy" and out_act == "sigmoid" and layer_cfgs[-1].size == 1:
            # -y log(y') is 0 whenever y = 0: half of a two-class problem would never be learned
            ck.problem(("loss",), "cross_entropy with one sigmoid output ignores every sample whose target is 0 "
                       "(its -y log(y') is 0 there); use binary_cross_entropy")
    return loss_name, loss_params


def _parse_init(ck: Checker, init_raw: Any) -> InitConfig:
    """The `init:` scheme, its constants and seed, and explicit values by parameter name."""
    ip = ("init",)
    ini = ck.mapping(init_raw, ip, INIT_KEYS)
    values = ini.get("values") or {}
    if not isinstance(values, dict):
        ck.problem(ip + ("values",), f"expected a mapping of parameter name to value, found {kind_of(values)}")
        values = {}
    for k, v in values.items():
        if not is_finite_number(v):
            ck.problem(ip + ("values", k), f"expected a finite number, found {short_repr(v)}")
    init = InitConfig(
        scheme=ck.choice(ini, "scheme", ip, "xavier_uniform", INIT_SCHEMES + ("glorot_uniform", "glorot_normal")),
        seed=ck.integer(ini, "seed", ip, 0, **RANGES["seed"]),
        low=ck.number(ini, "low", ip, -0.5, lo=-1e6, hi=1e6), high=ck.number(ini, "high", ip, 0.5, lo=-1e6, hi=1e6),
        std=ck.number(ini, "std", ip, 0.1, lo=0, hi=1e6), bias=ck.number(ini, "bias", ip, 0.0, lo=-1e6, hi=1e6),
        values={str(k): float(v) for k, v in values.items() if is_finite_number(v)},
    )
    init = InitConfig(**{**asdict(init), "scheme": init.scheme.replace("glorot", "xavier")})
    if init.low >= init.high and init.scheme == "uniform":
        ck.problem(ip + ("low",), f"low ({init.low:g}) must be below high ({init.high:g})")
    return init


def _parse_train(ck: Checker, train_raw: Any) -> TrainConfig:
    """The `train:` settings: optimiser and its constants, epochs, batches, early stopping, dtype, snapshots."""
    tp = ("train",)
    tr = ck.mapping(train_raw, tp, TRAIN_KEYS)
    es = tr.get("early_stopping")
    patience, min_delta, restore_best, watch = None, 0.0, True, {}
    if isinstance(es, int) and not isinstance(es, bool):
        es = {"patience": es}
    if isinstance(es, dict):
        esp = tp + ("early_stopping",)
        esd = ck.mapping(es, esp, ("patience", "min_delta", "restore_best", "monitor", "mode", "start"))
        patience = ck.integer(esd, "patience", esp, 10, lo=1)
        min_delta = ck.number(esd, "min_delta", esp, 0.0, lo=0)
        restore_best = ck.boolean(esd, "restore_best", esp, True)
        stop_monitor = ck.choice(esd, "monitor", esp, "val_loss", ("val_loss", "val_metric"))
        watch = {"stop_monitor": stop_monitor, "stop_start": ck.integer(esd, "start", esp, 0, lo=0),
                 "stop_mode": ck.choice(esd, "mode", esp, "max" if stop_monitor == "val_metric" else "min",
                                        ("min", "max"))}
    elif es is not None and as_bool(es) is not False:
        ck.problem(tp + ("early_stopping",), f"expected {{patience: N}} or a number, found {kind_of(es)}")
    bs = tr.get("batch_size")
    if isinstance(bs, str) and bs.lower() in ("full", "all"):
        bs = None
    optimizer = ck.choice(tr, "optimizer", tp, "gd", OPTIMIZERS)
    train = TrainConfig(
        optimizer=optimizer,
        lr=ck.number(tr, "lr", tp, 0.5, **RANGES["lr"]),
        epochs=ck.integer(tr, "epochs", tp, 1000, **RANGES["epochs"]),
        batch_size=ck.integer({"batch_size": bs}, "batch_size", tp, None, allow_none=True, **RANGES["batch_size"]),
        momentum=ck.number(tr, "momentum", tp, 0.9, lo=0, hi=1, hi_open=True),
        beta1=ck.number(tr, "beta1", tp, 0.9, lo=0, hi=1, hi_open=True),
        beta2=ck.number(tr, "beta2", tp, 0.999, lo=0, hi=1, hi_open=True),
        epsilon=ck.number(tr, "epsilon", tp, 1e-10 if optimizer == "adagrad" else 1e-8, lo=0, lo_open=True),
        alpha=ck.number(tr, "alpha", tp, 0.99, lo=0, hi=1, hi_open=True),
        seed=ck.integer(tr, "seed", tp, 0, **RANGES["seed"]),
        weight_decay=ck.number(tr, "weight_decay", tp, 0.0, lo=0),
        l1=ck.number(tr, "l1", tp, 0.0, lo=0),
        patience=patience, min_delta=min_delta, restore_best=restore_best, **watch,
        dtype=ck.choice(tr, "dtype", tp, "float64", DTYPES), **parse_snapshots(ck, tr, tp),
    )
    return replace(train, schedule=parse_schedule(ck, tr.get("schedule"), tp + ("schedule",), train.epochs))


def _parse_inputs(ck: Checker, inputs_raw: Any) -> list[str] | None:
    """The `inputs:` names, or x1..xN for a count; None when not given (the data's columns then name them)."""
    if isinstance(inputs_raw, int) and not isinstance(inputs_raw, bool):
        if 1 <= inputs_raw <= MAX_LAYER:
            return [f"x{k + 1}" for k in range(inputs_raw)]
        ck.problem(("inputs",), f"must be between 1 and {MAX_LAYER}, found {inputs_raw}")
    elif isinstance(inputs_raw, list):
        if not inputs_raw or not all(isinstance(s, (str, int)) and not isinstance(s, bool) for s in inputs_raw):
            ck.problem(("inputs",), "expected a non-empty list of input names")
        elif len(set(map(str, inputs_raw))) != len(inputs_raw):
            ck.problem(("inputs",), "input names must be different from each other")
        else:
            return [str(s) for s in inputs_raw]
    elif inputs_raw is not None:
        ck.problem(("inputs",), f"expected a number of inputs or a list of names, found {kind_of(inputs_raw)}")
    return None


def _check_data_fits(ck: Checker, dataset: data_mod.Dataset, dcfg, dd: dict, inputs: list[str] | None,
                     layer_cfgs: list[LayerConfig], loss_name: str, train: TrainConfig) -> None:
    """The data against the network: input and output columns, the loss's conditions on the targets, the batch
    size and the validation split."""
    dp = ("data",)
    n_out = layer_cfgs[-1].size if layer_cfgs else None
    if inputs is not None and dataset.x.shape[1] != len(inputs):
        ck.problem(("inputs",), f"the network has {len(inputs)} inputs but the data has "
                   f"{dataset.x.shape[1]} feature columns")
    if np.all(np.isfinite(dataset.y)):
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
    if n_out is not None and dataset.y.shape[1] != n_out:
        ck.problem(("layers", len(layer_cfgs) - 1, "size"), f"the output layer has {big_count(n_out)} nodes but the "
                   f"targets have {dataset.y.shape[1]} columns")
    n_val, n_test = data_mod.held_out(dataset.m, dcfg.validation, dcfg.test)
    too_large = _batch_too_large(train.batch_size, dataset.m - n_val - n_test, n_val + n_test)
    if too_large:
        ck.problem(("train", "batch_size"), f"batch size {too_large} or leave it out for full batch")
    if dcfg.validation > 0:
        if n_val < 1 or n_val >= dataset.m:
            ck.problem(dp + ("validation",), f"{dcfg.validation:g} of {dataset.m} samples leaves "
                       f"{'no' if n_val < 1 else 'no training'} samples; use a fraction that keeps both parts "
                       "non-empty")

    if dcfg.test > 0:
        if n_test < 1 or n_test + n_val >= dataset.m:  # as data.test_indices decides
            ck.problem(dp + ("test",), f"{dcfg.test:g} of {dataset.m} samples leaves "
                       f"{'no test' if n_test < 1 else 'no training'} samples"
                       + (f" beside the {n_val} validation samples" if n_val and n_test >= 1 else "")
                       + "; use a fraction that keeps every part non-empty")
    if dcfg.source == "inline":
        check_stored_size(ck, dataset.x.size + dataset.y.size, layer_cfgs)


def _schedule_fits(ck: Checker, train: TrainConfig, train_raw: Any, dcfg) -> TrainConfig:
    """The schedule against the data: a validation value it is told to watch needs validation data; plateau
    told nothing watches the training loss when nothing is held out."""
    if train.schedule is None or dcfg.validation > 0:
        return train
    given = isinstance(train_raw, dict) and isinstance(train_raw.get("schedule"), dict) \
        and "monitor" in train_raw["schedule"]
    if given and train.schedule.monitor.startswith("val_"):
        ck.problem(("train", "schedule", "monitor"), f"{train.schedule.monitor} needs validation data; set "
                   "data.validation (e.g. 0.2) or monitor loss")
    if not given and train.schedule.name == "plateau":
        return replace(train, schedule=replace(train.schedule, monitor="loss"))  # nothing held out: the training loss
    return train


def _check_size(ck: Checker, layer_cfgs: list[LayerConfig], inputs: list[str] | None,
                dataset: data_mod.Dataset | None) -> None:
    """Refuse absurd networks before allocating anything: the parameters, and one pass's layer values."""
    n_params, fan_in = 0, len(inputs) if inputs else 1
    for lc in layer_cfgs:
        n_params += lc.size * (fan_in + 1)
        fan_in = lc.size
    too_wide = [i for i, lc in enumerate(layer_cfgs) if lc.size > MAX_LAYER]
    if n_params > MAX_PARAMS or too_wide:
        at = ("layers", too_wide[0], "size") if too_wide else ("layers",)
        ck.problem(at, f"this network has {big_count(n_params)} parameters and would need "
                   f"{human_bytes(n_params * 8)} for its weights alone; bpcli is for small networks "
                   f"(at most {MAX_PARAMS:,} parameters and {MAX_LAYER:,} nodes per layer)")
    elif dataset is not None:
        need = dataset.m * sum(lc.size for lc in layer_cfgs) * 3 * 8
        if need > MAX_PASS_BYTES:
            ck.problem(("layers",), f"one pass over the {dataset.m:,} samples would need {human_bytes(need)} "
                       f"for the layer values (z, a and dz of every node for every sample); "
                       f"use fewer samples (data.max_rows) or smaller layers (at most "
                       f"{human_bytes(MAX_PASS_BYTES)})")


def _batch_too_large(batch_size: int | None, m: int, held: int = 0) -> str:
    """'B is larger than the m training samples; ...' for a batch bigger than the m rows it is taken from (`held`
    more are held out for validation and test), else ''. Nothing is said when no row is left to train on: the
    validation or test fraction is what is wrong then."""
    if batch_size is None or batch_size <= m or m < 1:
        return ""
    shown = batch_size if batch_size < 10**15 else big_count(batch_size)
    rows = f"{m} training samples ({m + held} less {held} held out)" if held else f"{m} samples"
    return f"{shown} is larger than the {rows}; use at most {m}"


class _OptionChecker(Checker):
    """Problems named by the command-line option that gave the value: `--lr: must be > 0, found -1`."""

    def __init__(self):
        super().__init__("", Locations(None))

    def problem(self, path: tuple, msg: str) -> None:
        hint = " (or 0 for full batch)" if path[-1] == "batch_size" else ""
        self.problems.append(f"{OPTIONS[path[-1]]}: {msg}{hint}")


def with_overrides(cfg: NetConfig, *, epochs: int | None = None, lr: float | None = None,
                   batch_size: int | None = None, seed: int | None = None, samples: int | None = None) -> NetConfig:
    """`cfg` with command-line values for train.epochs, lr, batch_size (0 = full batch) and seed (init's too).

    Each is checked against the range a config file has; ConfigError naming every option at fault.
    `samples`: how many samples the data has; the batches are taken from those the config's validation and test
    fractions leave for training.
    """
    given = {k: v for k, v in {"epochs": epochs, "lr": lr, "batch_size": batch_size, "seed": seed}.items()
             if v is not None}
    ck = _OptionChecker()
    changes = {}
    for key, value in given.items():
        if key == "batch_size" and value == 0:
            changes[key] = None  # full batch
        else:
            changes[key] = (ck.number if key == "lr" else ck.integer)(given, key, ("train",), None, **RANGES[key])
    if samples is not None:
        held = sum(data_mod.held_out(samples, cfg.data.validation, cfg.data.test))
        too_large = _batch_too_large(changes.get("batch_size"), samples - held, held)
        if too_large:
            ck.problem(("train", "batch_size"), too_large)
    if ck.problems:
        raise ConfigError(ck.problems)
    init = replace(cfg.init, seed=changes["seed"]) if "seed" in changes else cfg.init
    return replace(cfg, train=replace(cfg.train, **changes), init=init) if changes else cfg


def builtin_config_dir() -> Path:
    """The shipped example configs (seed.yaml, xor.yaml, ...)."""
    return Path(__file__).parents[1] / "configs"


def load_config(path: str | Path | None = None) -> tuple[NetConfig, data_mod.Dataset]:
    """Read and validate a config file (the built-in seed network when path is None)."""
    if path is None:
        p = builtin_config_dir() / "seed.yaml"
        source = "<built-in seed.yaml>"
    else:
        p = Path(path)
        source = str(path)
    too_big = ConfigError([f"{source}: the config is over {human_bytes(MAX_CONFIG_BYTES)}; put large data in a CSV file"])
    try:  # the size checked before reading: a sparse file of gigabytes is refused without reading it
        raw = read_capped(p, MAX_CONFIG_BYTES, "config")
    except NotReadable as err:
        if err.kind == "large":
            raise too_big from None
        if err.kind == "missing":
            if not p.suffix or "runs" in p.parts:  # no .yaml: it was meant as a run folder
                raise ConfigError([f"{source}: no such run folder or config file (`bpcli runs` lists the runs)"]) from None
            shipped = p.suffix.lower() in (".yaml", ".yml") and (builtin_config_dir() / f"{p.stem}.yaml").is_file()
            hint = (f" ({p.stem} is a shipped example: `bpcli init {p.name} --example {p.stem}` copies it here)"
                    if shipped else "")  # the README's configs/NAME.yaml, run outside a clone of the repository
            raise ConfigError([f"{source}: config file not found{hint}"]) from None
        if err.kind == "folder":
            hint = " (or use --run for a run folder)" if (p / "config.yaml").is_file() else ""
            raise ConfigError([f"{source}: is a folder; give a config file{hint}"]) from None
        raise ConfigError([f"{source}: {err.problem}"]) from None
    except OSError as err:
        raise ConfigError([f"{source}: cannot read: {err.strerror}"]) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        line = raw[: err.start].count(b"\n") + 1
        raise ConfigError([f"{source}:{line}: the file is not UTF-8 text"]) from None
    if p.suffix.lower() in (".csv", ".tsv") and not text.lstrip().startswith(("version:", "layers:", "#")):
        raise ConfigError([f"{source}: is a CSV file, not a config; train on it with `bpcli train {path} --target "
                           f"COLUMN` (the column to predict{_csv_columns(text)})"])
    return load_config_text(text, source, p.resolve().parent)


def load_config_text(text: str, source: str, base_dir: Path) -> tuple[NetConfig, data_mod.Dataset]:
    """Read and validate a config given as YAML text (relative paths in it are relative to base_dir)."""
    doc, locs = read_yaml(text, source)
    return parse(doc, source, locs, base_dir)


def _csv_columns(text: str) -> str:
    """', one of: a, b, c' from a CSV's header row, or '' when it has none that reads."""
    import csv

    try:
        header = next(csv.reader([text.split("\n", 1)[0]]), [])
    except csv.Error:
        return ""
    names = [h.strip() for h in header if h.strip()]
    return f", one of: {', '.join(names[:20])}{', ...' if len(names) > 20 else ''}" if names else ""
