"""bpcli step: K optimiser steps from a network's weights, taken by training.fit; every parameter before and after.

A step is one optimiser update: one epoch with full-batch training, one mini-batch (in the config's seeded shuffle)
otherwise. The steps run on copies: nothing is written unless save_steps is called, which writes a run folder
through the training session (so `bpcli train --resume` continues it bit for bit).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from bpcli.data.dataset import Prepared
from bpcli.nn.engine import backward, forward
from bpcli.errors import BpcliError
from bpcli.nn.model import LISTED_PARAMS, Network
from bpcli.training.optim import TERMS, hyper_of, l1_of, preview_step
from bpcli.training.schedules import in_force
from bpcli.schema import NetConfig
from bpcli.training.fit import TrainState, batching, epoch_order, evaluate, fit, training_rng

MAX_STEPS = 10_000_000


@dataclass(frozen=True)
class ParamStep:
    """One scalar parameter: its value, the first step's gradient, the change the steps made and the new value.

    terms: the first step's optimiser terms (optim.TERMS: g, the velocity v, Adam's m, v, m_hat, v_hat, ...)."""

    name: str
    layer: str
    kind: str  # weight | bias
    trainable: bool
    value: float
    gradient: float
    update: float  # new - value
    new: float
    terms: tuple[tuple[str, float], ...]

    def to_dict(self) -> dict:
        return {"name": self.name, "layer": self.layer, "kind": self.kind, "trainable": self.trainable,
                "value": self.value, "gradient": self.gradient, "update": self.update, "new": self.new,
                "first_step": dict(self.terms)}


@dataclass(frozen=True)
class StepResult:
    """What `bpcli step` shows: K steps of the configured optimiser, per parameter, and the cost before and after."""

    name: str
    source: str
    optimizer: str
    lr: float
    hyper: tuple[tuple[str, float], ...]  # momentum, or beta1, beta2, epsilon
    weight_decay: float
    steps: int  # steps taken
    batch: int  # samples per step
    samples: int  # training samples
    steps_per_epoch: int
    start_epoch: int
    start_step: int  # optimiser steps taken before these
    end_epoch: float  # whole epochs, or e.g. 1.25 a quarter into the second
    cost_before: float
    cost_after: float
    metric: str
    metric_before: float | None
    metric_after: float | None
    params: tuple[ParamStep, ...]  # those asked for, else the first LISTED of the network's n_params
    status: str  # ok | diverged (exit 1) | stopped (early stopping ended the steps sooner)
    message: str
    out: str | None = None  # the run folder written with --out
    n_params: int | None = None  # the network's parameters (None: those asked for with --weight)
    explain_with: str = ""  # explain's arguments for the same weights and state: 'runs/seed --epoch 100'

    @property
    def exit_code(self) -> int:
        return 1 if self.status == "diverged" else 0

    def to_dict(self) -> dict:
        return {
            "command": "step", "name": self.name, "source": self.source, "status": self.status,
            "message": self.message, "optimizer": self.optimizer, "lr": self.lr, **dict(self.hyper),
            "weight_decay": self.weight_decay, "steps": self.steps, "batch": self.batch, "samples": self.samples,
            "steps_per_epoch": self.steps_per_epoch,
            "start": {"epoch": self.start_epoch, "step": self.start_step},
            "end": {"epoch": self.end_epoch, "step": self.start_step + self.steps},
            "cost": {"before": self.cost_before, "after": self.cost_after},
            "metric": {"name": self.metric, "before": self.metric_before, "after": self.metric_after},
            "parameters": [p.to_dict() for p in self.params], "out": self.out,
        } | ({"n_params": self.n_params, "parameters_listed": len(self.params)}
             if self.n_params is not None and len(self.params) < self.n_params else {})


def steps_per_epoch(cfg: NetConfig, m: int) -> tuple[int, int]:
    """(samples per step, steps per epoch) for m training samples."""
    return batching(cfg.train.batch_size, m)


def check_steps(k: int, cfg: NetConfig, m: int, out: Path | None) -> None:
    """BpcliError for a step count out of range, or one that --out cannot save (not a whole number of epochs)."""
    if not 1 <= k <= MAX_STEPS:
        raise BpcliError(f"--steps: give 1 to {MAX_STEPS:,}, found {k}")
    batch, per = steps_per_epoch(cfg, m)
    if out is not None and k % per:
        raise BpcliError(f"--out: {k} steps is not a whole number of epochs (an epoch is {per} steps, batches of "
                         f"{batch} of the {m} samples); a run folder holds the state at the end of an epoch, where "
                         f"the next epoch's shuffle starts, so only that can be continued: give --steps as a "
                         f"multiple of {per}, or no --out")


def _copy_state(state: TrainState | None) -> TrainState:
    if state is None:
        return TrainState()
    # training goes on from here, as train --resume has it: running, no message of the last stop
    return replace(state, buffers={k: v.copy() for k, v in state.buffers.items()}, status="running", message="")


def check_one_state(run_dir, state: TrainState | None, command: str, then: str = "") -> None:
    """Refuse a run whose saved weights and optimiser state are of different epochs (early stopping's restore_best
    put back the best epoch's weights after later epochs moved the optimiser on): no training step starts from
    that pair, so neither `step` nor `explain`'s update may.  BpcliError naming the --epoch values that work, with
    the command to type (`then`: what follows it, e.g. explain's -w v11)."""
    if state is None or state.weights_epoch in (None, state.epoch):
        return
    from bpcli.runs.snapshots import available_epochs
    best, last = state.weights_epoch, state.epoch
    kept = set(available_epochs(run_dir))
    ways = ([f"--epoch {best} (the best epoch: its weights with its own optimiser state)"] if best in kept else []) + \
        ([f"--epoch {last} (the last epoch's weights and state, as training left them)"] if last in kept else [])
    example = f"bpcli {command} {run_dir} --epoch {best if best in kept else last}{then}"
    hint = (f"; add {' or '.join(ways)}, e.g. `{example}`"
            if ways else "; the run keeps neither epoch's snapshot, so train it again with train.snapshots on")
    raise BpcliError(f"{run_dir} holds the weights of epoch {best} (its best, put back by early stopping) and the "
                     f"optimiser state of epoch {last}: no training step starts from that pair{hint}")


def take_steps(cfg: NetConfig, net: Network, prepared: Prepared, state: TrainState | None, k: int,
               source: str = "", names: list[str] | None = None) -> StepResult:
    """K steps of cfg's optimiser from `net` and the optimiser state `state` (None: a config's initial state),
    taken by training.fit on copies (mini-batches in the seeded shuffle, exactly as `bpcli train`).

    The first step is also taken with optim.preview_step on the first batch, for its gradient and terms.
    names: the parameters to list (any spelling net.resolve takes); None: the first LISTED.
    """
    train = prepared.train
    m = train.m
    check_steps(k, cfg, m, None)
    batch, per = steps_per_epoch(cfg, m)
    st = _copy_state(state)
    start_epoch, start_step = st.epoch, st.step
    # the first step's batch: the first of the next epoch's order, drawn as fit draws it
    order = epoch_order(training_rng(cfg.train, st), m, cfg.train.batch_size)
    rows = slice(None) if order is None else order[:batch]
    x, y = train.x.astype(net.dtype)[rows], train.y.astype(net.dtype)[rows]
    with np.errstate(all="ignore"):
        grads = backward(net, forward(net, x)[1], y)
        first = preview_step(net, in_force(cfg.train, st.epoch, st.plateau), grads, st.buffers, st.step)
    after, taken, status, message = _drive_fit(cfg, net.copy(), prepared, st, k, per)
    with np.errstate(all="ignore"):
        (cost0, metric0), (cost1, metric1) = evaluate(net, train), evaluate(after, train)
    params = []
    if names:  # each once, in the network's order
        asked = {r.name: r for r in map(net.resolve, names)}.values()
        refs = sorted(asked, key=lambda r: (r.layer, r.kind != "W", r.to_node or 0, r.from_node or 0))
    else:
        refs = itertools.islice(net.iter_param_refs(), LISTED_PARAMS)
    for ref in refs:
        layer = net.layers[ref.layer]
        key = f"{layer.letter}.{ref.kind}"
        old, new = float(net.get(ref)), float(after.get(ref))
        g = (grads.dW[ref.layer] if ref.kind == "W" else grads.db[ref.layer])[ref.index]
        rec = first.get(key, {})
        terms = tuple((t, float(rec[t][ref.index])) for t in TERMS[cfg.train.optimizer]
                      if t in rec and t not in ("value", "gradient", "new"))
        params.append(ParamStep(ref.name, layer.letter, "weight" if ref.kind == "W" else "bias", key in first,
                                old, float(g), new - old, new, terms))
    if status == "ok" and not (all(np.all(np.isfinite(a)) for a in after.named_arrays().values())
                               and math.isfinite(cost1)):
        status, message = "diverged", "a value became infinite or NaN: try a smaller learning rate"
    s = in_force(cfg.train, start_epoch, state.plateau if state else None)  # the lr of the first step's epoch
    return StepResult(
        cfg.name, source, s.optimizer, s.lr, hyper_of(s) + l1_of(s), s.weight_decay, taken, batch, m, per, start_epoch, start_step,
        start_epoch + (taken // per if taken % per == 0 else taken / per), cost0, cost1,
        "accuracy" if train.task == "classification" else "r2", metric0, metric1, tuple(params), status, message,
        n_params=None if names else net.n_params)


def _drive_fit(cfg: NetConfig, net: Network, prepared: Prepared, state: TrainState, k: int,
               per: int) -> tuple[Network, int, str, str]:
    """(net after K steps of training.fit, steps taken, ok | diverged | stopped, why): fit polls should_stop after every
    step, which keeps the parameters after step K and then stops fit (mid-epoch at once; after a whole epoch at the
    next step, fit then putting back the state at the epoch's end). Fit may end otherwise: at the config's last
    epoch, by early stopping or on divergence; then its weights and its message stand."""
    epochs = state.epoch + math.ceil(k / per)
    settings = replace(cfg.train, epochs=max(cfg.train.epochs, epochs))
    start = state.step
    calls = 0
    kept: list[np.ndarray] = []

    def should_stop() -> bool:
        nonlocal calls
        calls += 1
        if calls == k:
            kept.extend(a.copy() for a in net.named_arrays().values())
            return k % per != 0
        return calls > k

    for _ in fit(net, prepared.train, prepared.val, settings, state, should_stop):
        pass
    out = net.copy()
    if state.status == "completed":  # the steps reached the config's last epoch: training ended as it does
        return out, state.step - start, "ok", state.message  # (restore_best may have put back the best epoch)
    if state.status == "interrupted" or (kept and state.status == "diverged"):  # stopped by should_stop, or the
        for a, keep in zip(out.named_arrays().values(), kept):  # values that became infinite at step K
            np.copyto(a, keep)
        return out, k, "ok" if state.status == "interrupted" else "diverged", ""
    return out, state.step - start, "diverged" if state.status == "diverged" else "stopped", state.message


def save_steps(target: str | None, run_dir: Path | None, epoch: int | None, k: int, per: int, out: Path,
               overwrite: bool) -> None:
    """Write the state after K whole-epoch steps as a run folder at `out`, through the training session: the config
    trained (or the run `run_dir`, at `epoch` or its checkpoint, branched into `out`: the run itself is never
    rewritten) and stopped after the K steps' epochs, status interrupted when its epoch count is not reached, so
    `bpcli train --resume out` continues it exactly as training would have."""
    from bpcli.config.loader import with_overrides
    from bpcli.runs.store import load_run
    from bpcli.runs.session import open_session, run_training

    stop = _stop_after(k)
    if run_dir is None:
        s = open_session(target, out=out, overwrite=overwrite)
        cfg = with_overrides(s.cfg, epochs=k // per) if k // per > s.cfg.train.epochs else s.cfg
        run_training(cfg, s.data, out, should_stop=stop, overwrite=overwrite, stepped=k)
        return
    from bpcli.runs.claim import check_target
    check_target(out, overwrite)
    loaded = load_run(run_dir, epoch)
    if loaded.epoch is None:  # the checkpoint: a branch from its own epoch, history and snapshots carried over
        loaded = replace(loaded, epoch=loaded.state.epoch)
    epochs = loaded.state.epoch + k // per
    cfg = with_overrides(loaded.cfg, epochs=epochs) if epochs > loaded.cfg.train.epochs else loaded.cfg
    run_training(cfg, None, out, should_stop=stop, resume=loaded, overwrite=overwrite, stepped=k)


def _stop_after(k: int):
    """should_stop for fit: stop at the step after the K-th (fit then keeps the state at the end of that epoch)."""
    calls = 0

    def should_stop() -> bool:
        nonlocal calls
        calls += 1
        return calls > k

    return should_stop
