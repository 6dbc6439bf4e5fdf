"""The training step with preallocated buffers: bit-for-bit the numbers of engine.forward/backward, fewer numpy calls.

Every kernel below repeats the exact floating-point operations of the registry function it stands in for
(activations.py, losses.py, engine.backward), in the same order and dtype, writing into buffers made once
per batch size instead of fresh arrays.  Activations and losses without a kernel fall back to the
registry functions, so every network trains through this path.  tests/test_perf.py compares whole
training histories with a straightforward reference implementation: weights, losses, metrics, norms and
saturation bit for bit; only the per-batch gradient norm ||dW|| is summed by a BLAS dot product instead
of np.sum(dW * dW) (one pass instead of three), so it agrees to rounding (about 1e-6 relative in float32).
"""

from __future__ import annotations

import math

import numpy as np

from bpcli.engine import LayerTape
from bpcli.losses import squared_scale
from bpcli.model import Network

Array = np.ndarray

def _maximum_into(x: Array, y: Array, out: Array) -> Array:
    return np.maximum(x, y, out=out)


class StepPlan:
    """Buffers and bound kernels for one training step of `net` on batches of m rows.

    run(xb, yb, ytrue, gnorm) does forward, loss, metric and backward; afterwards self.grads holds
    dC/dW, dC/db in Optimizer order and self.Z, self.A the last batch's weighted sums and outputs.
    Constants are 0-d arrays of the network's dtype: the value a Python float takes under numpy's
    promotion rules, at half the call cost.
    """

    def __init__(self, net: Network, m: int, classification: bool):
        dt = np.dtype(net.dtype)
        c = lambda v: np.array(v, dtype=dt)  # noqa: E731
        self.net = net
        self.m = m
        self.inv_m = c(1.0 / m)
        self.half, self.one, self.zero = c(0.5), c(1.0), c(0.0)
        self.classification = classification
        self.layers = net.layers
        n = len(net.layers)
        self.n = n
        self.WT = [W.T for W in net.W]
        self.Z = [np.empty((m, layer.n_out), dt) for layer in net.layers]
        self.A: list[Array] = [self.Z[l] if layer.activation.name == "identity" else np.empty((m, layer.n_out), dt)
                               for l, layer in enumerate(net.layers)]
        self.DZ = [np.empty((m, layer.n_out), dt) for layer in net.layers]
        self.T = [np.empty((m, layer.n_out), dt) for layer in net.layers]  # scratch for f'(z)
        self.DA = [np.empty((m, layer.n_out), dt) for layer in net.layers]  # dL/da of layer l (from l+1)
        self.ROW = [np.empty((m, 1), dt) for _ in net.layers]
        self.dW = [np.empty_like(W) for W in net.W]
        self.db = [None if b is None else np.empty_like(b) for b in net.b]
        self.dWr = [dW.reshape(-1) for dW in self.dW]  # flat views: ||dW||^2 = dW . dW (one BLAS call)
        self.grads: list[Array] = []
        for layer, dW, db in zip(net.layers, self.dW, self.db):
            self.grads.append(dW)
            if db is not None and layer.bias_trainable:
                self.grads.append(db)
        self.exact_sqrt = dt == np.float64  # math.sqrt == np.sqrt for float64, not for float32
        n_out = net.layers[-1].n_out
        self.fused = net.fused_output
        loss = net.loss
        self.loss_kind = "generic"
        if loss.name == "squared_error" and loss.params.get("convention") in ("half_sum", "mean", "sklearn", "sum"):
            self.loss_kind = "squared"
            scale = squared_scale(loss.params["convention"], n_out)
            self.scale = c(scale)
            self.grad_scale = None if 2.0 * scale == 1.0 else c(2.0 * scale)  # x * 1.0 is x
            self.R = np.empty((m, n_out), dt)
            self.R2 = np.empty((m, n_out), dt)
            self.R2col = self.R2.reshape(m) if n_out == 1 else None  # a sum over one output is that output
            self.Li = np.empty((m,), dt)
        elif loss.name == "cross_entropy" and self.fused:
            self.loss_kind = "ce"
            self.tiny = c(1e-300)  # np.clip(y_hat, 1e-300, None) is np.maximum(y_hat, 1e-300)
            self.P = np.empty((m, n_out), dt)
            self.Li = np.empty((m,), dt)
        self.yes = np.empty((m, n_out), bool)
        self.pred = np.empty((m,), np.intp)
        self.hits = np.empty((m,), bool)
        self.xb: Array | None = None
        self._program: list | None = None
        self._program_inputs: tuple = ()
        kernels = ("sigmoid", "tanh", "relu", "identity", "softmax")
        self.programmable = (all(layer.activation.name in kernels for layer in net.layers)
                             and (self.loss_kind == "squared" or self.loss_kind == "ce"))

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
            half = self.half
            np.multiply(z, half, a)
            np.tanh(a, a)
            np.add(a, self.one, a)
            np.multiply(a, half, a)
        elif name == "tanh":
            np.tanh(z, a)
        elif name == "relu":  # max(z, 0)
            np.maximum(z, self.zero, out=a)
        elif name == "identity":
            pass  # A[l] is Z[l], as fn(z) returns z itself
        elif name == "softmax":  # e = exp(z - max z); e / sum e
            row = self.ROW[l]
            np.maximum.reduce(z, axis=1, keepdims=True, out=row)
            np.subtract(z, row, a)
            np.exp(a, a)
            np.add.reduce(a, axis=1, keepdims=True, out=row)
            np.divide(a, row, a)
        else:
            self.A[l] = layer.activation.fn(z)  # no kernel: the registry's function, its own array

    # --- backward --------------------------------------------------------------------------------

    def _vjp(self, l: int, da: Array) -> Array:
        """dL/dz of layer l from dL/da, the same operations as Activation.vjp."""
        act = self.layers[l].activation
        z, a, t, dz = self.Z[l], self.A[l], self.T[l], self.DZ[l]
        name = act.name
        if name == "sigmoid":  # da * (a * (1 - a))
            np.subtract(self.one, a, t)
            np.multiply(a, t, t)
            np.multiply(da, t, dz)
        elif name == "tanh":  # da * (1 - a * a)
            np.multiply(a, a, t)
            np.subtract(self.one, t, t)
            np.multiply(da, t, dz)
        elif name == "relu":  # da * (z > 0)
            np.greater(z, self.zero, t)
            np.multiply(da, t, dz)
        elif name == "identity":  # da * 1 is da
            return da
        elif name == "softmax":  # a * (da - sum(da * a, axis=1))
            row = self.ROW[l]
            np.multiply(da, a, t)
            np.add.reduce(t, axis=1, keepdims=True, out=row)
            np.subtract(da, row, t)
            np.multiply(a, t, dz)
        else:
            dz = act.vjp(z, a, da)
        return dz

    # --- the same step as a flat list of calls -------------------------------------------------

    def _build_program(self, xb: Array, yb: Array, ytrue: Array | None) -> list:
        """run() unrolled into (ufunc, args) pairs on fixed arrays: no Python branching per call.

        Used when the same arrays come every step (full batch); the scalars it leaves in 0-d arrays
        (loss sum, squared residuals, ||dW||^2) are read by run_program.
        """
        net, n = self.net, self.n
        Z, A, DZ, T, ROW = self.Z, self.A, self.DZ, self.T, self.ROW
        half, one, zero = self.half, self.one, self.zero
        prog: list = []
        op = prog.append
        a_in = xb
        for l, layer in enumerate(self.layers):
            z, a = Z[l], A[l]
            op((np.matmul, (a_in, self.WT[l], z)))
            if net.b[l] is not None:
                op((np.add, (z, net.b[l], z)))
            name = layer.activation.name
            if name == "sigmoid":
                prog += [(np.multiply, (z, half, a)), (np.tanh, (a, a)), (np.add, (a, one, a)),
                         (np.multiply, (a, half, a))]
            elif name == "tanh":
                op((np.tanh, (z, a)))
            elif name == "relu":
                op((_maximum_into, (z, zero, a)))
            elif name == "softmax":
                row = ROW[l]
                prog += [(np.maximum.reduce, (z, 1, None, row, True)), (np.subtract, (z, row, a)), (np.exp, (a, a)),
                         (np.add.reduce, (a, 1, None, row, True)), (np.divide, (a, row, a))]
            a_in = a
        y_hat = a_in
        self.loss0 = np.zeros((), y_hat.dtype)
        self.score0 = np.zeros((), y_hat.dtype)
        self.g0 = [np.zeros((), y_hat.dtype) for _ in range(n)]
        if self.loss_kind == "squared":
            r, r2, li = self.R, self.R2, self.Li
            prog += [(np.subtract, (y_hat, yb, r)), (np.multiply, (r, r, r2))]
            if self.R2col is not None:
                op((np.multiply, (self.R2col, self.scale, li)))
            else:
                prog += [(np.add.reduce, (r2, 1, None, li)), (np.multiply, (li, self.scale, li))]
            op((np.add.reduce, (li, None, None, self.loss0)))
            if not self.classification:
                op((np.add.reduce, (r2, None, None, self.score0)))
        else:  # cross-entropy with softmax
            p, li = self.P, self.Li
            prog += [(_maximum_into, (y_hat, self.tiny, p)), (np.log, (p, p)), (np.multiply, (yb, p, p)),
                     (np.add.reduce, (p, 1, None, li)), (np.negative, (li, li)),
                     (np.add.reduce, (li, None, None, self.loss0))]
        if self.classification:
            if y_hat.shape[1] == 1:
                prog += [(np.greater_equal, (y_hat, half, self.yes)), (np.equal, (self.yes, ytrue, self.yes))]
            else:
                prog += [(np.argmax, (y_hat, 1, self.pred)), (np.equal, (self.pred, ytrue, self.hits))]
        if self.fused:
            dz = DZ[-1]
            op((np.subtract, (y_hat, yb, dz)))
        else:
            if self.grad_scale is None:
                dy = self.R
            else:
                dy = self.DA[-1]
                op((np.multiply, (self.R, self.grad_scale, dy)))
            dz = self._vjp_ops(prog, n - 1, dy)
        inv_m = self.inv_m
        for l in range(n - 1, -1, -1):
            dW = self.dW[l]
            prog += [(np.matmul, (dz.T, xb if l == 0 else A[l - 1], dW)), (np.multiply, (dW, inv_m, dW))]
            layer = self.layers[l]
            db = self.db[l]
            if layer.bias == "shared":
                s0 = np.zeros((), dW.dtype)
                prog += [(np.add.reduce, (dz, None, None, s0)), (np.multiply, (s0, inv_m, db))]
            elif layer.bias != "off":
                prog += [(np.add.reduce, (dz, 0, None, db)), (np.multiply, (db, inv_m, db))]
            op((np.dot, (self.dWr[l], self.dWr[l], self.g0[l])))
            if l > 0:
                da = self.DA[l - 1]
                op((np.matmul, (dz, net.W[l], da)))
                dz = self._vjp_ops(prog, l - 1, da)
        return prog

    def _vjp_ops(self, prog: list, l: int, da: Array) -> Array:
        name = self.layers[l].activation.name
        z, a, t, dz = self.Z[l], self.A[l], self.T[l], self.DZ[l]
        if name == "sigmoid":
            prog += [(np.subtract, (self.one, a, t)), (np.multiply, (a, t, t)), (np.multiply, (da, t, dz))]
        elif name == "tanh":
            prog += [(np.multiply, (a, a, t)), (np.subtract, (self.one, t, t)), (np.multiply, (da, t, dz))]
        elif name == "relu":
            prog += [(np.greater, (z, self.zero, t)), (np.multiply, (da, t, dz))]
        elif name == "identity":
            return da
        else:  # softmax
            row = self.ROW[l]
            prog += [(np.multiply, (da, a, t)), (np.add.reduce, (t, 1, None, row, True)), (np.subtract, (da, row, t)),
                     (np.multiply, (a, t, dz))]
        return dz

    def run_program(self, xb: Array, yb: Array, ytrue: Array | None, gnorm: list[float]) -> tuple[float, float]:
        """run() for inputs that are the same arrays every step, through the unrolled call list."""
        if self._program is None or self._program_inputs[0] is not xb or self._program_inputs[1] is not yb \
                or self._program_inputs[2] is not ytrue:
            self._program = self._build_program(xb, yb, ytrue)
            self._program_inputs = (xb, yb, ytrue)
        self.xb = xb
        for f, args in self._program:
            f(*args)
        if self.classification:
            score = float(np.count_nonzero(self.yes if self.A[-1].shape[1] == 1 else self.hits))
        else:
            score = float(self.score0)
        if self.exact_sqrt:
            for l, g in enumerate(self.g0):
                gnorm[l] += math.sqrt(g)
        else:
            for l, g in enumerate(self.g0):
                gnorm[l] += float(np.sqrt(g[()]))
        return float(self.loss0), score

    def run(self, xb: Array, yb: Array, ytrue: Array | None, gnorm: list[float]) -> tuple[float, float]:
        """One forward and backward pass on (xb, yb); adds ||dC/dW[l]|| to gnorm[l].

        ytrue: y >= 0.5 (one output) or the argmax labels (several) for classification, unused otherwise.
        Returns (sum of the per-sample losses, correct count or sum of squared residuals).
        """
        self.xb = xb
        net = self.net
        n = self.n
        Z, A, bs = self.Z, self.A, net.b
        a = xb
        for l in range(n):
            z = Z[l]
            np.matmul(a, self.WT[l], out=z)  # z = a_in @ W.T (+ b)
            b = bs[l]
            if b is not None:
                np.add(z, b, z)
            self._activate(l)
            a = A[l]
        y_hat = a

        # the cost and the metric, as fit adds them up
        kind = self.loss_kind
        if kind == "squared":  # L_i = scale * sum_k (y' - y)^2
            r, r2, li = self.R, self.R2, self.Li
            np.subtract(y_hat, yb, r)
            np.multiply(r, r, r2)
            if self.R2col is not None:
                np.multiply(self.R2col, self.scale, li)
            else:
                np.add.reduce(r2, axis=1, out=li)
                np.multiply(li, self.scale, li)
            loss_sum = float(np.add.reduce(li))
        elif kind == "ce":  # L_i = -sum_k y_k ln(max(y'_k, 1e-300))
            p, li = self.P, self.Li
            np.maximum(y_hat, self.tiny, out=p)
            np.log(p, p)
            np.multiply(yb, p, p)
            np.add.reduce(p, axis=1, out=li)
            np.negative(li, li)
            loss_sum = float(np.add.reduce(li))
        else:
            loss_sum = float(np.sum(net.loss.value(y_hat, yb)))
        if self.classification:
            if y_hat.shape[1] == 1:
                yes = self.yes
                np.greater_equal(y_hat, self.half, yes)
                np.equal(yes, ytrue, yes)
                score = float(np.count_nonzero(yes))
            else:
                np.argmax(y_hat, axis=1, out=self.pred)
                np.equal(self.pred, ytrue, self.hits)
                score = float(np.count_nonzero(self.hits))
        elif kind == "squared":
            score = float(np.add.reduce(self.R2, axis=None))  # (y - y')^2 == (y' - y)^2 exactly
        else:
            score = float(np.sum((yb - y_hat) ** 2))

        # the output delta
        if self.fused:
            dz = self.DZ[-1]
            np.subtract(y_hat, yb, dz)
        else:
            if kind == "squared":
                if self.grad_scale is None:
                    dy = self.R
                else:
                    dy = self.DA[-1]
                    np.multiply(self.R, self.grad_scale, dy)
            else:
                dy = net.loss.grad(y_hat, yb)
            dz = self._vjp(n - 1, dy)

        inv_m = self.inv_m
        exact_sqrt = self.exact_sqrt
        for l in range(n - 1, -1, -1):
            dW = self.dW[l]
            np.matmul(dz.T, xb if l == 0 else A[l - 1], out=dW)  # mean over samples of dz_j * a_k
            np.multiply(dW, inv_m, dW)
            layer = self.layers[l]
            if layer.bias == "shared":
                self.db[l][0] = dz.sum() * (1.0 / self.m)
            elif layer.bias != "off":
                db = self.db[l]
                np.add.reduce(dz, axis=0, out=db)
                np.multiply(db, inv_m, db)
            r = self.dWr[l]
            s = r.dot(r)  # ||dW||^2 as a BLAS dot: one pass, no temporary
            gnorm[l] += math.sqrt(s) if exact_sqrt else float(np.sqrt(s))
            if l > 0:
                da = self.DA[l - 1]
                np.matmul(dz, net.W[l], out=da)  # the upstream sum over the nodes this layer feeds
                dz = self._vjp(l - 1, da)
        return loss_sum, score
