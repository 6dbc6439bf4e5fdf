"""The numpy engine: forward -> (output, tape); backward(tape) -> gradients of the mean cost.

The only implementation of the network's maths in bpcli: training, explain, gradcheck, show, inspect and
the benchmarks all call these two functions.  Vectorised over the batch (one matrix product per layer each
way, no loop over samples or nodes); given a Buffers, every array is written in place, so a training step
allocates (almost) nothing.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from bpcli.nn.model import Network

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
    Computed into Buffers (training) for m a power of two, dz and da hold the deltas already divided by m, and so
    does dy_hat when the output activation is the identity (its dz is dy_hat itself): only dW and db are meant there.
    """

    dW: list[Array]
    db: list[Array | None]
    dz: list[Array]
    dy_hat: Array | None  # dL_i/dy', (m, n_out); None when the fused shortcut skipped it
    da: list[Array | None]


class Buffers:
    """Preallocated arrays for forward and backward on batches of exactly m rows.

    Z[l], A[l], DZ[l], DA[l]: (m, n_out of layer l); dW[l], db[l]: the parameters' shapes, views into one array,
    grad, laid out layer by layer (dW, then db when the layer has a bias), as the optimiser lays out its parameters.
    A tape or gradients computed into them are views, valid until the next call with the same buffers.
    """

    def __init__(self, net: Network, m: int):
        dt = net.dtype
        self.m = m
        self.Z = [np.empty((m, layer.n_out), dt) for layer in net.layers]
        self.A = [np.empty((m, layer.n_out), dt) for layer in net.layers]
        self.DZ = [np.empty((m, layer.n_out), dt) for layer in net.layers]
        self.DA = [np.empty((m, layer.n_out), dt) for layer in net.layers]
        params = [a for W, b in zip(net.W, net.b) for a in (W, b) if a is not None]
        self.grad = np.empty(sum(a.size for a in params), dt)
        views = iter(block_views(self.grad, params))
        self.dW, self.db = [], []
        for b in net.b:
            self.dW.append(next(views))
            self.db.append(None if b is None else next(views))


def block_views(block: Array, arrays: list[Array]) -> list[Array]:
    """Views into the 1-D `block`, shaped like `arrays` and laid out one after another (Buffers' gradients, the
    optimiser's state)."""
    out, at = [], 0
    for a in arrays:
        out.append(block[at:at + a.size].reshape(a.shape))
        at += a.size
    return out


def forward(net: Network, x: Array, buffers: Buffers | None = None) -> tuple[Array, Tape]:
    """x: (m, n_in) -> (y_hat (m, n_out), tape)."""
    tape = []
    a = x
    for l, (layer, W, b) in enumerate(zip(net.layers, net.W, net.b)):
        if buffers is None:
            z = _weighted_sum(a, W, b)
            a_out = layer.activation.fn(z)  # Step 3: the activation
        else:
            z = np.matmul(a, W.T, out=buffers.Z[l])
            if b is not None:
                np.add(z, b, out=z)
            a_out = layer.activation.fn(z, out=buffers.A[l])
        tape.append(LayerTape(a, z, a_out))
        a = a_out
    return a, tuple(tape)


def _weighted_sum(a: Array, W: Array, b: Array | None, keep_layout: bool = False) -> Array:
    """Step 4: the weighted sum z_j = sum_k w_jk a_k (+ b_j), for rows a: (rows, n_in) -> (rows, n_out); with
    keep_layout an F-ordered a gives an F-ordered z (the same sums, as (W a^T)^T)."""
    z = (W @ a.T).T if keep_layout and a.flags.f_contiguous and not a.flags.c_contiguous else a @ W.T
    if b is not None:
        z += b
    return z


def losses_from(net: Network, l: int, z: Array, y: Array, watch=None) -> Array:
    """Per-row losses (rows,) of rows whose layer-l weighted sums are z: (rows, n_l), y: (rows, n_out).

    The rest of `forward` (layer l's activation, the layers above, the loss) on any rows: gradcheck's numeric
    side runs many perturbed copies of the batch through it at once, stacked as rows.  Given z as the
    transpose of an (n_l, rows) array (F-ordered), every layer keeps that layout, in which the registry's
    reductions over a row (softmax, the losses) run fastest.  watch(l2, z2), when given, sees each layer's
    weighted sums on the way (gradcheck looks for kinks there).
    """
    last = len(net.layers) - 1
    a = z
    for l2 in range(l, last + 1):
        if watch is not None:
            watch(l2, z)
        if l2 == last and net.fused_output:
            return sample_losses(net, z, None, y)
        a = net.layers[l2].activation.fn(z)
        if l2 < last:
            z = _weighted_sum(a, net.W[l2 + 1], net.b[l2 + 1], keep_layout=True)
    return sample_losses(net, z, a, y)


def node_moved_losses(net: Network, tape: Tape, y: Array, l: int, js: Array, zj: Array, watch=None) -> Array:
    """Per-sample losses (B, m) of B copies of the batch in which node js[c] of layer l has the weighted sums
    zj[c] (B, m) instead of tape[l].z[:, js[c]]; everything below layer l as in the tape.

    The batched-perturbation entry point (gradcheck moves one parameter, or one node's incoming weights, per
    copy): with an elementwise activation only a_j changes, so layer l + 1 gets the rank-one update
    z' = z + W[l+1][:, j] * (a'_j - a_j) and losses_from runs the rest.  watch: as in losses_from.
    """
    B, m = zj.shape
    layer = net.layers[l]
    # y: (m, n_out), or already repeated for the B copies ((B * m, n_out): copy c's rows c * m ... c * m + m - 1)
    yr = y if y.shape[0] == B * m else np.tile(y.T, (1, B)).T
    t = tape[l]
    if not layer.activation.elementwise or l == len(net.layers) - 1:
        Z = np.repeat(t.z.T[:, None, :], B, axis=1)  # (n_l, B, m)
        Z[js, np.arange(B), :] = zj
        return losses_from(net, l, Z.reshape(-1, B * m).T, yr, watch).reshape(B, m)
    if watch is not None:
        watch(l, (js, zj))
    da = layer.activation.fn(zj) - t.a_out[:, js].T  # (B, m): how a_j moved
    Z = tape[l + 1].z.T[:, None, :] + net.W[l + 1][:, js][:, :, None] * da[None]  # (n_next, B, m)
    return losses_from(net, l + 1, Z.reshape(-1, B * m).T, yr, watch).reshape(B, m)


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
    out_dW, out_db, out_da, out_dz = (buf.dW, buf.db, buf.DA, buf.DZ) if buf is not None else ([None] * n,) * 4
    layers, Ws, matmul, multiply = net.layers, net.W, np.matmul, np.multiply
    # Training (buffers) with m a power of two divides the output deltas by m once, up front: every product and
    # sum below is then scaled by that power of two exactly, so dW and db come out the same to the bit without a
    # pass over each of them. Not quite where a number met on the way (a delta of any layer, an upstream sum, a
    # product delta * input) lies below m times the smallest normal float: scaled, it is subnormal and keeps up to
    # log2(m) bits fewer, so dW and db may differ from the plain backward's in their last bits (a saturated float32
    # network's gradients near 1e-37; float64's near 1e-307).
    mean_first = buf is not None and m & (m - 1) == 0
    if mean_first and m > 1:
        multiply(dz, inv_m, out=dz)
    for l in range(n - 1, -1, -1):
        layer = layers[l]
        dzs[l] = dz
        # Steps 1 and 4: the mean over samples of dL_i/dz_j * a_k
        g = matmul(dz.T, tape[l].a_in, out=out_dW[l])
        dW[l] = g if mean_first else multiply(g, inv_m, out=g)
        if layer.shared_bias:  # one bias for the whole layer: the sum over samples and nodes
            g = np.empty(1, dz.dtype) if buf is None else buf.db[l]
            g[0] = dz.sum()
            db[l] = g if mean_first else multiply(g, inv_m, out=g)
        elif layer.has_bias:
            g = np.add.reduce(dz, axis=0, out=out_db[l])
            db[l] = g if mean_first else multiply(g, inv_m, out=g)
        if l > 0:
            # the upstream sum over the nodes this layer feeds, then this layer's activation
            da = das[l - 1] = matmul(dz, Ws[l], out=out_da[l - 1])
            below = tape[l - 1]
            dz = _vjp(layers[l - 1].activation, below.z, below.a_out, da, out_dz[l - 1])
    return Gradients(dW, db, dzs, dy_hat, das)
