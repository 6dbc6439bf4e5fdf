"""Early stopping on the validation loss or the validation metric, with mode, min_delta, patience and a start epoch:
the stop epoch, the best epoch and the epochs marked best are worked out here from the run's own history.csv by the
rule written out below, and must be what the run did."""

from __future__ import annotations

import json

import pytest
import yaml
from typer.testing import CliRunner

from bpcli.cli.app import app
from tests.conftest import read_history

BASE = {"inputs": 2, "layers": [{"size": 6, "activation": "tanh"}, {"size": 1, "activation": "sigmoid"}],
        "loss": "binary_cross_entropy",
        "data": {"generator": "moons", "samples": 60, "noise": 0.35, "validation": 0.3, "standardize": True}}


def rule(rows: list[dict], monitor: str, mode: str, min_delta: float, patience: int, start: int):
    """(stop epoch or None, best epoch, epochs marked best): epochs up to `start` are not watched; the first watched
    epoch is the best so far; later, a value below best - min_delta (min) or above best + min_delta (max) is a new
    best and resets the count of bad epochs, any other counts one; the run stops after `patience` bad epochs."""
    best = best_epoch = None
    bad, marked = 0, []
    for r in rows:
        e, v = r["epoch"], r[monitor]
        if e <= start:
            continue
        if best is None or (v < best - min_delta if mode == "min" else v > best + min_delta):
            best, best_epoch, bad = v, e, 0
            marked.append(e)
        else:
            bad += 1
        if bad >= patience:
            return e, best_epoch, marked
    return None, best_epoch, marked


CASES = [
    ({"monitor": "val_loss", "patience": 3, "min_delta": 0.002, "start": 6}, "val_loss", "min"),
    ({"monitor": "val_metric", "patience": 4, "start": 3}, "val_metric", "max"),
    ({"monitor": "val_loss", "mode": "max", "patience": 2, "min_delta": 0.0}, "val_loss", "max"),
]


@pytest.mark.parametrize("es,monitor,mode", CASES, ids=["loss-min-delta-start", "metric-max", "loss-mode-max"])
def test_the_stop_and_best_epochs_follow_the_rule_on_the_runs_own_history(tmp_path, es, monitor, mode):
    cfg = {**BASE, "train": {"optimizer": "sgd", "lr": 0.5, "batch_size": 8, "epochs": 80, "seed": 1,
                             "early_stopping": {**es, "restore_best": False}}}
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(cfg))
    r = CliRunner().invoke(app, ["train", str(path), "--out", str(tmp_path / "run"), "-q", "--json"])
    assert 0 == r.exit_code, r.output
    rows = read_history(tmp_path / "run")
    doc = json.loads(r.stdout)
    start, delta = es.get("start", 0), es.get("min_delta", 0.0)
    stop, best, marked = rule(rows, monitor, mode, delta, es["patience"], start)
    assert stop is not None  # the case stops early: the rule has something to say
    assert (stop, "early_stopped", best) == (len(rows), doc["status"], doc["best_epoch"])
    assert marked == [h["epoch"] for h in rows if h["best"]]
    watch = {k: v for k, v in (("monitor", monitor), ("mode", mode), ("start", start))
             if v != {"monitor": "val_loss", "mode": "min", "start": 0}[k]}  # said where not the default
    assert {**watch, "patience": es["patience"], "min_delta": delta, "restore_best": False} == \
        doc["settings"]["early_stopping"]
    if start:  # the start epoch matters here: watched from epoch 1 the same rule gives another history
        assert rule(rows, monitor, mode, delta, es["patience"], 0)[1:] != (best, marked)


def test_an_unknown_monitor_is_one_line_with_the_choices(tmp_path):
    cfg = {**BASE, "train": {"early_stopping": {"patience": 3, "monitor": "val_los"}}}
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(cfg))
    r = CliRunner().invoke(app, ["train", str(path), "--out", str(tmp_path / "run")])
    assert 2 == r.exit_code and "Traceback" not in r.output
    assert ("train.early_stopping.monitor: unknown value 'val_los' (did you mean 'val_loss'?); expected 'val_loss' "
            "or 'val_metric'") in r.stderr
