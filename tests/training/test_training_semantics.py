"""Early stopping keeps the best weights, the L2 penalty is reported, and the validation split is stable,
disjoint, stratified and the only data the scaling does not see.

Expected values are worked out here from the run's own history by the documented rules, or from plain floats.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from bpcli.cli.app import app
from bpcli.config.loader import builtin_config_dir, load_config
from bpcli.data.dataset import prepare
from bpcli.runs.store import checkpoint_dir

from tests.conftest import read_history, run_manifest

runner = CliRunner()


def train(tmp_path: Path, cfg: dict | str, name: str, *args) -> Path:
    if isinstance(cfg, dict):
        path = tmp_path / f"{name}.yaml"
        path.write_text(yaml.safe_dump(cfg))
        cfg = str(path)
    out = tmp_path / name
    res = runner.invoke(app, ["train", cfg, "--out", str(out), "-q", "--json", *args])
    assert res.exit_code == 0, res.output
    return out


def weights(run: Path) -> dict:
    with np.load(checkpoint_dir(run) / "weights.npz", allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


def history(run: Path) -> list[dict]:
    return read_history(run)


def blobs(patience: int | None, restore: bool = True, epochs: int = 400) -> dict:
    """A small classifier that overfits noisy blobs, so its validation loss turns up within the run."""
    train_cfg = {"optimizer": "adam", "lr": 0.05, "epochs": epochs, "seed": 0}
    if patience is not None:
        train_cfg["early_stopping"] = {"patience": patience, "restore_best": restore}
    return {
        "name": "blobs", "inputs": 2,
        "layers": [{"size": 16, "activation": "tanh"}, {"size": 3, "activation": "softmax"}],
        "loss": "cross_entropy", "init": {"seed": 1},
        "data": {"generator": "blobs", "samples": 60, "classes": 3, "noise": 2.0, "seed": 4, "validation": 0.3},
        "train": train_cfg,
    }


def expected_stop(val: list[float], patience: int, min_delta: float = 0.0) -> tuple[int, int]:
    """(best epoch, stop epoch) by the rule: a new best is below best - min_delta; stop after `patience` misses."""
    best, best_epoch, bad = math.inf, 0, 0
    for e, v in enumerate(val, start=1):
        if v < best - min_delta:
            best, best_epoch, bad = v, e, 0
        else:
            bad += 1
            if bad >= patience:
                return best_epoch, e
    return best_epoch, len(val)


def test_early_stopping_stops_at_the_right_epoch_and_restores_the_best_weights(tmp_path):
    free = history(train(tmp_path, blobs(None), "free"))
    best_epoch, stop = expected_stop([h["val_loss"] for h in free], patience=20)
    assert best_epoch < stop < 400, "the example must stop early for this test to mean anything"

    run = train(tmp_path, blobs(20), "es")
    h = history(run)
    assert len(h) == stop
    assert [e["epoch"] for e in h if e["best"]][-1] == best_epoch
    state = run_manifest(run)
    assert (state["status"], state["weights_epoch"], state["best_epoch"]) == ("early_stopped", best_epoch, best_epoch)
    metrics = json.loads((checkpoint_dir(run) / "metrics.json").read_text())
    assert metrics["weights_epoch"] == best_epoch
    # the saved weights are exactly those of the same run cut at the best epoch
    cut = weights(train(tmp_path, blobs(None), "cut", "--epochs", str(best_epoch)))
    saved = weights(run)
    for k in cut:
        np.testing.assert_array_equal(saved[k], cut[k])
    # and the reported validation loss is the best one
    assert metrics["val_loss"] == pytest.approx(min(e["val_loss"] for e in free[:stop]), rel=1e-12)


def test_restore_best_false_keeps_the_last_epochs_weights(tmp_path):
    free = history(train(tmp_path, blobs(None), "free"))
    _, stop = expected_stop([h["val_loss"] for h in free], patience=20)
    run = train(tmp_path, blobs(20, restore=False), "last")
    cut = weights(train(tmp_path, blobs(None), "cut", "--epochs", str(stop)))
    for k, v in weights(run).items():
        np.testing.assert_array_equal(v, cut[k])
    assert run_manifest(run)["weights_epoch"] is None


def test_the_l2_penalty_is_reported_beside_the_data_loss(tmp_path):
    W1, V = [[0.5, -0.25], [0.75, 1.0]], [[1.5, -2.0]]
    cfg = {"name": "wd", "inputs": 2,
           "layers": [{"size": 2, "activation": "tanh", "weights": W1, "biases": [0.0, 0.0]},
                      {"size": 1, "activation": "identity", "weights": V, "biases": [3.0]}],
           "data": {"x": [[0.0, 1.0], [1.0, 0.0], [1.0, 1.0]], "y": [[1.0], [2.0], [0.5]]},
           "train": {"optimizer": "gd", "lr": 0.1, "epochs": 2, "weight_decay": 0.2}}
    run = train(tmp_path, cfg, "wd")
    h = history(run)
    # epoch 1's step is taken at the initial weights (biases are not decayed): 0.2 / 2 * sum w^2
    squares = sum(w * w for row in W1 + V for w in row)
    assert h[0]["penalty"] == pytest.approx(0.1 * squares, rel=1e-14)
    # epoch 2's at the weights after epoch 1, whose norms the history records
    assert h[1]["penalty"] == pytest.approx(0.1 * sum(n * n for n in h[0]["weight_norm"]), rel=1e-12)
    metrics = json.loads((checkpoint_dir(run) / "metrics.json").read_text())
    w = weights(run)
    assert metrics["penalty"] == pytest.approx(0.1 * (np.sum(w["A.W"] ** 2) + np.sum(w["B.W"] ** 2)), rel=1e-12)
    without = history(train(tmp_path, {**cfg, "train": {**cfg["train"], "weight_decay": 0.0}}, "plain"))
    assert without[0]["penalty"] is None
    assert without[0]["loss"] == h[0]["loss"]  # the reported loss is the data loss, with or without decay


IRIS = str(builtin_config_dir() / "iris.yaml")


def val_rows(run: Path) -> set[tuple]:
    """The raw validation rows of a run, from its saved config and scaling."""
    ck = checkpoint_dir(run)
    cfg, data = load_config(ck / "config.yaml")
    p = prepare(cfg, data)
    scaling = json.loads((ck / "scaling.json").read_text())
    raw = p.val.x * np.array(scaling["std"]) + np.array(scaling["mean"])
    return {tuple(np.round(r, 6)) for r in raw}


def test_seed_does_not_move_the_validation_split(tmp_path):
    """--seed changes initialisation and shuffling only: the held-out flowers stay the same 30."""
    cfg, data = load_config(IRIS)
    a = prepare(cfg, data)
    import dataclasses
    b = prepare(dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, seed=5)), data)
    np.testing.assert_array_equal(a.val.x, b.val.x)
    r0 = train(tmp_path, IRIS, "s0", "--epochs", "2", "--seed", "0")
    r5 = train(tmp_path, IRIS, "s5", "--epochs", "2", "--seed", "5")
    assert val_rows(r0) == val_rows(r5)
    assert weights(r0)["A.W"].tolist() != weights(r5)["A.W"].tolist()  # while the seed did change the run


def test_the_split_is_disjoint_complete_and_stratified():
    cfg, data = load_config(IRIS)
    p = prepare(cfg, data)
    val = _val_index(cfg, data)
    assert len(set(val.tolist())) == len(val) == 30
    rest = np.setdiff1d(np.arange(150), val)
    # the training part is exactly the 120 other flowers, in order
    np.testing.assert_allclose(p.train.x * p.scaling.std + p.scaling.mean, data.x[rest], rtol=1e-12, atol=1e-12)
    # 50 flowers of each species: the 30 held out are 10, 10, 10
    assert Counter(np.argmax(p.val.y, axis=1).tolist()) == {0: 10, 1: 10, 2: 10}


def test_stratified_shares_round_by_largest_remainder():
    from bpcli.data.dataset import Dataset, validation_indices
    y = np.zeros((100, 1))
    y[10:] = 1.0  # 10 of class 0, 90 of class 1; 25 held out: shares 2.5 and 22.5, the tie goes to class 0
    d = Dataset(np.arange(100.0)[:, None], y, ("x1",), ("y",), None, "classification")
    for seed in range(10):  # every seed: exactly 3 and 22 (an unstratified draw varies from seed to seed)
        idx = validation_indices(d, 0.25, seed=seed)
        assert Counter(y[idx, 0].tolist()) == {0.0: 3, 1.0: 22}
    assert len({tuple(validation_indices(d, 0.25, seed=s)) for s in range(10)}) == 10  # the seed does draw


def test_scaling_is_fitted_on_the_training_split_only():
    cfg, data = load_config(IRIS)
    p = prepare(cfg, data)
    train_raw = data.x[np.setdiff1d(np.arange(150), _val_index(cfg, data))]
    np.testing.assert_allclose(p.scaling.mean, train_raw.mean(axis=0), rtol=1e-13)
    np.testing.assert_allclose(p.scaling.std, train_raw.std(axis=0), rtol=1e-13)
    assert not np.allclose(p.scaling.mean, data.x.mean(axis=0), rtol=1e-6)


def _val_index(cfg, data) -> np.ndarray:
    """The held-out rows, found by matching the validation rows back to the raw data."""
    p = prepare(cfg, data)
    back = p.val.x * p.scaling.std + p.scaling.mean
    return np.array([int(np.argmin(np.abs(data.x - r).sum(axis=1))) for r in back])
