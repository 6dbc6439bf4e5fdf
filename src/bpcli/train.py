"""Optimisers and the epoch loop, as a generator of per-epoch records."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import numpy as np

from bpcli.schema import TrainConfig
from bpcli.data import Dataset
from bpcli.engine import backward, cost, forward
from bpcli.model import Network

Array = np.ndarray


@dataclass(frozen=True)
class EpochRecord:
    """What one epoch did. Per-layer tuples are in layer order (A, B, ...)."""

    epoch: int
    loss: float  # mean training cost over the epoch's batches
    val_loss: float | None
    metric: float | None  # training accuracy (classification) or R^2 (regression)
    val_metric: float | None
    grad_norm: tuple[float, ...]  # ||dC/dW|| per layer, mean over the epoch's batches
    weight_norm: tuple[float, ...]  # ||W|| per layer at the end of the epoch
    update_ratio: tuple[float, ...]  # ||W_end - W_start|| / ||W_start|| per layer
    saturation: tuple[float | None, ...]  # share of saturated (sigmoid/tanh) or dead (relu) units, else None
    seconds: float

    def to_dict(self) -> dict:
        return {
            "epoch": self.epoch, "loss": self.loss, "val_loss": self.val_loss, "metric": self.metric,
            "val_metric": self.val_metric, "grad_norm": list(self.grad_norm),
            "weight_norm": list(self.weight_norm), "update_ratio": list(self.update_ratio),
            "saturation": list(self.saturation), "seconds": self.seconds,
        }


@dataclass
class TrainState:
    """Everything needed to continue a run bit for bit: optimiser buffers, step count, RNG, stopping."""

    epoch: int = 0
    step: int = 0
    buffers: dict[str, Array] = field(default_factory=dict)
    rng_state: dict | None = None
    best_val: float = float("inf")
    bad_epochs: int = 0
    status: str = "running"  # running | completed | early_stopped | diverged | interrupted
    message: str = ""


def metric_name(data: Dataset) -> str:
    return "accuracy" if data.task == "classification" else "r2"


def correct_count(y_hat: Array, y: Array) -> int:
    """Samples classified right: threshold 0.5 for one output, argmax otherwise."""
    if y.shape[1] == 1:
        return int(np.count_nonzero((y_hat >= 0.5) == (y >= 0.5)))
    return int(np.count_nonzero(np.argmax(y_hat, axis=1) == np.argmax(y, axis=1)))


def r2_score(y_hat: Array, y: Array) -> float:
    """Coefficient of determination 1 - SS_res / SS_tot, pooled over outputs.

    Pooled (scikit-learn's multioutput='variance_weighted') so that it is the same number the per-epoch
    history accumulates batch by batch; with one output it is the usual R^2.
    """
    ss_res = float(np.sum((y - y_hat) ** 2))
    ss_tot = float(np.sum((y - y.mean(axis=0)) ** 2))
    if not ss_tot > 0:
        return float("nan")
    return 1.0 - ss_res / ss_tot


def evaluate(net: Network, data: Dataset) -> tuple[float, float]:
    """(cost, metric) of the network on a whole data set."""
    with np.errstate(over="ignore", invalid="ignore"):
        y_hat, tape = forward(net, data.x.astype(net.dtype, copy=False))
        c = cost(net, tape, data.y.astype(net.dtype, copy=False))
        if data.task == "classification":
            return c, correct_count(y_hat, data.y) / data.m
        return c, r2_score(y_hat, data.y)


SATURATION_SAMPLES = 512  # mini-batch runs measure saturation on this many training samples, not one batch


def _saturation(net: Network, tape) -> tuple[float | None, ...]:
    """Per layer: share of units saturated (sigmoid/tanh, |f'| tiny on most samples) or dead (relu)."""
    out: list[float | None] = []
    for layer, t in zip(net.layers, tape):
        kind = layer.activation.saturates
        if kind == "sigmoid-like":
            d = layer.activation.grad(t.z, t.a_out)
            peak = 0.25 if layer.activation.name == "sigmoid" else 1.0
            out.append(float(np.mean(np.mean(d < 0.05 * peak, axis=0) > 0.9)))
        elif kind == "relu-like":
            out.append(float(np.mean(np.all(t.z <= 0, axis=0))))
        else:
            out.append(None)
    return tuple(out)


class Optimizer:
    """Gradient descent and friends, updating the network's arrays in place."""

    def __init__(self, net: Network, settings: TrainConfig, buffers: dict[str, Array] | None = None):
        self.s = settings
        self.kind = settings.optimizer
        self.params: list[tuple[str, Array, bool]] = []  # (key, array, is_weight)
        for layer, W, b in zip(net.layers, net.W, net.b):
            self.params.append((f"{layer.letter}.W", W, True))
            if b is not None and layer.bias_trainable:
                self.params.append((f"{layer.letter}.b", b, False))
        self.buffers = buffers if buffers is not None else {}
        if self.kind in ("momentum", "adam"):
            for key, p, _ in self.params:
                self.buffers.setdefault(f"m:{key}", np.zeros_like(p))
                if self.kind == "adam":
                    self.buffers.setdefault(f"v:{key}", np.zeros_like(p))
        self._tmp = [np.empty_like(p) for _, p, _ in self.params]  # scratch: no allocation per step

    def step(self, grads: list[Array], t: int) -> None:
        """Apply one update; grads align with self.params; t is the 1-based step count."""
        s = self.s
        lr = s.lr
        for (key, p, is_w), g, tmp in zip(self.params, grads, self._tmp):
            if g.dtype != p.dtype or g.shape != p.shape:
                self._step_one(key, p, is_w, g, t)  # mixed dtypes: the plain expressions, their promotions
                continue
            if s.weight_decay and is_w:
                np.multiply(p, s.weight_decay, out=tmp)  # g = g + weight_decay * p
                np.add(g, tmp, out=tmp)
                g = tmp
            if self.kind in ("gd", "sgd"):
                np.multiply(g, lr, out=tmp)  # p -= lr * g
                np.subtract(p, tmp, out=p)
            elif self.kind == "momentum":
                v = self.buffers[f"m:{key}"]
                v *= s.momentum
                v += g
                np.multiply(v, lr, out=tmp)  # p -= lr * v
                np.subtract(p, tmp, out=p)
            else:
                self._adam(key, p, g, t)

    def program(self, grads: list[Array]) -> list | None:
        """step() unrolled into (ufunc, args) pairs for these very gradient arrays; None for adam.

        Calling them in order is step(grads, t) bit for bit (constants in the parameters' dtype).
        """
        if self.kind == "adam":
            return None
        s = self.s
        prog: list = []
        for (key, p, is_w), g, tmp in zip(self.params, grads, self._tmp):
            if g.dtype != p.dtype or g.shape != p.shape:
                return None
            c = lambda v: np.array(v, dtype=p.dtype)  # noqa: E731
            if s.weight_decay and is_w:
                prog += [(np.multiply, (p, c(s.weight_decay), tmp)), (np.add, (g, tmp, tmp))]
                g = tmp
            if self.kind == "momentum":
                v = self.buffers[f"m:{key}"]
                prog += [(np.multiply, (v, c(s.momentum), v)), (np.add, (v, g, v))]
                g = v
            prog += [(np.multiply, (g, c(s.lr), tmp)), (np.subtract, (p, tmp, p))]
        return prog

    def _step_one(self, key: str, p: Array, is_w: bool, g: Array, t: int) -> None:
        s = self.s
        if s.weight_decay and is_w:
            g = g + s.weight_decay * p
        if self.kind in ("gd", "sgd"):
            p -= s.lr * g
        elif self.kind == "momentum":
            v = self.buffers[f"m:{key}"]
            v *= s.momentum
            v += g
            p -= s.lr * v
        else:
            self._adam(key, p, g, t)

    def _adam(self, key: str, p: Array, g: Array, t: int) -> None:
        s = self.s
        m, v = self.buffers[f"m:{key}"], self.buffers[f"v:{key}"]
        m *= s.beta1
        m += (1 - s.beta1) * g
        v *= s.beta2
        v += (1 - s.beta2) * (g * g)
        lr_t = s.lr * np.sqrt(1 - s.beta2**t) / (1 - s.beta1**t)
        p -= lr_t * m / (np.sqrt(v) + s.epsilon * np.sqrt(1 - s.beta2**t))


def _norm(a: Array):
    """np.linalg.norm(a) for a float array, without its argument handling: sqrt(a . a).

    A Python float for float64 (math.sqrt rounds as np.sqrt does), a numpy float32 for float32.
    """
    r = a.ravel(order="K")
    s = r.dot(r)
    return math.sqrt(s) if r.dtype == np.float64 else np.sqrt(s)


def _saturation_of(net: Network, Z: list[Array], A: list[Array]) -> tuple[float | None, ...]:
    """The numbers of _saturation, counted instead of averaged (count / m is the division mean does).

    Small layers are counted in Python on the exact values (the threshold in the array's dtype).
    """
    out: list[float | None] = []
    for layer, z, a in zip(net.layers, Z, A):
        kind = layer.activation.saturates
        m, n = z.shape
        if kind == "sigmoid-like":
            d = layer.activation.grad(z, a)
            peak = 0.25 if layer.activation.name == "sigmoid" else 1.0
            if m * n <= 256:
                thr = float(d.dtype.type(0.05 * peak))
                rows = d.tolist()
                out.append(sum(sum(row[j] < thr for row in rows) / m > 0.9 for j in range(n)) / n)
            else:
                frac = np.count_nonzero(d < 0.05 * peak, axis=0) / m
                out.append(np.count_nonzero(frac > 0.9) / n)
        elif kind == "relu-like":
            if m * n <= 256:
                rows = z.tolist()
                out.append(sum(all(row[j] <= 0 for row in rows) for j in range(n)) / n)
            else:
                out.append(np.count_nonzero(np.logical_and.reduce(z <= 0, axis=0)) / n)
        else:
            out.append(None)
    return tuple(out)


def fit(net: Network, train: Dataset, val: Dataset | None, settings: TrainConfig,
        state: TrainState | None = None, should_stop: Callable[[], bool] = lambda: False) -> Iterator[EpochRecord]:
    """Train `net` in place, yielding one EpochRecord per epoch.

    On a NaN or infinite loss the weights are put back to the last finite epoch's and
    state.status becomes 'diverged'. should_stop() is polled after every batch (Ctrl-C).

    Very small float64 networks train in plain Python floats (tiny.py: the same records, to rounding);
    every other step runs through kernels.StepPlan (buffers made once per batch size), bit for bit the
    numbers of engine.forward/backward and the plain optimiser expressions.
    """
    from bpcli import tiny

    state = state or TrainState()
    if tiny.applies(net, train, settings):
        yield from tiny.fit(net, train, val, settings, state, should_stop, _fit_numpy)
    else:
        yield from _fit_numpy(net, train, val, settings, state, should_stop)


def _fit_numpy(net: Network, train: Dataset, val: Dataset | None, settings: TrainConfig, state: TrainState,
               should_stop: Callable[[], bool]) -> Iterator[EpochRecord]:
    """fit through kernels.StepPlan, for every network."""
    from bpcli.kernels import StepPlan

    rng = np.random.default_rng(settings.seed)
    if state.rng_state is not None:
        rng.bit_generator.state = state.rng_state
    opt = Optimizer(net, settings, state.buffers)
    state.buffers = opt.buffers
    dtype = net.dtype
    x = train.x.astype(dtype, copy=False)  # once per fit: never a copy per epoch
    y = train.y.astype(dtype, copy=False)
    m = train.m
    full = settings.batch_size is None or settings.batch_size >= m
    bs = m if full else settings.batch_size
    classification = train.task == "classification"
    ytrue = None
    ss_tot = 0.0
    if classification:
        ytrue = (y >= 0.5) if y.shape[1] == 1 else np.argmax(y, axis=1)
    else:
        ss_tot = float(np.sum((y - y.mean(axis=0)) ** 2))
    plans: dict[int, StepPlan] = {}  # by batch rows: the full batches and the last, smaller one
    updates: dict[int, list | None] = {}  # the optimiser step for each plan's gradients
    n_layers = len(net.layers)
    arrays = _arrays(net)
    good = [a.copy() for a in arrays]  # the last finite epoch's parameters (and this epoch's W0)
    good_W = [good[i] for i in _weight_slots(net)]
    saved_buffers = {k: v.copy() for k, v in opt.buffers.items()}
    diff = [np.empty_like(W) for W in net.W]
    start_norms = [_norm(W) for W in net.W]  # ||W|| at the start of the epoch
    rng_state = rng.bit_generator.state
    while state.epoch < settings.epochs:
        t0 = time.perf_counter()
        for a, keep in zip(arrays, good):
            np.copyto(keep, a)
        for k, v in opt.buffers.items():
            np.copyto(saved_buffers[k], v)
        start_rng, start_step = rng_state, state.step
        order = None if full else rng.permutation(m)
        total_loss, score = 0.0, 0.0
        gnorm = [0.0] * n_layers
        n_batches = 0
        interrupted = False
        # divergence is detected below, explicitly: no overflow warnings for the user
        with np.errstate(over="ignore", invalid="ignore"):
            plan = None
            for start in range(0, m, bs):
                if order is None:
                    xb, yb, yt = x, y, ytrue
                else:
                    idx = order[start:start + bs]
                    xb, yb = x[idx], y[idx]
                    yt = None if ytrue is None else ytrue[idx]
                rows = xb.shape[0]
                plan = plans.get(rows)
                if plan is None:
                    plan = plans[rows] = StepPlan(net, rows, classification)
                    updates[rows] = opt.program(plan.grads)
                if order is None and plan.programmable:
                    loss_sum, s = plan.run_program(xb, yb, yt, gnorm)
                else:
                    loss_sum, s = plan.run(xb, yb, yt, gnorm)
                total_loss += loss_sum
                score += s
                state.step += 1
                update = updates[rows]
                if update is None:
                    opt.step(plan.grads, state.step)
                else:
                    for f, args in update:
                        f(*args)
                n_batches += 1
                if should_stop():
                    interrupted = True
                    break
        if interrupted:
            # roll back to the end of the last whole epoch: weights, optimiser and RNG agree
            for a, keep in zip(arrays, good):
                a[...] = keep
            for k, v in saved_buffers.items():
                opt.buffers[k][...] = v
            state.step = start_step
            state.rng_state = start_rng
            state.status = "interrupted"
            state.message = f"interrupted during epoch {state.epoch + 1}; saved the state after epoch {state.epoch}"
            return
        loss = total_loss / m
        if classification:
            metric = score / m
        else:
            metric = 1.0 - score / ss_tot if ss_tot > 0 else None
        norms = [_norm(W) for W in net.W]
        # a finite ||W|| means every entry is finite; only when one is not do we look closer
        finite = (math.isfinite(loss) and all(math.isfinite(v) for v in norms)
                  and all(math.isfinite(b.dot(b)) for b in net.b if b is not None))
        if not finite:
            finite = np.isfinite(loss) and all(np.all(np.isfinite(a)) for a in arrays)
        if not finite:
            # back to the end of the last finite epoch: weights, optimiser buffers, step count and RNG agree,
            # so the run folder stays loadable and consistent
            for a, keep in zip(arrays, good):
                a[...] = keep
            for k, v in saved_buffers.items():
                opt.buffers[k][...] = v
            state.step = start_step
            state.rng_state = start_rng
            state.status = "diverged"
            state.message = (f"loss became {'NaN' if np.isnan(loss) else 'infinite'} at epoch {state.epoch + 1}; "
                             f"kept the weights of epoch {state.epoch}; try a smaller learning rate "
                             f"(now {settings.lr:g})")
            return
        state.epoch += 1
        val_loss = val_metric = None
        if val is not None:
            val_loss, val_metric = evaluate(net, val)
        ratios = []
        for W, W0, d, n0 in zip(net.W, good_W, diff, start_norms):
            np.subtract(W, W0, out=d)
            ratios.append(float(_norm(d) / max(n0, 1e-12)))
        rec = EpochRecord(
            epoch=state.epoch, loss=loss, val_loss=val_loss, metric=metric, val_metric=val_metric,
            grad_norm=tuple(g / max(n_batches, 1) for g in gnorm),
            weight_norm=tuple(float(v) for v in norms),
            update_ratio=tuple(ratios),
            # a unit is dead when it is off on the data, not on one (maybe tiny) last batch
            saturation=(_saturation_of(net, plan.Z, plan.A) if full
                        else _saturation(net, forward(net, x[:SATURATION_SAMPLES])[1])),
            seconds=time.perf_counter() - t0,
        )
        start_norms = norms
        if not full:
            rng_state = rng.bit_generator.state
        state.rng_state = rng_state
        if val_loss is not None and settings.patience is not None:
            if val_loss < state.best_val - settings.min_delta:
                state.best_val, state.bad_epochs = val_loss, 0
            else:
                state.bad_epochs += 1
        yield rec
        if settings.patience is not None and state.bad_epochs >= settings.patience:
            state.status = "early_stopped"
            state.message = (f"validation loss did not improve for {settings.patience} epochs; "
                             f"stopped at epoch {state.epoch}")
            return
    state.status = "completed"


def _arrays(net: Network) -> list[Array]:
    return [a for pair in zip(net.W, net.b) for a in pair if a is not None]


def _weight_slots(net: Network) -> list[int]:
    """Positions of the W arrays in _arrays(net)."""
    slots, i = [], 0
    for b in net.b:
        slots.append(i)
        i += 1 if b is None else 2
    return slots
