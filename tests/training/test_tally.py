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


@pytest.mark.parametrize("sizes", [[3, 3, 1], [2, 4, 1], [1, 1, 5]], ids=["regular", "uneven", "last-long"])
def test_a_mini_batch_epochs_loss_is_each_batchs_sum_added_in_turn(rng, sizes):
    net = random_net(rng, 2, [3, 1], hidden="tanh", output="identity")
    x, y = rng.normal(size=(7, 2)), rng.normal(size=(7, 1))
    tally = Tally(net, y, classification=False, batch_rows=3)
    want, start = 0.0, 0
    for rows in sizes:
        xb, yb = x[start:start + rows], y[start:start + rows]
        y_hat, tape = forward(net, xb)
        tally.add(net, tape, yb, None, backward(net, tape, yb), start)
        # what the batch's own sum of its L_i (written out with plain floats) is, to the bit
        want += float(np.add.reduce(np.array(_plain_losses(y_hat, yb))))
        start += rows
    tally.close(net, y, None, np.arange(7))  # the epoch visited the rows in order
    assert tally.loss == want
