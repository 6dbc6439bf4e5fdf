"""A frozen copy of the straightforward trainer (bpcli 0.1 train.fit before the fast path): the reference the fast path must match bit for bit."""
from __future__ import annotations

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
    """Coefficient of determination pooled over outputs (scikit-learn's 'variance_weighted')."""
    ss_res = float(np.sum((y - y_hat) ** 2))
    ss_tot = float(np.sum((y - y.mean(axis=0)) ** 2))
    if not ss_tot > 0:
        return float("nan")
    return 1.0 - ss_res / ss_tot


def evaluate(net: Network, data: Dataset) -> tuple[float, float]:
    """(cost, metric) of the network on a whole data set."""
    y_hat, _ = forward(net, data.x.astype(net.dtype, copy=False))
    c = cost(net, y_hat, data.y.astype(net.dtype, copy=False))
    if data.task == "classification":
        return c, correct_count(y_hat, data.y) / data.m
    return c, r2_score(y_hat, data.y)


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

    def step(self, grads: list[Array], t: int) -> None:
        """Apply one update; grads align with self.params; t is the 1-based step count."""
        s = self.s
        lr = s.lr
        for (key, p, is_w), g in zip(self.params, grads):
            if s.weight_decay and is_w:
                g = g + s.weight_decay * p
            if self.kind in ("gd", "sgd"):
                p -= lr * g
            elif self.kind == "momentum":
                v = self.buffers[f"m:{key}"]
                v *= s.momentum
                v += g
                p -= lr * v
            else:
                m, v = self.buffers[f"m:{key}"], self.buffers[f"v:{key}"]
                m *= s.beta1
                m += (1 - s.beta1) * g
                v *= s.beta2
                v += (1 - s.beta2) * (g * g)
                lr_t = lr * np.sqrt(1 - s.beta2**t) / (1 - s.beta1**t)
                p -= lr_t * m / (np.sqrt(v) + s.epsilon * np.sqrt(1 - s.beta2**t))


def fit(net: Network, train: Dataset, val: Dataset | None, settings: TrainConfig,
        state: TrainState | None = None, should_stop: Callable[[], bool] = lambda: False) -> Iterator[EpochRecord]:
    """Train `net` in place, yielding one EpochRecord per epoch.

    On a NaN or infinite loss the weights are put back to the last finite epoch's and
    state.status becomes 'diverged'. should_stop() is polled after every batch (Ctrl-C).
    """
    state = state or TrainState()
    rng = np.random.default_rng(settings.seed)
    if state.rng_state is not None:
        rng.bit_generator.state = state.rng_state
    opt = Optimizer(net, settings, state.buffers)
    state.buffers = opt.buffers
    dtype = net.dtype
    x = train.x.astype(dtype, copy=False)
    y = train.y.astype(dtype, copy=False)
    m = train.m
    full = settings.batch_size is None or settings.batch_size >= m
    bs = m if full else settings.batch_size
    classification = train.task == "classification"
    good = [a.copy() for a in _arrays(net)]
    n_layers = len(net.layers)
    while state.epoch < settings.epochs:
        t0 = time.perf_counter()
        start_W = [W.copy() for W in net.W]
        start_rng, start_step = rng.bit_generator.state, state.step
        start_buffers = {k: v.copy() for k, v in opt.buffers.items()} if opt.buffers else {}
        if full:
            order = None
        else:
            order = rng.permutation(m)
        total_loss, correct, ss_res = 0.0, 0, 0.0
        gnorm = np.zeros(n_layers)
        n_batches = 0
        interrupted = False
        last_tape = None
        for start in range(0, m, bs):
            if order is None:
                xb, yb = x, y
            else:
                idx = order[start:start + bs]
                xb, yb = x[idx], y[idx]
            y_hat, tape = forward(net, xb)
            total_loss += float(np.sum(net.loss.value(y_hat, yb)))
            if classification:
                correct += correct_count(y_hat, yb)
            else:
                ss_res += float(np.sum((yb - y_hat) ** 2))
            g = backward(net, tape, yb)
            grads = []
            for layer, dW, db in zip(net.layers, g.dW, g.db):
                grads.append(dW)
                if db is not None and layer.bias_trainable:
                    grads.append(db)
            gnorm += [float(np.sqrt(np.sum(dW * dW))) for dW in g.dW]
            state.step += 1
            opt.step(grads, state.step)
            n_batches += 1
            last_tape = tape
            if should_stop():
                interrupted = True
                break
        if interrupted:
            # roll back to the end of the last whole epoch: weights, optimiser and RNG agree
            for a, keep in zip(_arrays(net), good):
                a[...] = keep
            for k, v in start_buffers.items():
                opt.buffers[k][...] = v
            state.step = start_step
            state.rng_state = start_rng
            state.status = "interrupted"
            state.message = f"interrupted during epoch {state.epoch + 1}; saved the state after epoch {state.epoch}"
            return
        loss = total_loss / m
        if classification:
            metric = correct / m
        else:
            ss_tot = float(np.sum((y - y.mean(axis=0)) ** 2))
            metric = 1.0 - ss_res / ss_tot if ss_tot > 0 else None
        finite = np.isfinite(loss) and all(np.all(np.isfinite(a)) for a in _arrays(net))
        if not finite:
            for a, keep in zip(_arrays(net), good):
                a[...] = keep
            for k, v in start_buffers.items():  # the run folder stays consistent and loadable
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
        rec = EpochRecord(
            epoch=state.epoch, loss=loss, val_loss=val_loss, metric=metric, val_metric=val_metric,
            grad_norm=tuple((gnorm / max(n_batches, 1)).tolist()),
            weight_norm=tuple(float(np.linalg.norm(W)) for W in net.W),
            update_ratio=tuple(float(np.linalg.norm(W - W0) / max(np.linalg.norm(W0), 1e-12))
                               for W, W0 in zip(net.W, start_W)),
            # the viz change: mini-batch runs measure saturation on the first 512 training samples
            saturation=_saturation(net, last_tape if full else forward(net, x[:512])[1]),
            seconds=time.perf_counter() - t0,
        )
        good = [a.copy() for a in _arrays(net)]
        state.rng_state = rng.bit_generator.state
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
