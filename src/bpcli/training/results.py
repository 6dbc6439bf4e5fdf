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


def settings_of(cfg) -> dict:
    """The training settings a run used (a NetConfig after the command line's overrides), as plain data."""
    from bpcli.training.optim import hyper_of, l1_of
    t, d = cfg.train, cfg.data
    out = {"optimizer": t.optimizer, "lr": t.lr, "batch_size": t.batch_size, "epochs": t.epochs, **dict(hyper_of(t))}
    out["weight_decay"] = t.weight_decay
    out.update(l1_of(t))  # "l1" only when the L1 penalty is on
    if t.schedule is not None:
        out["schedule"] = t.schedule.to_dict()
    out["early_stopping"] = None if t.patience is None else {**t.stop_watch(), "patience": t.patience, "min_delta": t.min_delta,
                                                             "restore_best": t.restore_best}
    # init: the initial weights; train: the mini-batch shuffling; data: a generator's samples; split: validation
    out["seeds"] = {"init": cfg.init.seed, "train": t.seed, "data": d.seed if d.source == "generator" else None,
                    "split": d.split_seed if d.validation else None}
    if d.test:
        out["seeds"]["test"] = d.test_seed
    out["dtype"] = t.dtype
    return out


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
    settings: dict | None = None  # settings_of(the config it trained with)
    n_test: int = 0  # data.test's rows: held out, scored by `bpcli evaluate RUN --part test` only
    l1_penalty: float | None = None  # the L1 term l1 * sum |W| at the saved weights

    @property
    def losses(self) -> list[float]:
        return [r.loss for r in self.history]

    @property
    def loss_rose(self) -> bool:
        """The data loss at the saved weights is above epoch 1's (for full batch: the loss at the initial weights),
        or is not finite: the run made things worse, whatever its status says."""
        if not self.history:
            return False
        if self.loss is None or not math.isfinite(self.loss):
            return True
        return self.loss > self.history[0].loss

    def to_dict(self, history_rows: list[dict] | None = None) -> dict:
        """The summary; history_rows (every epoch, as in history.csv) only when asked for."""
        history = {"file": None if self.run_dir is None else f"{self.run_dir}/history.csv",
                   "epochs": self.epochs, "first": self.history[0].to_dict() if self.history else None,
                   "last": self.history[-1].to_dict() if self.history else None}
        if history_rows is not None:
            history["rows"] = history_rows
        return finite_or_none({
            "command": "train", "name": self.name, "config": self.source, "run_dir": self.run_dir,
            "status": self.status, "message": self.message, "epochs": self.epochs,
            "settings": self.settings, "loss_rose": self.loss_rose,
            "samples": {"train": self.n_train, "validation": self.n_val, "test": self.n_test},
            "final": {"loss": self.loss, "val_loss": self.val_loss, "metric": self.metric_name,
                      "train_metric": self.metric, "val_metric": self.val_metric, "penalty": self.penalty,
                      "l1_penalty": self.l1_penalty,
                      "objective": None if self.loss is None else
                      self.loss + (self.penalty or 0.0) + (self.l1_penalty or 0.0)},
            "weights_epoch": self.weights_epoch, "best_epoch": self.best_epoch,
            "seconds": self.seconds,
            # the whole history stays in the run folder (history.csv), unless asked for: a long run must not
            # flood stdout
            "history": history,
        })


@dataclass(frozen=True)
class InitResult:
    """What `bpcli init` wrote: the starter config (and any CSV beside it), or with --list the examples."""

    example: str | None = None
    written: str | None = None
    copied: tuple[str, ...] = ()
    examples: tuple[tuple[str, str], ...] | None = None  # (name, one-sentence description), with --list

    def to_dict(self) -> dict:
        if self.examples is not None:
            return {"command": "init", "examples": [{"name": n, "description": d} for n, d in self.examples]}
        return {"command": "init", "example": self.example, "written": self.written, "copied": list(self.copied),
                "next": f"bpcli train {self.written}"}


def example_summary(text: str) -> str:
    """The first sentence of a shipped config's opening comment (its prose lines, not the indented examples)."""
    words: list[str] = []
    for line in text.splitlines():
        if not line.startswith("# ") or line.startswith("#  "):
            break
        words += line[2:].split()
    for i, w in enumerate(words):
        if w.endswith(".") and not w.endswith(".."):
            return " ".join(words[:i + 1])
    return " ".join(words)
