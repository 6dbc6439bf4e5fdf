"""The per-epoch statistics of training (loss, metric, gradient norms), added up over an epoch's batches."""

from __future__ import annotations

import math

import numpy as np

from bpcli.data.dataset import class_labels
from bpcli.nn.engine import Gradients, Tape, sample_losses
from bpcli.nn.model import Network

Array = np.ndarray


def score(y_hat: Array, y: Array, labels: Array | None) -> float:
    """What the metric adds up: the samples classified right (labels: data.class_labels(y), the rule being a
    0.5 threshold for one output and the arg-max otherwise), or the sum of squared residuals (labels None)."""
    if labels is not None:
        return float(np.count_nonzero(class_labels(y_hat) == labels))
    r = (y_hat - y).ravel()
    return float(r.dot(r))


def total_squares(y: Array) -> float:
    """SS_tot = sum (y - mean y)^2 over every output (R^2 pooled, scikit-learn's 'variance_weighted')."""
    return float(np.sum((y - y.mean(axis=0)) ** 2))


def metric_of(total: float, m: int, labels: Array | None, ss_tot: float) -> float | None:
    """Accuracy = correct / m, or R^2 = 1 - SS_res / SS_tot (None when the targets do not vary)."""
    if labels is not None:
        return total / m
    return 1.0 - total / ss_tot if ss_tot > 0 else None


def norm(a: Array):
    """||a||: sqrt(a . a) as one BLAS dot (a Python float for float64, a numpy float32 for float32)."""
    r = a.ravel(order="K")
    d = r.dot(r)
    return math.sqrt(d) if isinstance(d, float) else np.sqrt(d)  # np.float64 is a float, np.float32 is not


class Tally:
    """The per-epoch statistics, added up batch by batch: the one place they are computed.

    loss: sum of L_i; score: correct count (classification) or sum of squared residuals (regression);
    grad_norm: sum over batches of ||dC/dW|| per layer.  A mini-batch epoch copies each batch's output z and y'
    into epoch-long buffers (m, n_out), rows in the epoch's order, and close() computes the per-sample losses
    and the correct count in one pass; the loss still adds each batch's sum of L_i in turn, so it is the same
    number, to the bit, as when every batch computed its own.
    """

    def __init__(self, net: Network, y: Array, classification: bool, batch_rows: int):
        self.ss_tot = 0.0 if classification else total_squares(y)
        self.classification = classification
        self.n_layers = len(net.layers)
        m, n_out = y.shape[0], net.layers[-1].n_out
        self.Z = self.A = None
        self.batch_rows = batch_rows
        if batch_rows < m:
            self.Z, self.A = np.empty((m, n_out), net.dtype), np.empty((m, n_out), net.dtype)
        # where the batches of a whole epoch end: every batch_rows rows, the last batch what is left
        self.regular = list(range(batch_rows, m, batch_rows)) + [m]
        self.reset()

    def reset(self) -> None:
        self.penalty = 0.0
        self.l1_penalty = 0.0
        self.loss = 0.0
        self.score = 0.0
        self.grad_norm = [0.0] * self.n_layers
        self.batches = 0
        self.stops: list[int] = []  # where each batch's rows end in the epoch buffers

    def add(self, net: Network, tape: Tape, y: Array, labels: Array | None, grads: Gradients, start: int = 0) -> None:
        """One batch: its tape, targets y (rows, n_out), labels (None for regression; a mini-batch epoch's are
        read by close(), so None will do there too) and gradients; `start`: the row the batch begins at in the
        epoch's order."""
        top = tape[-1]
        if self.Z is None:
            self.loss += float(np.add.reduce(sample_losses(net, top.z, top.a_out, y), axis=None))
            self.score += score(top.a_out, y, labels)
        else:
            stop = start + y.shape[0]
            self.Z[start:stop] = top.z
            self.A[start:stop] = top.a_out
            self.stops.append(stop)
            if not self.classification:  # squared residuals: a sum of floats, kept batch by batch
                self.score += score(top.a_out, y, None)
        for l, dW in enumerate(grads.dW):
            self.grad_norm[l] += float(norm(dW))
        self.batches += 1

    def close(self, net: Network, y: Array, labels: Array | None, order: Array | None) -> None:
        """At the end of a whole epoch: the losses (and correct count) of the batches copied in; y and labels
        of every training row, `order` the epoch's (epoch_order's)."""
        if self.Z is None:
            return
        y = y.take(order, axis=0)  # rows of a few targets: take gathers them 3x faster than y[order]
        L = sample_losses(net, self.Z, self.A, y)  # (m,)
        for v in self._batch_sums(L):
            self.loss += v
        if labels is not None:
            self.score += score(self.A, y, labels.take(order))

    def _batch_sums(self, L: Array) -> list[float]:
        """Each batch's sum of L_i, as np.add.reduce sums the batch's own rows: the whole batches as the rows of
        one (batches, batch_rows) array (a row's sum is that same pairwise sum), then the last, shorter one."""
        if self.stops != self.regular:  # not batch_rows each: batch by batch
            return [float(np.add.reduce(L[a:b], axis=None)) for a, b in zip([0] + self.stops, self.stops)]
        k = L.shape[0] // self.batch_rows
        sums = np.add.reduce(L[:k * self.batch_rows].reshape(k, self.batch_rows), axis=1).tolist()
        if k * self.batch_rows < L.shape[0]:
            sums.append(float(np.add.reduce(L[k * self.batch_rows:], axis=None)))
        return sums

    def metric(self, m: int, labels: Array | None) -> float | None:
        return metric_of(self.score, m, labels, self.ss_tot)
