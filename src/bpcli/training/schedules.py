"""Learning-rate schedules: the lr in force in each epoch (step, exponential, cosine) and reduce-on-plateau's rule."""

from __future__ import annotations

import math
from dataclasses import replace

from bpcli.schema import ScheduleConfig, TrainConfig

# reduce-on-plateau's state after an epoch: (lr of the next epoch, best monitored value (None: none yet), bad epochs,
# cooldown left), kept in TrainState.plateau, saved with every checkpoint (run.json) and snapshot
Plateau = tuple[float, float | None, int, int]
PLATEAU_EPS = 1e-8  # a reduction smaller than this is not made (PyTorch's ReduceLROnPlateau eps)


def epoch_lr(s: TrainConfig, epoch: int, plateau: Plateau | None = None) -> float:
    """The learning rate in force during `epoch` (1-based): train.lr without a schedule; with one, as PyTorch's
    scheduler stepped once after each epoch gives it (t = epoch - 1 epochs done):
    step: lr * gamma^floor(t / step_size); exponential: lr * gamma^t;
    cosine: eta_min + (lr - eta_min) (1 + cos(pi t / t_max)) / 2; plateau: the lr its rule left (plateau[0])."""
    c = s.schedule
    if c is None:
        return s.lr
    t = epoch - 1
    if c.name == "step":
        return s.lr * c.gamma ** (t // c.step_size)
    if c.name == "exponential":
        return s.lr * c.gamma ** t
    if c.name == "cosine":
        return c.eta_min + (s.lr - c.eta_min) * (1 + math.cos(math.pi * t / c.t_max)) / 2
    return s.lr if plateau is None else plateau[0]


def in_force(s: TrainConfig, epochs_done: int = 0, plateau: Plateau | None = None) -> TrainConfig:
    """The settings of training's next step after `epochs_done` epochs: lr the schedule's lr of the next epoch
    (explain's and step's update use it)."""
    return s if s.schedule is None else replace(s, lr=epoch_lr(s, epochs_done + 1, plateau))


def schedule_note(s: TrainConfig, epochs_done: int = 0, plateau: Plateau | None = None) -> str:
    """'lr 0.025: the step schedule's lr in epoch 3 (train.lr 0.05)', or '' without a schedule."""
    if s.schedule is None:
        return ""
    return (f"lr {epoch_lr(s, epochs_done + 1, plateau):.6g}: the {s.schedule.name} schedule's lr in epoch "
            f"{epochs_done + 1} (train.lr {s.lr:g})")


def monitored(c: ScheduleConfig, loss: float, val_loss: float | None, metric: float | None,
              val_metric: float | None) -> float | None:
    """The epoch's value reduce-on-plateau watches (c.monitor: loss, val_loss, metric or val_metric)."""
    return {"loss": loss, "val_loss": val_loss, "metric": metric, "val_metric": val_metric}[c.monitor]


def plateau_step(c: ScheduleConfig, lr: float, state: Plateau | None, value: float | None) -> Plateau:
    """Reduce-on-plateau after an epoch whose monitored value is `value` (PyTorch's rule): a value better than the
    best (min: below best * (1 - threshold) for rel, best - threshold for abs; max: above) resets the bad epochs,
    else they count up; in a cooldown they stay 0; more than `patience` bad epochs multiply the lr by factor (not
    below min_lr), start the cooldown and reset the count. lr: train.lr, used before the first epoch."""
    lr_now, best, bad, cool = state if state is not None else (lr, None, 0, 0)
    if value is not None and _better(c, value, best):
        best, bad = value, 0
    else:
        bad += 1
    if cool > 0:
        cool, bad = cool - 1, 0
    if bad > c.patience:
        new = max(lr_now * c.factor, c.min_lr)
        if lr_now - new > PLATEAU_EPS:
            lr_now, cool, bad = new, c.cooldown, 0
    return (lr_now, best, bad, cool)


def _better(c: ScheduleConfig, a: float, best: float | None) -> bool:
    if best is None:  # PyTorch's best starts at inf (-inf for max): any finite value is better
        return True
    if c.mode == "min":
        return a < (best * (1 - c.threshold) if c.threshold_mode == "rel" else best - c.threshold)
    return a > (best * (1 + c.threshold) if c.threshold_mode == "rel" else best + c.threshold)
