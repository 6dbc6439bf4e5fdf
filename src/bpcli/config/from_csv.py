"""A config for a CSV file in one command: the task read from the target column, the output layer and loss to match."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bpcli.data import dataset as data_mod
from bpcli.errors import BpcliError, DataError

MAX_INFERRED_CLASSES = 20  # whole numbers with more distinct values than this are a quantity, not labels
DEFAULTS = {"hidden": (8,), "activation": "tanh", "epochs": 200, "lr": 0.01}


@dataclass(frozen=True)
class TargetKind:
    """What a target column holds, in scikit-learn's `type_of_target` words: binary, multiclass or continuous."""

    kind: str  # "binary" | "multiclass" | "continuous"
    classes: tuple[str, ...]  # the labels as written (sorted as bpcli sorts them); () for continuous
    why: str  # one phrase: "3 text labels", "2 distinct whole numbers", "numbers with fractions"


def target_kind(data: data_mod.Dataset, target: str) -> TargetKind:
    """Classify the target column of `data` (read with n_out=None, so text labels are one-hot, numbers a column).

    As scikit-learn's `type_of_target`: text labels are classes (binary for two); numbers with a fractional
    part are continuous; whole numbers are classes, binary for two. Unlike scikit-learn, more than
    MAX_INFERRED_CLASSES distinct whole numbers are continuous (a count, a year), not that many classes.
    """
    if data.class_names is not None and data.y.shape[1] > 1:  # text labels, one-hot over the sorted names
        k = len(data.class_names)
        return TargetKind("binary" if k == 2 else "multiclass", tuple(data.class_names), f"{k} text labels")
    y = data.y[:, 0]
    values = np.unique(y)
    if values.size < 2:
        raise DataError(f"--target: column '{target}' holds one value ({values[0]:g}) in every row; nothing to learn")
    if np.any(y != np.round(y)):
        return TargetKind("continuous", (), "numbers with fractions")
    if values.size > MAX_INFERRED_CLASSES:
        return TargetKind("continuous", (), f"{values.size} distinct whole numbers (over {MAX_INFERRED_CLASSES}: "
                          "a quantity, not labels)")
    kind = "binary" if values.size == 2 else "multiclass"
    return TargetKind(kind, tuple(f"{v:g}" for v in values), f"{values.size} distinct whole numbers")


def parse_hidden(text: str) -> tuple[int, ...]:
    """'8,8' -> (8, 8); '' or '0' -> () (no hidden layer). BpcliError naming --hidden otherwise."""
    text = text.strip()
    if text in ("", "0", "none"):
        return ()
    sizes = []
    for part in text.split(","):
        part = part.strip()
        if not part.isdigit() or int(part) < 1:
            raise BpcliError(f"--hidden: expected layer sizes separated by commas (8,8), found '{text}'")
        sizes.append(int(part))
    return tuple(sizes)


def csv_config(csv_path: str | Path, target: str, *, hidden: tuple[int, ...] = DEFAULTS["hidden"],
               activation: str = DEFAULTS["activation"], epochs: int | None = None,
               lr: float | None = None) -> tuple[dict, TargetKind]:
    """The config document for training on `csv_path` to predict column `target`, and what the column holds.

    Every other column is a feature, standardised with training statistics; a fifth of the rows is held out
    for validation (stratified for classes); Adam on the full batch. The output layer and loss follow the
    target: softmax + cross_entropy for 3+ classes, one sigmoid + binary_cross_entropy for two,
    identity + squared_error for numbers. The CSV path is absolute, so the document reads the same anywhere.
    """
    if Path(csv_path).suffix.lower() in (".yaml", ".yml"):  # read as CSV, its comment line would be the "header"
        raise DataError(f"--target: {csv_path} is a YAML config, not a CSV file; train it as it is with "
                        f"`bpcli train {csv_path}` (--target COLUMN makes a config for a CSV file of data)")
    full = Path(csv_path).resolve()
    data = data_mod.read_csv(full, None, [target], None, "--target")
    kind = target_kind(data, target)
    if kind.kind == "multiclass":
        out, loss = {"size": len(kind.classes), "activation": "softmax"}, "cross_entropy"
    elif kind.kind == "binary":
        out, loss = {"size": 1, "activation": "sigmoid"}, "binary_cross_entropy"
    else:
        out, loss = {"size": 1, "activation": "identity"}, "squared_error"
    layers = [{"size": n, "activation": activation} for n in hidden] + [out]
    doc = {
        "version": 1,
        "name": full.stem,
        "description": f"{full.name}: predict {target} ({kind.kind}: {kind.why})",
        "layers": layers,
        "loss": loss,
        "init": {"scheme": "xavier_uniform", "seed": 0},
        "data": {"csv": str(full), "features": list(data.feature_names), "target": target,
                 "task": "regression" if kind.kind == "continuous" else "classification",
                 "validation": 0.2, "standardize": True},
        "train": {"optimizer": "adam", "lr": DEFAULTS["lr"] if lr is None else lr,
                  "epochs": DEFAULTS["epochs"] if epochs is None else epochs, "seed": 0},
    }
    return doc, kind


def csv_config_text(doc: dict, kind: TargetKind) -> str:
    """The document as YAML (the project's writer), with a comment line saying what was inferred."""
    from bpcli.yamlsrc import dump_yaml

    head = f"# made by bpcli train CSV --target COLUMN: the target column is {kind.kind} ({kind.why})\n"
    return head + dump_yaml(doc, sort_keys=False, default_flow_style=None)
