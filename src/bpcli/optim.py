"""The optimisers: one in-place update per kind (gd and sgd, momentum, adam), with weight decay as a term."""

from __future__ import annotations

import numpy as np

from bpcli.engine import Gradients
from bpcli.model import Network
from bpcli.schema import TrainConfig

Array = np.ndarray


class Optimizer:
    """Gradient descent and friends, updating the network's arrays in place: one update per optimiser."""

    def __init__(self, net: Network, settings: TrainConfig, buffers: dict[str, Array] | None = None):
        self.s = settings
        self.kind = settings.optimizer
        self.params: list[tuple[str, Array, bool]] = []  # (key, array, is_weight)
        for layer, W, b in zip(net.layers, net.W, net.b):
            self.params.append((f"{layer.letter}.W", W, True))
            if b is not None and layer.bias_trainable:
                self.params.append((f"{layer.letter}.b", b, False))
        self.buffers = buffers if buffers is not None else {}
        if self.kind in ("momentum", "adam"):
            for key, p, _ in self.params:
                self.buffers.setdefault(f"m:{key}", np.zeros_like(p))
                if self.kind == "adam":
                    self.buffers.setdefault(f"v:{key}", np.zeros_like(p))
        self._tmp = [np.empty_like(p) for _, p, _ in self.params]  # scratch: no allocation per step
        # lr, weight decay and momentum in each parameter's dtype, converted once
        self._const = [tuple(p.dtype.type(v) for v in (settings.lr, settings.weight_decay, settings.momentum))
                       for _, p, _ in self.params]
        self._trainable_bias = [b is not None and layer.bias_trainable for layer, b in zip(net.layers, net.b)]

    def gradients(self, grads: Gradients) -> list[Array]:
        """The trainable parameters' gradients, aligned with self.params."""
        out = []
        for trainable, dW, db in zip(self._trainable_bias, grads.dW, grads.db):
            out.append(dW)
            if trainable:
                out.append(db)
        return out

    def step(self, grads: list[Array], t: int) -> None:
        """Apply one update; grads align with self.params; t is the 1-based step count."""
        s = self.s
        for (key, p, is_w), g, tmp, (lr, wd, mu) in zip(self.params, grads, self._tmp, self._const):
            if s.weight_decay and is_w:  # the L2 term's gradient: g + weight_decay * W
                np.multiply(p, wd, out=tmp)
                g = np.add(g, tmp, out=tmp)
            if self.kind in ("gd", "sgd"):  # W <- W - lr * g
                np.subtract(p, np.multiply(g, lr, out=tmp), out=p)
            elif self.kind == "momentum":  # v <- momentum * v + g;  W <- W - lr * v
                v = self.buffers[f"m:{key}"]
                np.multiply(v, mu, out=v)
                np.add(v, g, out=v)
                np.subtract(p, np.multiply(v, lr, out=tmp), out=p)
            else:
                self._adam(key, p, g, t)

    def _adam(self, key: str, p: Array, g: Array, t: int) -> None:
        """m <- b1 m + (1 - b1) g;  v <- b2 v + (1 - b2) g^2;
        W <- W - lr * m_hat / (sqrt(v_hat) + eps), with m_hat = m / (1 - b1^t) and v_hat = v / (1 - b2^t),
        written in the equivalent form lr_t * m / (sqrt(v) + eps * sqrt(1 - b2^t))."""
        s = self.s
        m, v = self.buffers[f"m:{key}"], self.buffers[f"v:{key}"]
        m *= s.beta1
        m += (1 - s.beta1) * g
        v *= s.beta2
        v += (1 - s.beta2) * (g * g)
        lr_t = s.lr * np.sqrt(1 - s.beta2**t) / (1 - s.beta1**t)
        p -= lr_t * m / (np.sqrt(v) + s.epsilon * np.sqrt(1 - s.beta2**t))
