"""The data section's `classes:` as a list of names: checked with their lines, then put on the data's outputs.

`classes: [no, yes]` names a classifier's outputs (B1 is class "no", ...). For a CSV whose target holds text
labels the list must hold exactly those labels, and it sets their order (the one-hot columns); otherwise
(numeric labels, inline 0/1 or one-hot targets, generators) it names the classes in order: the first name is
output 0 (y' < 0.5 for a single sigmoid output), the next output 1, and so on.
"""

from __future__ import annotations

import numpy as np

from bpcli.config.checker import Checker, kind_of, short_repr
from bpcli.data.dataset import Dataset
from bpcli.errors import did_you_mean

def parse_class_names(ck: Checker, dd: dict, dp: tuple) -> tuple[str, ...] | None:
    """`classes:` when it is a list: the names, each text (or a number) and all different; None otherwise.

    A whole number stays the generators' count of classes (read by the data section); every problem is
    gathered with the line of the item at fault.
    """
    raw = dd.get("classes")
    if not isinstance(raw, list):
        return None
    path = dp + ("classes",)
    if len(raw) < 2:
        ck.problem(path, f"give at least two class names, found {len(raw)}")
        return None
    names: list[str] = []
    seen: dict[str, int] = {}
    ok = True
    for i, v in enumerate(raw):
        if isinstance(v, bool) or not isinstance(v, (str, int, float)):
            ck.problem(path + (i,), f"expected a class name (text), found {kind_of(v)} {short_repr(v)}")
            ok = False
            continue
        name = v.strip() if isinstance(v, str) else str(v)  # any text a CSV label can be (views escape it)
        if not name:
            ck.problem(path + (i,), "a class name cannot be empty")
            ok = False
            continue
        if name in seen:
            ck.problem(path + (i,), f"class '{name}' is named twice (items {seen[name] + 1} and {i + 1})")
            ok = False
            continue
        seen[name] = i
        names.append(name)
    return tuple(names) if ok else None


def apply_class_names(ck: Checker, dp: tuple, data: Dataset, names: tuple[str, ...], n_out: int | None,
                      csv_labels: bool) -> Dataset | None:
    """The data with `names` as its class names (columns reordered when they are a CSV's text labels).

    csv_labels: the class names the data has came from a CSV target's text, so `names` must be the same set.
    None, with the problem recorded, when the names do not fit the data or the output layer.
    """
    path = dp + ("classes",)
    if data.task != "classification":
        ck.problem(path, "class names are for a classifier, but the targets are not class labels "
                   "(0/1, one-hot rows or a column of labels)")
        return None
    k = 2 if data.y.shape[1] == 1 else data.y.shape[1]
    if n_out is not None and n_out != data.y.shape[1]:
        return data  # the output layer's size is reported against the targets (config/loader.py)
    if len(names) != k:
        what = (f"one output node (y' < 0.5 is the first class, y' >= 0.5 the second) has {k} classes" if k == 2 and
                data.y.shape[1] == 1 else f"the output layer has {k} nodes, one per class")
        ck.problem(path, f"{len(names)} class names, but {what}; give {k}")
        return None
    y = data.y
    if csv_labels and data.class_names is not None:
        have = data.class_names
        unknown = [n for n in names if n not in have]
        if unknown:
            ck.problem(path, f"'{unknown[0]}' is not a label of the target column{did_you_mean(unknown[0], have)}; "
                       f"its labels are: {', '.join(have)}")
            return None
        order = np.array([have.index(n) for n in names])
        y = y[:, order] if y.shape[1] > 1 else (y if order[0] == 0 else 1.0 - y)
    targets = names if data.target_names == data.class_names else data.target_names  # a CSV's one-hot columns
    return Dataset(data.x, y, data.feature_names, targets, names, data.task, data.note)
