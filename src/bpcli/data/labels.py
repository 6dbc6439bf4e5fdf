"""Which output is which: a classifier's class names beside its output nodes (B1 (class "setosa"))."""

from __future__ import annotations

from bpcli.data.dataset import Dataset


def class_names_of(data: Dataset, n_out: int, numbered: bool = True) -> tuple[str, ...] | None:
    """The class of each output (two names for one output: y' < 0.5, then y' >= 0.5); None for regression.

    The data's own names (a CSV's labels, `classes:` in the config, a generator's), else 0, 1, ... as the
    targets number them; without `numbered`, None rather than names that are only those numbers.
    """
    if data.task != "classification":
        return None
    k = 2 if n_out == 1 else n_out
    numbers = tuple(str(i) for i in range(k))
    names = tuple(data.class_names) if data.class_names is not None and len(data.class_names) == k else numbers
    return names if numbered or names != numbers else None


def output_labels(n_out: int, class_names: tuple[str, ...] | None) -> tuple[str, ...] | None:
    """What each output node stands for, e.g. ('class "setosa"', ...); one sigmoid output names both classes."""
    if class_names is None:
        return None
    if n_out == 1:
        return (f'class "{class_names[1]}" at y\' >= 0.5, else "{class_names[0]}"',)
    return tuple(f'class "{c}"' for c in class_names)
