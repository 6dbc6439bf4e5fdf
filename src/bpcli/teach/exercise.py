"""exercise: a small network with round-number weights and questions on it, the same sheet for the same seed."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from bpcli.errors import ArgumentError, BpcliError
from bpcli.nn.model import LETTERS, SYMBOLS, Layer, weight_name

MAX_NODES = 4
ACTIVATIONS = ("sigmoid", "tanh", "relu", "identity")
INPUT_VALUES = (-1.0, -0.5, 0.5, 1.0, 1.5, 2.0)


@dataclass(frozen=True)
class Sheet:
    """A worksheet: `config` is a complete config document (explicit weights, inline data) for the network."""

    seed: int
    size: tuple[int, ...]
    activation: str
    samples: int
    config: dict
    questions: tuple[str, ...]  # parameter names: compute dC/d<name>
    meta: dict = field(default_factory=dict)  # what an answers file names to find this sheet again

    @property
    def size_text(self) -> str:
        return "-".join(map(str, self.size))

    def to_dict(self) -> dict:
        return {"command": "exercise", "seed": self.seed, "size": self.size_text, "activation": self.activation,
                "samples": self.samples, "questions": [f"dC/d{q}" for q in self.questions], "exercise": self.meta,
                "config": self.config}


def parse_size(text: str) -> tuple[int, ...]:
    parts = str(text).replace("x", "-").split("-")
    try:
        size = tuple(int(p) for p in parts)
    except ValueError:
        raise ArgumentError("size", f"expected node counts joined by '-', e.g. 2-2-1, found '{text}'") from None
    if not 3 <= len(size) <= 5 or not all(1 <= n <= MAX_NODES for n in size):
        raise ArgumentError("size", f"give 2 to 4 layers after the inputs, each of 1 to {MAX_NODES} nodes "
                                    f"(e.g. 2-2-1 or 2-3-2-1), found '{text}'")
    return size


def make_sheet(seed: int = 0, size: str = "2-2-1", activation: str = "sigmoid", samples: int | None = None) -> Sheet:
    """The sheet for these settings: weights in steps of 0.1, inputs in steps of 0.5, targets 0 or 1."""
    if seed < 0:
        raise ArgumentError("seed", f"must be 0 or more, found {seed}")
    act = str(activation).lower()
    if act not in ACTIVATIONS:
        raise ArgumentError("activation", f"choose one of {', '.join(ACTIVATIONS)}; found '{activation}'")
    if samples is not None and not 1 <= samples <= 4:
        raise ArgumentError("samples", f"1 to 4 samples fit on a sheet, found {samples}")
    sizes = parse_size(size)
    rng = np.random.default_rng(seed)
    m = int(samples if samples is not None else rng.integers(1, 3))
    steps = np.array([k for k in range(-9, 10) if k != 0]) / 10
    layers, n_in = [], sizes[0]
    for n in sizes[1:]:
        W = rng.choice(steps, size=(n, n_in))
        b = rng.integers(-5, 6, size=n) / 10
        layers.append({"size": n, "activation": act, "weights": W.tolist(), "biases": b.tolist()})
        n_in = n
    x = rng.choice(INPUT_VALUES, size=(m, sizes[0]))
    y = rng.integers(0, 2, size=(m, sizes[-1])).astype(float)
    inputs = [f"x{k + 1}" for k in range(sizes[0])]
    meta = {"seed": seed, "size": "-".join(map(str, sizes)), "activation": act}
    if samples is not None:
        meta["samples"] = m
    config = {
        "version": 1, "name": f"exercise-{seed}",
        "description": f"bpcli exercise --seed {seed} --size {meta['size']} --activation {act}",
        "inputs": inputs, "layers": layers, "loss": "squared_error",
        "data": {"x": x.tolist(), "y": y.tolist()},
        "train": {"optimizer": "gd", "lr": 0.5, "epochs": 1},
    }
    # one question on the output layer, one on the first layer, one in between for deeper networks
    shells = []
    for i, n in enumerate(sizes[1:]):
        shells.append(Layer(LETTERS[i], sizes[i], n, None, "on", SYMBOLS[i]))  # type: ignore[arg-type]
    picks = [len(shells) - 1] + ([1] if len(shells) > 2 else []) + [0]
    questions = []
    for l in picks:
        layer = shells[l]
        j, k = int(rng.integers(layer.n_out)), int(rng.integers(layer.n_in))
        questions.append(weight_name(layer, j, k))
    return Sheet(seed, sizes, act, m, config, tuple(questions), meta)


def sheet_from_meta(meta: dict, source: str) -> Sheet:
    """The sheet an answers file's `exercise:` mapping names."""
    unknown = set(meta) - {"seed", "size", "activation", "samples"}
    if unknown:
        raise BpcliError(f"{source}: exercise: unknown key '{sorted(map(str, unknown))[0]}' "
                         "(keys: seed, size, activation, samples)")
    seed = meta.get("seed")
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise BpcliError(f"{source}: exercise.seed: expected a whole number, found {seed!r:.40}")
    samples = meta.get("samples")
    if samples is not None and (isinstance(samples, bool) or not isinstance(samples, int)):
        raise BpcliError(f"{source}: exercise.samples: expected a whole number, found {samples!r:.40}")
    return make_sheet(seed, str(meta.get("size", "2-2-1")), str(meta.get("activation", "sigmoid")), samples)


def load_sheet(sheet: Sheet):
    """(cfg, net, prepared) for a sheet, through the same config checker as a file."""
    from bpcli.config.loader import parse
    from bpcli.data.dataset import prepare
    from bpcli.nn.model import build
    from bpcli.yamlsrc import Locations

    cfg, data = parse(sheet.config, f"<exercise seed {sheet.seed}>", Locations(None), Path.cwd())
    return cfg, build(cfg), prepare(cfg, data)
