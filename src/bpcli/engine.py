"""The numpy engine: forward -> (output, tape); backward(tape) -> gradients of the mean cost.

The only implementation of the network's maths in bpcli: training, explain, gradcheck, show, inspect and
the benchmarks all call these two functions.  Vectorised over the batch (one matrix product per layer each
way, no loop over samples or nodes); given a Buffers, every array is written in place, so a training step
allocates (almost) nothing.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from bpcli.model import Network

Array = np.ndarray


class LayerTape(NamedTuple):
    """What one layer computed: a_in (m, n_in), z (m, n_out), a_out (m, n_out)."""

    a_in: Array
    z: Array
    a_out: Array


Tape = tuple[LayerTape, ...]


class Gradients(NamedTuple):
    """dC/dW[l] (n_out, n_in) and dC/db[l] for the mean cost C = 1/m sum_i L_i.

    dz[l]: (m, n_out), the per-sample deltas dL_i/dz of each layer (not divided by m);
    these are what explain reads.
    da[l]: (m, n_out), dL_i/da of layer l's outputs, the upstream sum dz[l + 1] @ W[l + 1]; None for the output layer.
    """

    dW: list[Array]
    db: list[Array | None]
    dz: list[Array]
    dy_hat: Array | None  # dL_i/dy', (m, n_out); None when the fused shortcut skipped it
    da: list[Array | None]


class Buffers:
    """Preallocated arrays for forward and backward on batches of exactly m rows.

    Z[l], A[l], DZ[l], DA[l]: (m, n_out of layer l); dW[l], db[l]: the parameters' shapes.
    A tape or gradients computed into them are views, valid until the next call with the same buffers.
    """

    def __init__(self, net: Network, m: int):
        dt = net.dtype
        self.m = m
        self.Z = [np.empty((m, layer.n_out), dt) for layer in net.layers]
        self.A = [np.empty((m, layer.n_out), dt) for layer in net.layers]
        self.DZ = [np.empty((m, layer.n_out), dt) for layer in net.layers]
        self.DA = [np.empty((m, layer.n_out), dt) for layer in net.layers]
        self.dW = [np.empty_like(W) for W in net.W]
        self.db = [None if b is None else np.empty_like(b) for b in net.b]


def forward(net: Network, x: Array, buffers: Buffers | None = None) -> tuple[Array, Tape]:
    """x: (m, n_in) -> (y_hat (m, n_out), tape)."""
    tape = []
    a = x
    for l, (layer, W, b) in enumerate(zip(net.layers, net.W, net.b)):
        if buffers is None:
            z = a @ W.T  # Step 4: the weighted sum z_j = sum_k w_jk a_k (+ b_j)
            if b is not None:
                z += b
            a_out = layer.activation.fn(z)  # Step 3: the activation
        else:
            z = np.matmul(a, W.T, out=buffers.Z[l])
            if b is not None:
                np.add(z, b, out=z)
            a_out = layer.activation.fn(z, out=buffers.A[l])
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


def output_delta(net: Network, tape: Tape, y: Array, out: Array | None = None) -> tuple[Array, Array | None]:
    """(dL_i/dz of the output layer (m, n_out), dL_i/dy' or None when fused)."""
    top = tape[-1]
    if net.fused_output:
        # softmax + cross-entropy (or sigmoid + binary cross-entropy): dL/dz = y' - y
        return np.subtract(top.a_out, y, out=out), None
    dy_hat = net.loss.grad(top.a_out, y)  # Step 2: the loss's derivative
    return _vjp(net.layers[-1].activation, top.z, top.a_out, dy_hat, out), dy_hat  # Step 3


def _vjp(act, z: Array, a: Array, da: Array, out: Array | None) -> Array:
    """act.vjp, into `out` when buffers are in use (a registry entry without `out` still works unbuffered)."""
    return act.vjp(z, a, da) if out is None else act.vjp(z, a, da, out=out)


def backward(net: Network, tape: Tape, y: Array, buffers: Buffers | None = None) -> Gradients:
    """Backpropagate through the tape: gradients of the mean cost for every parameter."""
    m = y.shape[0]
    n = len(net.layers)
    buf = buffers
    dW: list[Array] = [None] * n  # type: ignore[list-item]
    db: list[Array | None] = [None] * n
    dzs: list[Array] = [None] * n  # type: ignore[list-item]
    das: list[Array | None] = [None] * n
    dz, dy_hat = output_delta(net, tape, y) if buf is None else output_delta(net, tape, y, buf.DZ[-1])
    inv_m = np.dtype(net.dtype).type(1.0 / m)
    for l in range(n - 1, -1, -1):
        layer, t = net.layers[l], tape[l]
        dzs[l] = dz
        # Steps 1 and 4: the mean over samples of dL_i/dz_j * a_k
        g = np.matmul(dz.T, t.a_in, out=None if buf is None else buf.dW[l])
        dW[l] = np.multiply(g, inv_m, out=g)
        if layer.shared_bias:  # one bias for the whole layer: the sum over samples and nodes
            g = np.empty(1, dz.dtype) if buf is None else buf.db[l]
            g[0] = dz.sum()
            db[l] = np.multiply(g, inv_m, out=g)
        elif layer.has_bias:
            g = np.add.reduce(dz, axis=0, out=None if buf is None else buf.db[l])
            db[l] = np.multiply(g, inv_m, out=g)
        if l > 0:
            # the upstream sum over the nodes this layer feeds, then this layer's activation
            da = das[l - 1] = np.matmul(dz, net.W[l], out=None if buf is None else buf.DA[l - 1])
            below = tape[l - 1]
            dz = _vjp(net.layers[l - 1].activation, below.z, below.a_out, da, None if buf is None else buf.DZ[l - 1])
    return Gradients(dW, db, dzs, dy_hat, das)
