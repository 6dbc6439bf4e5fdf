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
    return math.sqrt(d) if r.dtype == np.float64 else np.sqrt(d)


CHUNK_ROWS = 4096  # a mini-batch epoch keeps its outputs this many rows at a time (whole batches): they stay cached


class Tally:
    """The per-epoch statistics, added up batch by batch: the one place they are computed.

    loss: sum of L_i; score: correct count (classification) or sum of squared residuals (regression);
    grad_norm: sum over batches of ||dC/dW|| per layer.  A mini-batch epoch copies each batch's output z and y' into
    two buffers of chunk_rows rows (whole batches) and, when they are full and at the epoch's end, computes the
    per-sample losses and the correct count of all their rows at once; the loss still adds each batch's sum of L_i
    in turn, so it is the same number, to the bit, as when every batch computed its own.  Buffers of a few thousand
    rows stay in the cache, where epoch-long ones cost a cache miss (and a page fault) per batch to fill.
    y: every training row's targets; labels: their class indices (data.class_labels), None for regression.
    """

    def __init__(self, net: Network, y: Array, labels: Array | None, batch_rows: int, chunk_rows: int = CHUNK_ROWS):
        self.ss_tot = 0.0 if labels is not None else total_squares(y)
        self.y, self.labels = y, labels
        self.n_layers = len(net.layers)
        m, n_out = y.shape[0], net.layers[-1].n_out
        self.Z = self.A = None
        self.batch_rows = batch_rows
        if batch_rows < m:
            rows = min(m, batch_rows * max(1, chunk_rows // batch_rows))
            self.Z, self.A = np.empty((rows, n_out), net.dtype), np.empty((rows, n_out), net.dtype)
        self.reset()

    def reset(self, order: Array | None = None) -> None:
        """A new epoch, visiting the training rows in `order` (epoch_order's; None: full batch, in their order)."""
        self.penalty = 0.0
        self.l1_penalty = 0.0
        self.loss = 0.0
        self.score = 0.0
        self.grad_norm = [0.0] * self.n_layers
        self.batches = 0
        self.order = order
        self.at = 0  # the epoch row the buffers' first row is
        self.stops: list[int] = []  # where each batch's rows end in the buffers

    def add(self, net: Network, tape: Tape, y: Array, grads: Gradients, start: int = 0) -> None:
        """One batch: its tape, targets y (rows, n_out) and gradients; `start`: the row the batch begins at in the
        epoch's order."""
        top = tape[-1]
        if self.Z is None:
            self.loss += float(np.add.reduce(sample_losses(net, top.z, top.a_out, y), axis=None))
            self.score += score(top.a_out, y, self.labels)
        else:
            rows = y.shape[0]
            if start + rows - self.at > self.Z.shape[0]:
                self._flush(net)
                if rows > self.Z.shape[0]:  # a batch longer than batch_rows: buffers that hold it
                    shape = (rows, self.Z.shape[1])
                    self.Z, self.A = np.empty(shape, self.Z.dtype), np.empty(shape, self.Z.dtype)
            a = start - self.at
            self.Z[a:a + rows] = top.z
            self.A[a:a + rows] = top.a_out
            self.stops.append(a + rows)
            if self.labels is None:  # squared residuals: a sum of floats, kept batch by batch
                self.score += score(top.a_out, y, None)
        for l, dW in enumerate(grads.dW):
            self.grad_norm[l] += float(norm(dW))
        self.batches += 1

    def close(self, net: Network) -> None:
        """At the end of a whole epoch: the losses (and correct count) of the batches still in the buffers."""
        if self.Z is not None:
            self._flush(net)

    def _flush(self, net: Network) -> None:
        """The per-sample losses of the rows in the buffers, each batch's sum added in turn, and their correct
        count; the buffers are then free for the next batches."""
        n = self.stops[-1] if self.stops else 0
        if n:
            rows = self.order[self.at:self.at + n]
            y = np.take(self.y, rows, axis=0)  # rows of a few targets: np.take gathers them 3x faster than y[rows]
            L = sample_losses(net, self.Z[:n], self.A[:n], y)  # (n,)
            for v in self._batch_sums(L):
                self.loss += v
            if self.labels is not None:
                self.score += score(self.A[:n], y, np.take(self.labels, rows))
        self.at += n
        self.stops = []

    def _batch_sums(self, L: Array) -> list[float]:
        """Each batch's sum of L_i, as np.add.reduce sums the batch's own rows: whole batches of batch_rows as the
        rows of one (batches, batch_rows) array (a row's sum is that same pairwise sum), then a last, shorter one."""
        n, b = L.shape[0], self.batch_rows
        k = n // b
        if self.stops != list(range(b, k * b + 1, b)) + ([n] if k * b < n else []):  # other sizes: batch by batch
            return [float(np.add.reduce(L[a:c], axis=None)) for a, c in zip([0] + self.stops, self.stops)]
        sums = np.add.reduce(L[:k * b].reshape(k, b), axis=1).tolist()
        if k * b < n:
            sums.append(float(np.add.reduce(L[k * b:], axis=None)))
        return sums

    def metric(self, m: int, labels: Array | None) -> float | None:
        return metric_of(self.score, m, labels, self.ss_tot)
