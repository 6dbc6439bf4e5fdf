"""The epoch's loss a mini-batch Tally adds up: each batch's own sum of L_i, added in turn, to the bit."""

from __future__ import annotations

import numpy as np
import pytest

from bpcli.nn.engine import backward, forward
from bpcli.training.tally import Tally
from tests.conftest import random_net


def _plain_losses(y_hat, y) -> list[float]:
    """L_i = 1/2 (y_i - y'_i)^2 for one output, with plain floats."""
    return [0.5 * ((float(a) - float(b)) * (float(a) - float(b))) for a, b in zip(y_hat[:, 0], y[:, 0])]


@pytest.mark.parametrize("chunk_rows", [4096, 3, 6], ids=["one-chunk", "chunk-of-one-batch", "chunk-of-two"])
@pytest.mark.parametrize("sizes", [[3, 3, 1], [2, 4, 1], [1, 1, 5]], ids=["regular", "uneven", "last-long"])
def test_a_mini_batch_epochs_loss_is_each_batchs_sum_added_in_turn(rng, sizes, chunk_rows):
    """The batches' outputs wait in buffers of chunk_rows rows (the whole epoch, one batch, two batches) and their
    losses are taken when the buffers fill and at the epoch's end: still each batch's own sum, added in turn."""
    net = random_net(rng, 2, [3, 1], hidden="tanh", output="identity")
    x, y = rng.normal(size=(7, 2)), rng.normal(size=(7, 1))
    order = np.array([3, 0, 6, 1, 5, 2, 4])  # the epoch's order of the rows
    tally = Tally(net, y, None, batch_rows=3, chunk_rows=chunk_rows)
    tally.reset(order)
    want, start = 0.0, 0
    for rows in sizes:
        idx = order[start:start + rows]
        xb, yb = x[idx], y[idx]
        y_hat, tape = forward(net, xb)
        tally.add(net, tape, yb, backward(net, tape, yb), start)
        # what the batch's own sum of its L_i (written out with plain floats) is, to the bit
        want += float(np.add.reduce(np.array(_plain_losses(y_hat, yb))))
        start += rows
    tally.close(net)
    assert tally.loss == want


@pytest.mark.parametrize("chunk_rows", [4096, 2, 5])
def test_a_mini_batch_epochs_correct_count_spans_its_chunks(rng, chunk_rows):
    """Classification: the correct count of an epoch whose outputs pass through buffers of 2 (one batch), 4 or all
    rows, against the count by hand (argmax of y' against the label)."""
    net = random_net(rng, 2, [4, 3], hidden="tanh", output="softmax", loss="cross_entropy")
    x = rng.normal(size=(9, 2))
    labels = np.array([0, 1, 2, 2, 1, 0, 0, 1, 2])
    y = np.eye(3)[labels]
    order = rng.permutation(9)
    tally = Tally(net, y, labels, batch_rows=2, chunk_rows=chunk_rows)
    tally.reset(order)
    right = 0
    for start in range(0, 9, 2):
        idx = order[start:start + 2]
        y_hat, tape = forward(net, x[idx])
        tally.add(net, tape, y[idx], backward(net, tape, y[idx]), start)
        right += sum(int(max(range(3), key=lambda k: row[k]) == lab) for row, lab in zip(y_hat, labels[idx]))
    tally.close(net)
    assert tally.score == right
    assert tally.metric(9, labels) == right / 9
