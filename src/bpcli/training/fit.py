"""The epoch loop (fit, a generator of per-epoch records) and what each epoch measures: cost, metric, saturation."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np

from bpcli.schema import TrainConfig
from bpcli.data.dataset import Dataset, class_labels
from bpcli.nn.engine import Buffers, backward, cost, forward
from bpcli.nn.model import Network
from bpcli.training.optim import Optimizer, l2_coefficient, l2_penalty
from bpcli.training.schedules import epoch_lr, monitored, plateau_step
from bpcli.training.stride import measured, stats_every
from bpcli.training.tally import Tally, metric_of, norm as _norm, score, total_squares

Array = np.ndarray


class EpochRecord(NamedTuple):
    """What one epoch did. Per-layer tuples are in layer order (A, B, ...).

    Immutable, as a frozen dataclass would be, and made every epoch for a third of that one's cost."""

    epoch: int
    loss: float  # mean training data loss over the epoch's batches (the L2 penalty not included)
    val_loss: float | None
    metric: float | None  # training accuracy (classification) or R^2 (regression)
    val_metric: float | None
    grad_norm: tuple[float, ...]  # ||dC/dW|| per layer, mean over the epoch's batches
    weight_norm: tuple[float, ...]  # ||W|| per layer at the end of the epoch
    update_ratio: tuple[float | None, ...]  # ||W_end - W_start|| / ||W_start|| per layer (None: not measured)
    # share of saturated (sigmoid/tanh) or dead (relu) units, None for other activations or when not measured
    saturation: tuple[float | None, ...]
    seconds: float
    # weight_decay / 2 * sum_l ||W_l||^2, mean over the epoch's steps; the objective minimised is loss + penalty
    penalty: float | None = None
    best: bool = False  # the validation loss reached a new best at this epoch (early stopping's watch)
    lr: float | None = None  # the learning rate in force during the epoch (train.schedule's; None: not recorded)
    l1_penalty: float | None = None  # l1 * sum_l sum |W_l|, mean over the epoch's steps (None: no L1 penalty)
    stats_every: int | None = None  # update_ratio and saturation measured every this many epochs (stride.py)

    @property
    def objective(self) -> float:
        return self.loss + (self.penalty or 0.0) + (self.l1_penalty or 0.0)

    def to_dict(self) -> dict:
        return {
            "epoch": self.epoch, "loss": self.loss, "val_loss": self.val_loss, "metric": self.metric,
            "val_metric": self.val_metric, "grad_norm": list(self.grad_norm),
            "weight_norm": list(self.weight_norm), "update_ratio": list(self.update_ratio),
            "saturation": list(self.saturation), "seconds": self.seconds, "penalty": self.penalty,
            "best": self.best, "lr": self.lr, "l1_penalty": self.l1_penalty,
            "stats_every": self.stats_every,
        }


@dataclass
class TrainState:
    """Everything needed to continue a run bit for bit: optimiser buffers, step count, RNG, stopping."""

    epoch: int = 0
    step: int = 0
    buffers: dict[str, Array] = field(default_factory=dict)
    rng_state: dict | None = None
    best_val: float = float("inf")
    best_epoch: int = 0  # the epoch of best_val
    bad_epochs: int = 0
    status: str = "running"  # running | completed | early_stopped | diverged | interrupted
    message: str = ""
    weights_epoch: int | None = None  # which epoch's weights the network holds at the end (None: the last)
    plateau: tuple | None = None  # reduce-on-plateau's (lr, best, bad epochs, cooldown) after the last epoch
    stepped: int | None = None  # the steps `bpcli step --out` took, while the run is as step left it

    BEST = "best:"  # buffers keyed best:A.W ... hold the best validation epoch's parameters (early stopping)


def metric_name(data: Dataset) -> str:
    return "accuracy" if data.task == "classification" else "r2"


def evaluate(net: Network, data: Dataset) -> tuple[float, float | None]:
    """(cost, metric) of the network on a whole data set."""
    with np.errstate(over="ignore", invalid="ignore"):
        y = data.y.astype(net.dtype, copy=False)
        y_hat, tape = forward(net, data.x.astype(net.dtype, copy=False))
        labels = class_labels(data.y) if data.task == "classification" else None
        return cost(net, tape, y), metric_of(score(y_hat, y, labels), data.m, labels, total_squares(data.y))


SATURATION_SAMPLES = 512  # mini-batch runs measure saturation on this many training samples, not one batch


def saturation(net: Network, tape) -> tuple[float | None, ...]:
    """Per layer: share of units saturated (sigmoid/tanh: f'(z) below 5% of its peak on over 90% of the
    samples) or dead (relu: z <= 0 on every sample); None for other activations."""
    out: list[float | None] = []
    for layer, t in zip(net.layers, tape):
        kind = layer.activation.saturates
        m, n = t.z.shape
        if kind == "sigmoid-like":
            d = layer.activation.grad(t.z, t.a_out)
            low = np.add.reduce(d < 0.05 * layer.activation.grad_peak, axis=0)  # samples on which each unit is flat
            out.append(int(np.add.reduce(low / m > 0.9)) / n)
        elif kind == "relu-like":
            out.append(int(np.add.reduce(np.logical_and.reduce(t.z <= 0, axis=0))) / n)
        else:
            out.append(None)
    return tuple(out)


class _Snapshot:
    """The parameters, optimiser buffers, step count and RNG state at the start of an epoch: the one
    rollback, used when an epoch is interrupted or its loss is not finite."""

    def __init__(self, arrays: list[Array], buffers: dict[str, Array]):
        self.arrays = [a.copy() for a in arrays]
        # the optimiser's buffers; the best epoch's copies (TrainState.BEST) only change at a finite epoch's end
        self.buffers = {k: v.copy() for k, v in buffers.items() if not k.startswith(TrainState.BEST)}
        self.step = 0
        self.rng_state: dict | None = None

    def take(self, arrays: list[Array], buffers: dict[str, Array], step: int, rng_state: dict | None) -> None:
        for a, keep in zip(arrays, self.arrays):
            keep[...] = a  # a copy, as np.copyto makes it, for a third of its call's cost on small arrays
        for k, keep in self.buffers.items():
            keep[...] = buffers[k]
        self.step, self.rng_state = step, rng_state

    def restore(self, arrays: list[Array], buffers: dict[str, Array], state: TrainState) -> None:
        for a, keep in zip(arrays, self.arrays):
            np.copyto(a, keep)
        for k, v in self.buffers.items():
            np.copyto(buffers[k], v)
        state.step, state.rng_state = self.step, self.rng_state


def training_rng(settings: TrainConfig, state: TrainState) -> np.random.Generator:
    """The generator that shuffles the mini-batches: seeded from train.seed, or at a saved state."""
    rng = np.random.default_rng(settings.seed)
    if state.rng_state is not None:
        rng.bit_generator.state = state.rng_state
    return rng


def batching(batch_size: int | None, m: int) -> tuple[int, int]:
    """(rows per batch, batches per epoch) for m training rows: full batch when batch_size is None or >= m;
    the last batch of an epoch holds what is left."""
    bs = m if batch_size is None or batch_size >= m else batch_size
    return bs, -(-m // bs)


def epoch_order(rng: np.random.Generator, m: int, batch_size: int | None) -> Array | None:
    """The order one epoch visits the m training rows in: None for full batch, else a fresh permutation;
    batch k (0-based) is rows order[k * batch_size:(k + 1) * batch_size]."""
    return None if batch_size is None or batch_size >= m else rng.permutation(m)


@dataclass
class _Epochs:
    """What fit prepares once and every epoch uses: the training arrays in the network's dtype, the batching,
    the rollback snapshot, and the arrays each epoch's update ratios are measured against."""

    x: Array
    y: Array
    m: int
    bs: int
    every: int  # update ratios and saturation measured every this many epochs
    full: bool
    ytrue: Array | None
    tally: Tally
    wd: float
    l1: float
    arrays: list[Array]
    snap: _Snapshot
    W0: list[Array]  # W at the epoch's start (views of the snapshot's copies)
    diff: list[Array]
    start_norms: list  # ||W|| at the start of the epoch


def _epochs(net: Network, train: Dataset, settings: TrainConfig, opt: Optimizer) -> _Epochs:
    x = train.x.astype(net.dtype, copy=False)  # once per fit: never a copy per epoch
    y = train.y.astype(net.dtype, copy=False)
    m = train.m
    bs, steps = batching(settings.batch_size, m)
    classification = train.task == "classification"
    arrays = [a for pair in zip(net.W, net.b) for a in pair if a is not None]
    snap = _Snapshot(arrays, opt.buffers)
    return _Epochs(
        x=x, y=y, m=m, bs=bs, every=stats_every(steps), full=bs == m,
        ytrue=class_labels(y) if classification else None, tally=Tally(net, y, classification, bs),
        wd=l2_coefficient(settings),  # adamw's decay is no term of the loss: no penalty reported
        l1=settings.l1, arrays=arrays, snap=snap,
        W0=[next(keep for a, keep in zip(arrays, snap.arrays) if a is W) for W in net.W],
        diff=[np.empty_like(W) for W in net.W], start_norms=[_norm(W) for W in net.W],
    )


def fit(net: Network, train: Dataset, val: Dataset | None, settings: TrainConfig,
        state: TrainState | None = None, should_stop: Callable[[], bool] = lambda: False) -> Iterator[EpochRecord]:
    """Train `net` in place, yielding one EpochRecord per epoch.

    Every step is engine.forward and engine.backward into preallocated buffers (one set per batch size),
    then the optimiser's update.  On a NaN or infinite loss the weights are put back to the last finite
    epoch's and state.status becomes 'diverged'. should_stop() is polled after every batch (Ctrl-C).
    """
    state = state or TrainState()
    rng = training_rng(settings, state)
    opt = Optimizer(net, settings, state.buffers)
    state.buffers = opt.buffers
    run = _epochs(net, train, settings, opt)
    x, y, m, bs, ytrue, tally, wd, l1 = run.x, run.y, run.m, run.bs, run.ytrue, run.tally, run.wd, run.l1
    buffers: dict[int, Buffers] = {}  # by batch rows: the full batches and the last, smaller one
    rng_state = rng.bit_generator.state
    while state.epoch < settings.epochs:
        t0 = time.perf_counter()
        lr = epoch_lr(settings, state.epoch + 1, state.plateau)  # the schedule's lr of this epoch
        if lr != opt.lr:
            opt.set_lr(lr)
        run.snap.take(run.arrays, opt.buffers, state.step, rng_state)
        order = epoch_order(rng, m, settings.batch_size)
        tally.reset()
        interrupted = False
        tape = None
        # divergence is detected below, explicitly: no overflow warnings for the user
        with np.errstate(over="ignore", invalid="ignore", divide="ignore", under="ignore"):
            for start in range(0, m, bs):
                if order is None:
                    xb, yb, yt = x, y, ytrue
                    rows = m
                else:
                    idx = order[start:start + bs]
                    # gathers: indexing for the wide inputs, np.take for the narrow targets (each measured faster)
                    xb, yb = x[idx], y.take(idx, axis=0)
                    rows = idx.size
                    yt = None  # a mini-batch's labels are not gathered: Tally.close reads the epoch's at once
                buf = buffers.get(rows)
                if buf is None:
                    buf = buffers[rows] = Buffers(net, rows)
                _, tape = forward(net, xb, buf)
                grads = backward(net, tape, yb, buf)
                tally.add(net, tape, yb, yt, grads, start)
                if wd:  # the L2 term of the objective at the weights this step's gradient was taken at
                    tally.penalty += l2_penalty(net.W, wd)
                if l1:  # the L1 term, likewise
                    tally.l1_penalty += l1 * sum(float(np.add.reduce(np.abs(W), axis=None)) for W in net.W)
                state.step += 1
                opt.step(opt.gradients(grads), state.step, spent=True, block=buf.grad)  # the tally has read them
                if should_stop():
                    interrupted = True
                    break
        if interrupted:
            # back to the end of the last whole epoch: weights, optimiser and RNG agree
            _roll_back(run, opt, state, "interrupted",
                       f"interrupted during epoch {state.epoch + 1}; saved the state after epoch {state.epoch}")
            return
        rec = _close_epoch(run, net, val, settings, state, opt, order, tape, t0, lr)
        if rec is None:  # diverged: rolled back to the last finite epoch
            return
        if not run.full:
            rng_state = rng.bit_generator.state
        state.rng_state = rng_state
        yield rec
        if _patience_out(state, settings):
            state.status = "early_stopped"
            state.message = (f"{_watched(settings)} did not improve for {settings.patience} epochs; "
                             f"stopped at epoch {state.epoch}")
            _end_on_best(net, state, settings)
            return
    state.status = "completed"
    _end_on_best(net, state, settings)


def _roll_back(run: _Epochs, opt: Optimizer, state: TrainState, status: str, message: str) -> None:
    """Put weights, optimiser buffers, step count and RNG back to the epoch's start, and say why."""
    run.snap.restore(run.arrays, opt.buffers, state)
    state.status = status
    state.message = message


def _close_epoch(run: _Epochs, net: Network, val: Dataset | None, settings: TrainConfig, state: TrainState,
                 opt: Optimizer, order: Array | None, tape, t0: float, lr: float) -> EpochRecord | None:
    """The bookkeeping after an epoch's last batch: its record (loss, metrics, norms, update ratios, saturation),
    early stopping's watch and the plateau schedule's step; None, rolled back, when the epoch diverged."""
    tally, m = run.tally, run.m
    tally.close(net, run.y, run.ytrue, order)
    loss = tally.loss / m
    norms = [_norm(W) for W in net.W]
    what = _divergence(loss, norms, net, run.arrays, opt.buffers)
    if what:
        # back to the end of the last finite epoch, so the run folder stays loadable and consistent
        _roll_back(run, opt, state, "diverged",
                   f"{what} at epoch {state.epoch + 1}; "
                   f"kept the weights of epoch {state.epoch}; try a smaller learning rate "
                   f"(now {opt.lr:g})")
        return None
    state.epoch += 1
    val_loss = val_metric = None
    if val is not None:
        val_loss, val_metric = evaluate(net, val)
    improved = _watch_best(net, state, settings, val_loss if settings.stop_monitor == "val_loss" else val_metric)
    ratios = sat = (None,) * len(norms)
    if measured(state.epoch, run.every):
        ratios = tuple(float(_norm(np.subtract(W, W_start, out=d)) / max(n0, 1e-12))
                       for W, W_start, d, n0 in zip(net.W, run.W0, run.diff, run.start_norms))
        # a unit is dead when it is off on the data, not on one (maybe tiny) last batch
        sat = saturation(net, tape if run.full else forward(net, run.x[:SATURATION_SAMPLES])[1])
    rec = EpochRecord(
        epoch=state.epoch, loss=loss, val_loss=val_loss, metric=tally.metric(m, run.ytrue), val_metric=val_metric,
        grad_norm=tuple([g / max(tally.batches, 1) for g in tally.grad_norm]),
        weight_norm=tuple(map(float, norms)),
        update_ratio=ratios, saturation=sat, seconds=time.perf_counter() - t0,
        penalty=tally.penalty / tally.batches if run.wd else None,
        best=improved, lr=lr, l1_penalty=tally.l1_penalty / tally.batches if run.l1 else None,
        stats_every=run.every,
    )
    if settings.schedule is not None and settings.schedule.name == "plateau":  # the lr of the next epoch
        state.plateau = plateau_step(settings.schedule, settings.lr, state.plateau,
                                     monitored(settings.schedule, rec.loss, val_loss, rec.metric, val_metric))
    run.start_norms = norms
    return rec


def _divergence(loss: float, norms: list, net: Network, arrays: list[Array], buffers: dict[str, Array]) -> str:
    """What went wrong when the epoch's loss, a weight or an optimiser buffer is not finite; '' when all are."""
    # a finite ||W|| means every entry is finite, and a finite sum means every term is (the terms are >= 0 or NaN);
    # only when it is not (an overflow of the sum itself included) do we look closer
    finite = math.isfinite(loss + sum(map(float, norms)) + sum(float(b.dot(b)) for b in net.b if b is not None))
    if not finite:
        finite = np.isfinite(loss) and all(np.all(np.isfinite(a)) for a in arrays)
    # the optimiser's buffers too (Adam's v holds squared gradients: 1e155 squared is inf while every
    # weight and the loss are finite); a run saved with them could not be loaded or resumed
    state_ok = not buffers or all(math.isfinite(float(np.sum(b))) for b in buffers.values()) or all(
        np.all(np.isfinite(b)) for b in buffers.values())
    if finite and state_ok:
        return ""
    return ("the optimiser's running averages overflowed" if finite
            else f"loss became {'NaN' if np.isnan(loss) else 'infinite'}")


def _patience_out(state: TrainState, settings: TrainConfig) -> bool:
    return settings.patience is not None and state.bad_epochs >= settings.patience


def stops_after(state: TrainState, settings: TrainConfig) -> bool:
    """True at the epoch fit stops after of itself (told at its yield): the epoch count reached, or early
    stopping's patience run out."""
    return state.epoch >= settings.epochs or _patience_out(state, settings)


def _watch_best(net: Network, state: TrainState, settings: TrainConfig, value: float | None) -> bool:
    """Early stopping's bookkeeping after a finite epoch: True when the watched value (val_loss or val_metric) is a
    new best: the first watched epoch's, then (mode min) below best - min_delta or (max) above best + min_delta.
    Epochs up to train.early_stopping.start are not watched. On a new best, with restore_best, the parameters are
    kept as TrainState.BEST buffers, saved with the run; otherwise the bad epochs count up."""
    if value is None or settings.patience is None or state.epoch <= settings.stop_start:
        return False
    first = state.best_epoch <= settings.stop_start  # nothing watched yet: any finite value is the best so far
    better = (first or (value < state.best_val - settings.min_delta
                                              if settings.stop_mode == "min" else
                                              value > state.best_val + settings.min_delta))
    if not better:
        state.bad_epochs += 1
        return False
    state.best_val, state.best_epoch, state.bad_epochs = value, state.epoch, 0
    if settings.restore_best:
        for key, a in net.named_arrays().items():
            keep = state.buffers.get(TrainState.BEST + key)
            if keep is None:
                state.buffers[TrainState.BEST + key] = a.copy()
            else:
                np.copyto(keep, a)
    return True


def _end_on_best(net: Network, state: TrainState, settings: TrainConfig) -> None:
    """With early stopping and restore_best, put back the best validation epoch's parameters (as
    scikit-learn's MLP does), and say which epoch the saved weights are from."""
    if settings.patience is None or not settings.restore_best or state.best_epoch <= 0:
        return
    state.weights_epoch = state.best_epoch
    if state.best_epoch == state.epoch:
        return
    for key, a in net.named_arrays().items():
        np.copyto(a, state.buffers[TrainState.BEST + key])
    state.message = ((state.message + "; ") if state.message else "") + (
        f"restored the weights of epoch {state.best_epoch}, the best {_watched(settings)} ({state.best_val:.6g})")


def _watched(settings: TrainConfig) -> str:
    return "validation loss" if settings.stop_monitor == "val_loss" else "validation metric"
