"""The values read from a run folder checked by range, where a checksum cannot help (the checksums recorded again):
metrics.json's numbers, scaling.json against the training data, the arrays state.npz must hold."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from bpcli.data.dataset import Scaling, fit_scaling, parts
from bpcli.errors import RunFolderError, is_finite_number
from bpcli.nn.model import Network
from bpcli.training.optim import Optimizer
from bpcli.schema import NetConfig
from bpcli.training.fit import TrainState

STATUSES = ("running", "completed", "early_stopped", "diverged", "interrupted")


def state_keys(net: Network, cfg: NetConfig, state: TrainState) -> list[str]:
    """The arrays state.npz must hold: the optimiser's buffers (as optim.Optimizer makes them from epoch 0), and the
    best epoch's parameters once early stopping with restore_best has seen a best epoch."""
    keys = sorted(Optimizer(net, cfg.train).buffers)
    if cfg.train.patience is not None and cfg.train.restore_best and state.best_epoch > 0:
        keys += [TrainState.BEST + k for k in net.named_arrays()]
    return keys


def check_scaling(scaling: Scaling, cfg: NetConfig, data, path: Path, afresh: str) -> None:
    """scaling.json must hold the training data's own mean and std (bpcli computed them from the data config.yaml
    holds): anything else standardises every input wrongly, or overflows."""
    fitted = fit_scaling(parts(cfg, data)[0].x)  # the training rows, as data.prepare fits them
    if not (np.allclose(scaling.std, fitted.std, rtol=1e-9, atol=0)
            and np.allclose(scaling.mean, fitted.mean, rtol=1e-9, atol=1e-9 * fitted.std)):
        raise RunFolderError(f"{path}: damaged (mean and std are not those of the training data in config.yaml){afresh}")


METRIC_NUMBERS = ("loss", "train_metric", "val_loss", "val_metric", "penalty", "seconds")
METRIC_COUNTS = ("epochs", "weights_epoch", "best_epoch")


def metrics_from_json(doc, path: Path, afresh: str = "") -> dict:
    """metrics.json checked by type and range (every number finite and within float range, the counts whole, the
    metric's name one bpcli writes); RunFolderError naming the file and the field if not."""
    def bad(what: str):
        raise RunFolderError(f"{path}: damaged ({what}){afresh}")

    if not isinstance(doc, dict):
        bad("expected a JSON object")
    out = dict(doc)
    for key in METRIC_NUMBERS:
        v = doc.get(key)
        if v is None:
            continue
        if not is_finite_number(v):
            bad(f"{key} is {str(v)[:40]}, expected a finite number")
        out[key] = float(v)
    for key in METRIC_COUNTS:
        v = doc.get(key)
        if v is not None and (isinstance(v, bool) or not isinstance(v, int) or not 0 <= v < 2**53):
            bad(f"{key} is {str(v)[:40]}, expected a whole number of epochs")
    if doc.get("metric") not in (None, "accuracy", "r2"):
        bad(f"metric is {str(doc.get('metric'))[:40]!r}, expected 'accuracy' or 'r2'")
    if doc.get("status") not in (None, *STATUSES):
        bad(f"status is {str(doc.get('status'))[:40]!r}")
    if not isinstance(doc.get("message", ""), str):
        bad("message is not text")
    return out
