"""The training step with preallocated buffers: bit-for-bit the numbers of engine.forward/backward, fewer numpy calls.

Every kernel below repeats the exact floating-point operations of the registry function it stands in for
(activations.py, losses.py, engine.backward), in the same order and dtype, writing into buffers made once
per batch size instead of fresh arrays.  Activations and losses without a kernel fall back to the
registry functions, so every network trains through this path.  tests/test_perf.py compares whole
training histories with a straightforward reference implementation, bit for bit.
"""

from __future__ import annotations

import numpy as np

from bpcli.engine import LayerTape
from bpcli.model import Network

Array = np.ndarray

_INPLACE_FORWARD = ("identity", "sigmoid", "tanh", "relu", "softmax")
_INPLACE_VJP = ("identity", "sigmoid", "tanh", "relu", "softmax")


def _squared_scale(convention: str, n: int) -> float:
    """The same scale losses._squared_error uses (computed the same way)."""
    return {"half_sum": 0.5, "mean": 1.0 / n, "sklearn": 0.5 / n, "sum": 1.0}[convention]


class StepPlan:
    """Buffers and bound kernels for one training step of `net` on batches of m rows.

    run(xb, yb, yinfo) does forward, loss, metric and backward; afterwards
    self.grads holds dC/dW, dC/db in Optimizer order, self.tape the last batch's tape.
    """

    def __init__(self, net: Network, m: int, classification: bool):
        dt = np.dtype(net.dtype)
        self.net = net
        self.m = m
        self.inv_m = 1.0 / m
        self.classification = classification
        self.layers = net.layers
        n = len(net.layers)
        self.n = n
        self.WT = [W.T for W in net.W]
        self.Z = [np.empty((m, layer.n_out), dt) for layer in net.layers]
        self.A: list[Array] = []
        for l, layer in enumerate(net.layers):
            name = layer.activation.name
            self.A.append(self.Z[l] if name == "identity" else np.empty((m, layer.n_out), dt))
        self.DZ = [np.empty((m, layer.n_out), dt) for layer in net.layers]
        self.T = [np.empty((m, layer.n_out), dt) for layer in net.layers]  # scratch for f'(z)
        self.DA = [np.empty((m, layer.n_out), dt) for layer in net.layers]  # dL/da of layer l (from l+1)
        self.MASK = [np.empty((m, layer.n_out), dt) if layer.activation.name == "relu" else None
                     for layer in net.layers]
        self.ROW = [np.empty((m, 1), dt) if layer.activation.name == "softmax" else None for layer in net.layers]
        self.dW = [np.empty_like(W) for W in net.W]
        self.db = [None if b is None else np.empty_like(b) for b in net.b]
        self.SQ = [np.empty_like(W) for W in net.W]  # dW * dW for the gradient norm
        self.grads: list[Array] = []
        for layer, dW, db in zip(net.layers, self.dW, self.db):
            self.grads.append(dW)
            if db is not None and layer.bias_trainable:
                self.grads.append(db)
        self.float32 = dt == np.float32
        n_out = net.layers[-1].n_out
        self.fused = net.fused_output
        loss = net.loss
        self.loss_kind = "generic"
        if loss.name == "squared_error" and loss.params.get("convention") in ("half_sum", "mean", "sklearn", "sum"):
            self.loss_kind = "squared"
            scale = _squared_scale(loss.params["convention"], n_out)
            self.scale = scale
            self.grad_scale = 2.0 * scale
            self.R = np.empty((m, n_out), dt)
            self.R2 = np.empty((m, n_out), dt)
            self.Li = np.empty((m,), dt)
        elif loss.name == "cross_entropy" and self.fused:
            self.loss_kind = "ce"
            self.P = np.empty((m, n_out), dt)
            self.Li = np.empty((m,), dt)
        self.yes = np.empty((m, n_out), bool)
        self.pred = np.empty((m,), np.intp)
        self.hits = np.empty((m,), bool)
        self.xb: Array | None = None

    @property
    def tape(self) -> tuple[LayerTape, ...]:
        """The tape of the last batch run (views of the buffers: valid until the next run)."""
        ins = [self.xb] + self.A[:-1]
        return tuple(LayerTape(ins[l], self.Z[l], self.A[l]) for l in range(self.n))

    # --- forward ---------------------------------------------------------------------------------

    def _activate(self, l: int) -> None:
        """A[l] = f(Z[l]), the same operations as the registry's fn."""
        layer = self.layers[l]
        z, a = self.Z[l], self.A[l]
        name = layer.activation.name
        if name == "sigmoid":  # 0.5 * (1.0 + tanh(0.5 * z))
            np.multiply(z, 0.5, out=a)
            np.tanh(a, out=a)
            np.add(a, 1.0, out=a)
            np.multiply(a, 0.5, out=a)
        elif name == "tanh":
            np.tanh(z, out=a)
        elif name == "relu":  # max(z, 0)
            np.maximum(z, 0.0, out=a)
        elif name == "identity":
            pass  # A[l] is Z[l], as fn(z) returns z itself
        elif name == "softmax":  # e = exp(z - max z); e / sum e
            row = self.ROW[l]
            np.maximum.reduce(z, axis=1, keepdims=True, out=row)
            np.subtract(z, row, out=a)
            np.exp(a, out=a)
            np.add.reduce(a, axis=1, keepdims=True, out=row)
            np.divide(a, row, out=a)
        else:
            self.A[l] = layer.activation.fn(z)  # no kernel: the registry's function, its own array

    # --- backward --------------------------------------------------------------------------------

    def _vjp(self, l: int, da: Array) -> Array:
        """dL/dz of layer l from dL/da, the same operations as Activation.vjp."""
        layer = self.layers[l]
        act = layer.activation
        z, a, t, dz = self.Z[l], self.A[l], self.T[l], self.DZ[l]
        name = act.name
        if name == "sigmoid":  # da * (a * (1 - a))
            np.subtract(1.0, a, out=t)
            np.multiply(a, t, out=t)
            np.multiply(da, t, out=dz)
        elif name == "tanh":  # da * (1 - a * a)
            np.multiply(a, a, out=t)
            np.subtract(1.0, t, out=t)
            np.multiply(da, t, out=dz)
        elif name == "relu":  # da * (z > 0)
            mask = self.MASK[l]
            np.greater(z, 0, out=mask)
            np.multiply(da, mask, out=dz)
        elif name == "identity":  # da * 1
            np.multiply(da, 1.0, out=dz)
        elif name == "softmax":  # a * (da - sum(da * a, axis=1))
            row = self.ROW[l]
            np.multiply(da, a, out=t)
            np.add.reduce(t, axis=1, keepdims=True, out=row)
            np.subtract(da, row, out=t)
            np.multiply(a, t, out=dz)
        else:
            dz = act.vjp(z, a, da)
        return dz

    def run(self, xb: Array, yb: Array, ytrue: Array | None, gnorm: list[float]) -> tuple[float, float]:
        """One forward and backward pass on (xb, yb); adds ||dC/dW[l]|| to gnorm[l].

        ytrue: y >= 0.5 (one output) or the argmax labels (several) for classification, unused otherwise.
        Returns (sum of the per-sample losses, correct count or sum of squared residuals).
        """
        self.xb = xb
        net = self.net
        n = self.n
        a = xb
        for l in range(n):
            z = self.Z[l]
            np.matmul(a, self.WT[l], out=z)  # z = a_in @ W.T (+ b)
            b = net.b[l]
            if b is not None:
                np.add(z, b, out=z)
            self._activate(l)
            a = self.A[l]
        y_hat = a
        ins = [xb] + self.A[:-1]

        # the cost and the metric, as fit adds them up
        kind = self.loss_kind
        if kind == "squared":
            r = self.R
            np.subtract(y_hat, yb, out=r)
            np.multiply(r, r, out=self.R2)
            li = self.Li
            np.add.reduce(self.R2, axis=1, out=li)
            np.multiply(li, self.scale, out=li)
            loss_sum = float(np.add.reduce(li))
        elif kind == "ce":
            p, li = self.P, self.Li
            np.clip(y_hat, 1e-300, None, out=p)
            np.log(p, out=p)
            np.multiply(yb, p, out=p)
            np.add.reduce(p, axis=1, out=li)
            np.negative(li, out=li)
            loss_sum = float(np.add.reduce(li))
        else:
            loss_sum = float(np.sum(net.loss.value(y_hat, yb)))
        if self.classification:
            if y_hat.shape[1] == 1:
                yes = self.yes
                np.greater_equal(y_hat, 0.5, out=yes)
                np.equal(yes, ytrue, out=yes)
                score = float(np.count_nonzero(yes))
            else:
                np.argmax(y_hat, axis=1, out=self.pred)
                np.equal(self.pred, ytrue, out=self.hits)
                score = float(np.count_nonzero(self.hits))
        elif kind == "squared":
            score = float(np.add.reduce(self.R2, axis=None))  # (y - y')^2 == (y' - y)^2 exactly
        else:
            score = float(np.sum((yb - y_hat) ** 2))

        # the output delta
        if self.fused:
            dz = self.DZ[-1]
            np.subtract(y_hat, yb, out=dz)
        else:
            if kind == "squared":
                dy = self.DA[-1]
                np.multiply(self.R, self.grad_scale, out=dy)
            else:
                dy = net.loss.grad(y_hat, yb)
            dz = self._vjp(n - 1, dy)

        inv_m = self.inv_m
        for l in range(n - 1, -1, -1):
            dW = self.dW[l]
            np.matmul(dz.T, ins[l], out=dW)  # mean over samples of dz_j * a_k
            np.multiply(dW, inv_m, out=dW)
            layer = self.layers[l]
            if layer.bias == "shared":
                self.db[l][0] = dz.sum() * inv_m
            elif layer.has_bias:
                db = self.db[l]
                np.add.reduce(dz, axis=0, out=db)
                np.multiply(db, inv_m, out=db)
            sq = self.SQ[l]
            np.multiply(dW, dW, out=sq)
            s = np.add.reduce(sq, axis=None)
            gnorm[l] += float(np.sqrt(s))
            if l > 0:
                da = self.DA[l - 1]
                np.matmul(dz, net.W[l], out=da)  # the upstream sum over the nodes this layer feeds
                dz = self._vjp(l - 1, da)
        return loss_sum, score
