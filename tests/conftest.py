"""Shared test helpers: random networks with data that suits their loss."""

from __future__ import annotations

import numpy as np
import pytest

from bpcli.nn.activations import get_activation
from bpcli.nn.losses import get_loss
from bpcli.nn.model import LETTERS, SYMBOLS, Layer, Network

def outputs_for(loss: str) -> list[str]:
    """Output activations a loss is tested with (softmax and sigmoid for the cross-entropies)."""
    return {"cross_entropy": ["softmax", "sigmoid"], "binary_cross_entropy": ["sigmoid", "softmax"]}.get(
        loss, ["identity", "sigmoid", "tanh", "softmax"])


def activation_loss_triples() -> list[tuple[str, str, str]]:
    """(hidden, output, loss) for every hidden activation with every output/loss pair."""
    from bpcli.nn.activations import ACTIVATIONS
    from bpcli.nn.losses import LOSSES
    return [(h, o, l) for l in LOSSES for o in outputs_for(l) for h in ACTIVATIONS if h != "softmax"]


SMOOTH = ["identity", "sigmoid", "tanh", "softplus", "silu", "gelu", "elu"]
KINKED = ["relu", "leaky_relu"]


def random_net(rng: np.random.Generator, n_in: int, sizes: list[int], hidden: str = "tanh",
               output: str = "sigmoid", loss: str = "squared_error", loss_params: dict | None = None,
               bias: str = "on") -> Network:
    """A float64 network with random weights (std 0.7) and random biases."""
    layers, Ws, bs = [], [], []
    k = n_in
    for i, n in enumerate(sizes):
        act = get_activation(output if i == len(sizes) - 1 else hidden)
        layers.append(Layer(LETTERS[i], k, n, act, bias, SYMBOLS[i]))
        Ws.append(rng.normal(0, 0.7, size=(n, k)))
        bs.append(None if bias == "off" else rng.normal(0, 0.3, size=1 if bias == "shared" else n))
        k = n
    return Network(tuple(f"x{j + 1}" for j in range(n_in)), tuple(layers), Ws, bs, get_loss(loss, loss_params))


def random_data(rng: np.random.Generator, net: Network, m: int) -> tuple[np.ndarray, np.ndarray]:
    """x: (m, n_in) standard normal; y suited to the loss (one-hot for cross-entropy, 0/1 for BCE)."""
    x = rng.normal(size=(m, net.n_inputs))
    n = net.n_outputs
    if net.loss.name == "cross_entropy":
        y = np.eye(n)[rng.integers(0, n, size=m)]
    elif net.loss.name == "binary_cross_entropy":
        y = rng.integers(0, 2, size=(m, n)).astype(float)
    else:
        y = rng.normal(size=(m, n))
    return x, y


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)


# CliRunner.invoke rebuilds the Click command from the Typer app on every call (~60 ms, most of a small
# command's time); the app does not change once imported, so build it once per app for the whole session.
def _cache_typer_command() -> None:
    import typer.testing

    build = typer.testing._get_command
    built: dict[int, object] = {}

    def cached(app):
        if id(app) not in built:
            built[id(app)] = build(app)
        return built[id(app)]

    typer.testing._get_command = cached


_cache_typer_command()


def read_history(run) -> list[dict]:
    """history.csv of a run folder as one dict per epoch: per-layer columns (grad_norm_A, ...) as lists,
    empty cells as None, `best` as a bool."""
    import csv
    from pathlib import Path
    rows = list(csv.DictReader((Path(run) / "history.csv").open()))
    out = []
    for r in rows:
        d: dict = {}
        for key, v in r.items():
            head, _, letter = key.rpartition("_")
            value = None if v == "" else float(v)
            if head in ("grad_norm", "weight_norm", "update_ratio", "saturation") and letter.isupper():
                d.setdefault(head, []).append(value)
            elif key == "best":
                d[key] = v == "1"
            elif key == "epoch":
                d[key] = int(v)
            else:
                d[key] = value
        out.append(d)
    return out


def run_manifest(run) -> dict:
    import json
    from pathlib import Path
    return json.loads((Path(run) / "run.json").read_text())


def rerecord(run, **fields) -> None:
    """Record the checkpoint files' SHA-256 again (and change run.json's fields), with run.json's own checksum:
    what a careful forger would do, so that only the checks of values can catch the change."""
    import hashlib
    import json
    from pathlib import Path

    from bpcli.runs.store import canonical
    run = Path(run)
    m = json.loads((run / "run.json").read_text())
    m.pop("sha256")
    ck = run / m["checkpoint"]
    m["files"] = {n: hashlib.sha256((ck / n).read_bytes()).hexdigest() if (ck / n).is_file() else "0" * 64
                  for n in m["files"]}
    m.update(fields)
    m["sha256"] = hashlib.sha256(canonical(m)).hexdigest()
    (run / "run.json").write_text(json.dumps(m))


def load_module(path, name: str):
    """A generated Python file (an export's model.py or predict.py) imported as a module."""
    import importlib.util
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def train_shipped(tmp, name: str, epochs: int):
    """A shipped config (configs/NAME.yaml) trained `epochs` epochs into tmp/name; returns the run folder."""
    import dataclasses

    from bpcli.config.loader import builtin_config_dir, load_config
    from bpcli.runs.session import run_training
    cfg, ds = load_config(builtin_config_dir() / f"{name}.yaml")
    run_training(dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, epochs=epochs)), ds, tmp / name)
    return tmp / name
