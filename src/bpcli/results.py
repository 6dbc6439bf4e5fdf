"""Result objects shared by the training path: one per command, each with to_dict()."""

from __future__ import annotations

import math
from dataclasses import dataclass


def finite_or_none(v):
    """JSON has no NaN: map non-finite floats (recursively) to None."""
    if isinstance(v, float):
        return v if math.isfinite(v) else None
    if isinstance(v, dict):
        return {k: finite_or_none(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [finite_or_none(x) for x in v]
    return v


@dataclass(frozen=True)
class TrainResult:
    """What `bpcli train` did: status, final numbers, the run folder and the per-epoch history."""

    name: str
    source: str
    run_dir: str | None
    status: str  # completed | early_stopped | diverged | interrupted
    message: str
    epochs: int
    metric_name: str
    loss: float | None
    metric: float | None
    val_loss: float | None
    val_metric: float | None
    seconds: float
    n_train: int
    n_val: int
    history: tuple  # of EpochRecord: the thinned sample (epoch 1, the last, every stride-th; at most ~2,000)
    class_names: tuple[str, ...] | None = None
    weights_epoch: int | None = None  # the epoch whose weights were saved (the best one with early stopping)
    penalty: float | None = None  # the L2 term weight_decay / 2 * sum ||W||^2 at the saved weights
    best_epoch: int | None = None  # the best validation loss's epoch, when early stopping watched it

    @property
    def losses(self) -> list[float]:
        return [r.loss for r in self.history]

    def to_dict(self) -> dict:
        return finite_or_none({
            "command": "train", "name": self.name, "config": self.source, "run_dir": self.run_dir,
            "status": self.status, "message": self.message, "epochs": self.epochs,
            "samples": {"train": self.n_train, "validation": self.n_val},
            "final": {"loss": self.loss, "val_loss": self.val_loss, "metric": self.metric_name,
                      "train_metric": self.metric, "val_metric": self.val_metric, "penalty": self.penalty,
                      "objective": None if self.loss is None else self.loss + (self.penalty or 0.0)},
            "weights_epoch": self.weights_epoch, "best_epoch": self.best_epoch,
            "seconds": self.seconds,
            # the whole history stays in the run folder (history.csv): a long run must not flood stdout
            "history": {"file": None if self.run_dir is None else f"{self.run_dir}/history.csv",
                        "epochs": self.epochs, "first": self.history[0].to_dict() if self.history else None,
                        "last": self.history[-1].to_dict() if self.history else None},
        })
