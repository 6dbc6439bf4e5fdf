"""gradcheck's bound on backprop's own rounding: the analytic side of every comparison's error bound."""

from __future__ import annotations

import numpy as np

from bpcli.nn.model import Network

Array = np.ndarray


def analytic_bounds(net: Network, tape, y: Array, grads) -> list[tuple[Array, Array | None]]:
    """Per layer (bound of dW (n_out, n_in), bound of db or None): how far rounding alone can move backprop's
    gradient, from the sizes of the terms the backward pass summed.

    Two parts, carried down the same chain rule with absolute values (|W|^T, |f'(z)|, |J| for softmax):
      E  the error of the output delta's subtraction: 2 eps (|y'| + |y|) (+ |dL/dy'| when not fused), the
         rounding of y' - y that makes a saturated output's delta uncertain however exact the rest is;
      T  the size of the terms of each delta (|dz| at the output), times eps * K for the products and sums on
         the way: K = 2 per layer the delta passed through + log2 of the terms a sum adds up + 2.
    A gradient entry's bound is the mean over samples of (E + eps K T) |a_in|, plus eps |g| for its last rounding.
    """
    eps = float(np.finfo(np.float64).eps)
    n = len(net.layers)
    top = tape[-1]
    dz = grads.dz[-1]
    E = 2 * eps * (np.abs(top.a_out) + np.abs(y))
    T = np.abs(dz)
    if not net.fused_output:
        dy = 0.0 if grads.dy_hat is None else np.abs(grads.dy_hat)
        E = _abs_vjp(net.layers[-1].activation, top.z, top.a_out, E + 2 * eps * dy)
    m = y.shape[0]
    out: list = [None] * n
    for l in range(n - 1, -1, -1):
        t = tape[l]
        K = 2 * (n - l) + 2 + np.log2(m + 1) + np.log2(t.a_in.shape[1] + 1)
        size = E + eps * K * T
        bW = (size.T @ np.abs(t.a_in)) / m + eps * np.abs(grads.dW[l])
        bb = None
        if net.b[l] is not None:
            bb = np.sum(size, axis=0) / m + eps * np.abs(grads.db[l])
            if net.layers[l].shared_bias:
                bb = np.array([np.sum(size) / m]) + eps * np.abs(grads.db[l])
        out[l] = (bW, bb)
        if l > 0:
            below = tape[l - 1]
            act = net.layers[l - 1].activation
            E = _abs_vjp(act, below.z, below.a_out, E @ np.abs(net.W[l]))
            T = _abs_vjp(act, below.z, below.a_out, T @ np.abs(net.W[l]))
    return out


def _abs_vjp(act, z: Array, a: Array, T: Array) -> Array:
    """|f'(z)| T elementwise, or |J|^T T per row for a layer like softmax."""
    if act.elementwise:
        return np.abs(act.grad(z, a)) * T if act.name != "identity" else T
    return np.einsum("mkl,mk->ml", np.abs(act.jacobian(z, a)), T)
