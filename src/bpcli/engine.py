"""The numpy engine: forward -> (output, tape); backward(tape) -> gradients of the mean cost.

Vectorised over the batch: one matrix product per layer each way, no loop over samples or nodes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bpcli.model import Network

Array = np.ndarray


@dataclass(frozen=True)
class LayerTape:
    """What one layer computed: a_in (m, n_in), z (m, n_out), a_out (m, n_out)."""

    a_in: Array
    z: Array
    a_out: Array


Tape = tuple[LayerTape, ...]


@dataclass(frozen=True)
class Gradients:
    """dC/dW[l] (n_out, n_in) and dC/db[l] for the mean cost C = 1/m sum_i L_i.

    dz[l]: (m, n_out), the per-sample deltas dL_i/dz of each layer (not divided by m);
    these are what explain reads.
    """

    dW: list[Array]
    db: list[Array | None]
    dz: list[Array]
    dy_hat: Array | None  # dL_i/dy', (m, n_out); None when the fused shortcut skipped it


def forward(net: Network, x: Array) -> tuple[Array, Tape]:
    """x: (m, n_in) -> (y_hat (m, n_out), tape)."""
    tape = []
    a = x
    for layer, W, b in zip(net.layers, net.W, net.b):
        z = a @ W.T  # Step 4: the weighted sum z_j = sum_k w_jk a_k (+ b_j)
        if b is not None:
            z += b
        a_out = layer.activation.fn(z)  # Step 3: the activation
        tape.append(LayerTape(a, z, a_out))
        a = a_out
    return a, tuple(tape)


def predict(net: Network, x: Array) -> Array:
    return forward(net, x)[0]


def sample_losses(net: Network, z_out: Array, y_hat: Array, y: Array) -> Array:
    """L_i (m,) for the output layer's weighted sums z_out and outputs y_hat (m, n_out).

    A fused pair (sigmoid + binary cross-entropy, softmax + cross-entropy) is computed from z, exact where
    y' rounds to 0 or 1; every other loss from y'.
    """
    if net.fused_output:
        return net.loss.value_z(z_out, y)
    return net.loss.value(y_hat, y)


def cost(net: Network, tape: Tape, y: Array) -> float:
    """C = 1/m * sum_i L_i, from a forward pass's tape."""
    top = tape[-1]
    return float(np.mean(sample_losses(net, top.z, top.a_out, y)))


def output_delta(net: Network, tape: Tape, y: Array) -> tuple[Array, Array | None]:
    """(dL_i/dz of the output layer (m, n_out), dL_i/dy' or None when fused)."""
    top = tape[-1]
    if net.fused_output:
        # softmax + cross-entropy (or sigmoid + binary cross-entropy): dL/dz = y' - y
        return top.a_out - y, None
    dy_hat = net.loss.grad(top.a_out, y)  # Step 2: the loss's derivative
    return net.layers[-1].activation.vjp(top.z, top.a_out, dy_hat), dy_hat  # Step 3


def backward(net: Network, tape: Tape, y: Array) -> Gradients:
    """Backpropagate through the tape: gradients of the mean cost for every parameter."""
    m = y.shape[0]
    n = len(net.layers)
    dW: list[Array] = [None] * n  # type: ignore[list-item]
    db: list[Array | None] = [None] * n
    dzs: list[Array] = [None] * n  # type: ignore[list-item]
    dz, dy_hat = output_delta(net, tape, y)
    inv_m = 1.0 / m
    for l in range(n - 1, -1, -1):
        layer, t = net.layers[l], tape[l]
        dzs[l] = dz
        dW[l] = (dz.T @ t.a_in) * inv_m  # Step 1 and 4: mean over samples of dz_j * a_k
        if layer.bias == "shared":
            db[l] = np.array([dz.sum() * inv_m], dtype=dz.dtype)
        elif layer.has_bias:
            db[l] = dz.sum(axis=0) * inv_m
        if l > 0:
            da = dz @ net.W[l]  # upstream sum over the nodes this layer feeds
            below = tape[l - 1]
            dz = net.layers[l - 1].activation.vjp(below.z, below.a_out, da)
    return Gradients(dW, db, dzs, dy_hat)
