"""The engine's gradients against central differences, on random networks of every activation/loss pair."""

from __future__ import annotations

import numpy as np
import pytest

from bpcli.nn.engine import backward, forward
from bpcli.gradcheck.numeric import naive_numeric_gradient

from tests.conftest import activation_loss_triples, random_data, random_net


def numeric_grad(net, x, y, eps=1e-6):
    return naive_numeric_gradient(net, x, y, eps)


def analytic_grad(net, x, y):
    _, tape = forward(net, x)
    g = backward(net, tape, y)
    return np.array([(g.dW[r.layer] if r.kind == "W" else g.db[r.layer])[r.index] for r in net.param_refs()])


PAIRS = activation_loss_triples()


@pytest.mark.parametrize("hidden,output,loss", PAIRS)
def test_backprop_matches_central_differences(hidden, output, loss):
    rng = np.random.default_rng(7)
    net = random_net(rng, 3, [4, 3, 3], hidden=hidden, output=output, loss=loss)
    x, y = random_data(rng, net, 5)
    if loss in ("absolute_error", "huber"):
        y = y * 3  # keep residuals away from the kink at y' = y
    a, n = analytic_grad(net, x, y), numeric_grad(net, x, y)
    # atol: a central difference with step 1e-6 of a cost C carries ~10 ulp(C) / 1e-6 of rounding (5e-9 at C = 5)
    np.testing.assert_allclose(a, n, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("convention", ["half_sum", "mean", "sklearn", "sum"])
@pytest.mark.parametrize("bias", ["on", "off", "shared", "frozen"])
def test_bias_modes_and_squared_conventions(convention, bias):
    rng = np.random.default_rng(3)
    net = random_net(rng, 2, [3, 2], hidden="sigmoid", output="identity", loss_params={"convention": convention},
                     bias=bias)
    x, y = random_data(rng, net, 6)
    np.testing.assert_allclose(analytic_grad(net, x, y), numeric_grad(net, x, y), rtol=1e-7, atol=1e-10)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("bias", ["on", "shared", "off"])
@pytest.mark.parametrize("hidden,output,loss", [("sigmoid", "sigmoid", "squared_error"),
                                                ("tanh", "softmax", "cross_entropy"),
                                                ("relu", "sigmoid", "binary_cross_entropy"),
                                                ("elu", "identity", "huber")])
def test_training_buffers_give_the_same_gradients_to_the_bit(hidden, output, loss, bias, dtype):
    """Training computes into Buffers, and for a power-of-two batch divides the output deltas by m first instead of
    each dW and db after: an exact scaling, so the gradients equal the plain backward's bit for bit; other batch
    sizes keep the division after."""
    import dataclasses

    from bpcli.nn.engine import Buffers

    rng = np.random.default_rng(11)
    net = random_net(rng, 3, [5, 4, 3], hidden=hidden, output=output, loss=loss, bias=bias)
    net = dataclasses.replace(net, W=[W.astype(dtype) for W in net.W],
                              b=[None if b is None else b.astype(dtype) for b in net.b], dtype=dtype)
    for m in (1, 4, 5, 32, 96, 128):
        x, y = (a.astype(dtype) for a in random_data(rng, net, m))
        plain = backward(net, forward(net, x)[1], y)
        buf = Buffers(net, m)
        fast = backward(net, forward(net, x, buf)[1], y, buf)
        for a, b in zip(plain.dW + plain.db, fast.dW + fast.db):
            if a is not None:
                assert a.dtype == b.dtype == dtype
                assert np.array_equal(a, b), (m, a - b)
