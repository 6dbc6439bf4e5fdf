"""The config's data section: where the samples come from, checked and read, with located problems."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from bpcli.data import dataset as data_mod
from bpcli.config.checker import Checker, human_bytes, kind_of, matrix, short_repr
from bpcli.config.classes import apply_class_names, parse_class_names
from bpcli.errors import BpcliError
from bpcli.data.generators import generate
from bpcli.schema import DataConfig
from bpcli.yamlsrc import MAX_CONFIG_BYTES, format_path

MAX_DATA_VALUES = data_mod.MAX_DATA_VALUES  # samples x (features + outputs): 400 MB as float64
MAX_CLASSES = 100  # spirals and blobs


def parse_data(ck: Checker, dd: dict, dp: tuple, base_dir: Path, inputs: list[str] | None,
               n_out: int | None) -> tuple[data_mod.Dataset | None, DataConfig]:
    """The data section: exactly one source (inline x and y, a CSV file or a generator), read and checked."""
    common = dict(
        validation=ck.number(dd, "validation", dp, 0.0, lo=0, hi=1, hi_open=True),
        split_seed=ck.integer(dd, "split_seed", dp, 0, lo=0),
        test=ck.number(dd, "test", dp, 0.0, lo=0, hi=1, hi_open=True),
        test_seed=ck.integer(dd, "test_seed", dp, 0, lo=0),
        standardize=ck.boolean(dd, "standardize", dp, False),
        task=ck.choice(dd, "task", dp, "auto", ("auto", "classification", "regression")),
    )
    class_list = parse_class_names(ck, dd, dp)
    sources = [k for k in ("x", "csv", "generator") if k in dd]
    if not dd:
        ck.problem(dp, "missing: give inline x and y, a csv file, or a generator (e.g. generator: xor)")
        return None, DataConfig("inline", **common)
    if len(sources) != 1:
        ck.problem(dp, "give exactly one data source: x and y, csv, or generator"
                   + (f" (found {', '.join(sources)})" if sources else ""))
        return None, DataConfig("inline", **common)
    src = sources[0]
    try:
        if src == "x":
            dataset, dcfg = _inline(ck, dd, dp, inputs, common)
        elif src == "csv":
            dataset, dcfg = _from_csv(ck, dd, dp, base_dir, inputs, n_out, common)
        else:
            dataset, dcfg = _generated(ck, dd, dp, n_out, class_list, common)
    except BpcliError as err:
        ck.problem(dp, str(err))
        return None, DataConfig(src, **common)
    if dataset is None:
        return None, dcfg
    if common["task"] != "auto":
        dataset = data_mod.Dataset(dataset.x, dataset.y, dataset.feature_names, dataset.target_names,
                                   dataset.class_names, common["task"], dataset.note)
    if not np.all(np.isfinite(dataset.x)) or not np.all(np.isfinite(dataset.y)):
        ck.problem(dp, "the data contains NaN or infinite values")
        return dataset, dcfg
    if "classes" in dd and src != "generator" and not isinstance(dd["classes"], list):
        ck.problem(dp + ("classes",), f"expected the class names as a list (classes: [no, yes]), found "
                   f"{kind_of(dd['classes'])} {short_repr(dd['classes'])}; a number of classes is for the "
                   "spirals and blobs generators")
    text_labels = src == "csv" and data_mod.has_text_labels(dataset)
    if class_list:
        dataset = apply_class_names(ck, dp, dataset, class_list, n_out, text_labels)
        if dataset is None:
            return None, dcfg
    if class_list or text_labels:  # kept in the resolved config, so a run keeps its class names and their order
        dcfg = replace(dcfg, class_names=dataset.class_names)
    return dataset, dcfg


def _inline(ck: Checker, dd: dict, dp: tuple, inputs: list[str] | None,
            common: dict) -> tuple[data_mod.Dataset | None, DataConfig]:
    """Inline x and y: two matrices with the same number of rows."""
    x = matrix(ck, dd.get("x"), dp + ("x",))
    if "y" not in dd:
        ck.problem(dp, "inline data needs 'y' beside 'x'")
        return None, DataConfig("inline", **common)
    y = matrix(ck, dd.get("y"), dp + ("y",))
    if x is None or y is None:
        return None, DataConfig("inline", **common)
    if x.shape[0] != y.shape[0]:
        ck.problem(dp + ("y",), f"x has {x.shape[0]} samples but y has {y.shape[0]}")
        return None, DataConfig("inline", **common)
    names = tuple(inputs) if inputs and len(inputs) == x.shape[1] else tuple(f"x{k + 1}" for k in range(x.shape[1]))
    dataset = data_mod.Dataset(x, y, names, tuple(f"y{k + 1}" for k in range(y.shape[1])) if y.shape[1] > 1 else ("y",),
                               None, data_mod.infer_task(y))
    dcfg = DataConfig("inline", x=x.tolist(), y=y.tolist(), **common)
    return dataset, dcfg


def _from_csv(ck: Checker, dd: dict, dp: tuple, base_dir: Path, inputs: list[str] | None, n_out: int | None,
              common: dict) -> tuple[data_mod.Dataset | None, DataConfig]:
    """A CSV file (relative to the config's folder), its target and feature columns, read by data.read_csv."""
    csv_path = dd.get("csv")
    if not isinstance(csv_path, str) or not csv_path:
        ck.problem(dp + ("csv",), f"expected a file path, found {kind_of(csv_path)}")
        return None, DataConfig("csv", **common)
    try:
        full = (base_dir / csv_path).resolve()
    except (RuntimeError, OSError):  # a symlink loop (Python < 3.13 raises RuntimeError): read_csv says so
        full = Path(os.path.abspath(base_dir / csv_path))
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
        dataset = data_mod.read_csv(full, features, target, n_out, format_path(dp + ("csv",)), max_rows,
                                    as_labels=common["task"] == "classification")
    except BpcliError as err:
        line = ck.locs.line(dp + ("csv",))
        ck.problems.append(f"{ck.source}:{line}: {err}")
        return None, DataConfig("csv", **common)
    dcfg = DataConfig("csv", csv=str(full), features=list(dataset.feature_names), target=target,
                      max_rows=max_rows, **common)
    return dataset, dcfg


def _generated(ck: Checker, dd: dict, dp: tuple, n_out: int | None, class_list,
               common: dict) -> tuple[data_mod.Dataset | None, DataConfig]:
    """A built-in generator, its sample count, noise, seed and classes."""
    gen = ck.choice(dd, "generator", dp, "xor", data_mod.GENERATORS)
    samples = ck.integer(dd, "samples", dp, 4 if gen in ("xor", "and", "or") else 200, lo=1, hi=10_000_000)
    noise = ck.number(dd, "noise", dp, 0.0 if gen in ("xor", "and", "or") else 0.1, lo=0)
    gseed = ck.integer(dd, "seed", dp, 0, lo=0)  # fixed unless set: train.seed and --seed do not move it
    if isinstance(dd.get("classes"), list):  # names (their problems are reported already)
        classes = len(class_list) if class_list else None
    else:
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
    dataset = generate(gen, samples, noise, gseed, classes)
    if n_out == 1 and dataset.y.shape[1] == 2:  # two classes, one sigmoid output: 0/1 targets
        dataset = data_mod.Dataset(dataset.x, dataset.y[:, 1:], dataset.feature_names, ("y",),
                                   dataset.class_names, dataset.task)
    dcfg = DataConfig("generator", generator=gen, samples=samples, noise=noise, seed=gseed,
                      classes=classes if gen in ("spirals", "blobs") else None, **common)
    return dataset, dcfg


STORED_BYTES_PER_VALUE = 40  # an upper bound for one number in the resolved config.yaml: indent, '- ', repr, newline


def check_stored_size(ck: Checker, n_data: int, layer_cfgs: list) -> None:
    """Inline data and explicit weights are stored in the run's config.yaml, which is read back through
    MAX_CONFIG_BYTES: refuse, before training, a config whose resolved form could exceed it."""
    n_weights = sum(_count_numbers(lc.weights) + _count_numbers(lc.biases) for lc in layer_cfgs)
    need = (n_data + n_weights) * STORED_BYTES_PER_VALUE + 100_000
    if need > MAX_CONFIG_BYTES:
        ck.problem(("data",), f"the inline data and weights hold {n_data + n_weights:,} numbers; a run stores them in "
                   f"its config.yaml, which could reach {human_bytes(need)}, more than the "
                   f"{human_bytes(MAX_CONFIG_BYTES)} bpcli reads back; put the data in a CSV file (data.csv)")


def _count_numbers(v: Any) -> int:
    """Leaves of a nested list (a value that is not a list counts 1); None counts 0."""
    if v is None:
        return 0
    n, stack = 0, [v]
    while stack:
        x = stack.pop()
        if isinstance(x, list):
            stack.extend(x)
        else:
            n += 1
    return n
