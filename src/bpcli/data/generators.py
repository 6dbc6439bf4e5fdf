"""The built-in problems a config names with data.generator: xor, and, or, circles, moons, spirals, blobs, sine."""

from __future__ import annotations

import math

import numpy as np

from bpcli.data.dataset import Array, Dataset, one_hot
from bpcli.errors import DataError


def generate(name: str, samples: int, noise: float, seed: int, classes: int = 3) -> Dataset:
    """Built-in problems: 2-D classification (xor, and, or, circles, moons, spirals, blobs), 1-D sine."""
    rng = np.random.default_rng(seed)
    names2 = ("x1", "x2")
    if name in ("xor", "and", "or"):
        corners = np.array([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
        truth = {"xor": [0, 1, 1, 0], "and": [0, 0, 0, 1], "or": [0, 1, 1, 1]}[name]
        if samples <= 4 and noise == 0:
            x, t = corners[:samples], np.array(truth[:samples], dtype=float)
        else:
            pick = np.arange(samples) % 4
            rng.shuffle(pick)
            x = corners[pick] + rng.normal(0.0, noise, size=(samples, 2))
            t = np.array(truth, dtype=float)[pick]
        return Dataset(x, t[:, None], names2, ("y",), ("0", "1"), "classification")
    if name == "circles":
        r = np.where(np.arange(samples) % 2 == 0, 1.0, 0.5)
        ang = rng.uniform(0, 2 * np.pi, samples)
        x = np.c_[r * np.cos(ang), r * np.sin(ang)] + rng.normal(0.0, noise, (samples, 2))
        t = (r < 0.75).astype(float)
        return Dataset(x, t[:, None], names2, ("y",), ("outer", "inner"), "classification")
    if name == "moons":
        lab = np.arange(samples) % 2
        ang = rng.uniform(0, np.pi, samples)
        x = np.where(lab[:, None] == 0, np.c_[np.cos(ang), np.sin(ang)],
                     np.c_[1 - np.cos(ang), 0.5 - np.sin(ang)])
        x = x + rng.normal(0.0, noise, (samples, 2))
        return Dataset(x, lab[:, None].astype(float), names2, ("y",), ("upper", "lower"), "classification")
    if name == "spirals":
        k = max(2, classes)
        lab = np.arange(samples) % k
        r = rng.uniform(0.05, 1.0, samples)
        theta = lab * 2 * np.pi / k + 4.0 * r + rng.normal(0.0, noise, samples)
        x = np.c_[r * np.cos(theta), r * np.sin(theta)]
        return _onehot(x, lab, k, names2)
    if name == "blobs":
        k = max(2, classes)
        lab = np.arange(samples) % k
        centres = np.c_[np.cos(2 * np.pi * np.arange(k) / k), np.sin(2 * np.pi * np.arange(k) / k)] * 2.0
        x = centres[lab] + rng.normal(0.0, max(noise, 1e-3), (samples, 2))
        return _onehot(x, lab, k, names2)
    if name == "sine":
        x = np.sort(rng.uniform(-math.pi, math.pi, samples))[:, None]
        y = np.sin(x) + rng.normal(0.0, noise, (samples, 1))
        return Dataset(x, y, ("x1",), ("y",), None, "regression")
    raise DataError(f"unknown generator '{name}'")  # config validation makes this unreachable


def _onehot(x: Array, lab: Array, k: int, names: tuple[str, ...]) -> Dataset:
    classes = tuple(f"c{i}" for i in range(k))
    return Dataset(x, one_hot(lab, k), names, classes, classes, "classification")
