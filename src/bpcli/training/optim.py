"""The optimisers: one in-place update per kind (gd, sgd, momentum, nesterov, rmsprop, adagrad, adam, adamw)."""

from __future__ import annotations

import numpy as np

from bpcli.nn.engine import Gradients, block_views
from bpcli.nn.model import Network
from bpcli.schema import TrainConfig

Array = np.ndarray

# The named terms Optimizer.step records for one parameter when asked to (trace): explain and step show them.
#   value, gradient: the parameter and dC/dp before the step; decay: weight_decay * p (weights only);
#   l1: l1 * sign(p), the L1 penalty's subgradient (weights only; 0 at p = 0), added to g for every optimiser;
#   g: the gradient the update uses (gradient + decay); step: what is subtracted; new: the value after.
#   momentum: v_prev, v (the velocity before and after); adam: m_prev, v_prev, m, v, c1 = 1 - beta1^t,
#   c2 = 1 - beta2^t, m_hat, v_hat, denom = sqrt(v_hat) + epsilon.
#   nesterov: v_prev, v as momentum, look = g + momentum * v (the step's direction);
#   rmsprop: v_prev, v (the running average of g^2), denom = sqrt(v) + epsilon;
#   adagrad: s_prev, s (the running sum of g^2), denom = sqrt(s) + epsilon;
#   adamw: adam's terms with g = gradient, then decay = lr * weight_decay * p (weights only), taken off the weight
#   before the adam step (p <- p - decay - step), as torch.optim.AdamW does.
# The state, one array per parameter KEY (A.W, A.b, ...) in TrainState.buffers, saved with every snapshot and
# checkpoint: m:KEY the first moment (adam, adamw) or the velocity (momentum, nesterov); v:KEY the second moment
# (adam, adamw), the running average of g^2 (rmsprop) or the running sum of g^2 (adagrad). All start at zero.
TERMS = {
    "gd": ("value", "gradient", "decay", "l1", "g", "step", "new"),
    "momentum": ("value", "gradient", "decay", "l1", "g", "v_prev", "v", "step", "new"),
    "nesterov": ("value", "gradient", "decay", "l1", "g", "v_prev", "v", "look", "step", "new"),
    "rmsprop": ("value", "gradient", "decay", "l1", "g", "v_prev", "v", "denom", "step", "new"),
    "adagrad": ("value", "gradient", "decay", "l1", "g", "s_prev", "s", "denom", "step", "new"),
    "adam": ("value", "gradient", "decay", "l1", "g", "m_prev", "v_prev", "m", "v", "c1", "c2", "m_hat", "v_hat",
             "denom", "step", "new"),
    "adamw": ("value", "gradient", "l1", "g", "m_prev", "v_prev", "m", "v", "c1", "c2", "m_hat", "v_hat", "denom",
              "decay", "step", "new"),
}
TERMS["sgd"] = TERMS["gd"]
BUFFERS = {"momentum": ("m",), "nesterov": ("m",), "rmsprop": ("v",), "adagrad": ("v",), "adam": ("m", "v"),
           "adamw": ("m", "v")}  # the state arrays each optimiser keeps per parameter (m:KEY, v:KEY)
DECOUPLED = ("adamw",)  # weight decay taken off the weight, not added to the gradient: no L2 term in the loss


def l2_coefficient(s: TrainConfig) -> float:
    """The L2 penalty's coefficient in the objective (loss + wd/2 sum ||W||^2): weight_decay, except for an
    optimiser whose decay is decoupled from the gradient (adamw), where no penalty is part of the loss."""
    return 0.0 if s.optimizer in DECOUPLED else s.weight_decay


def l2_penalty(W: list[Array], weight_decay: float) -> float:
    """The objective's L2 term, weight_decay / 2 * sum_l ||W_l||^2; its gradient, weight_decay * W, is the decay term."""
    return 0.5 * weight_decay * sum(float(w.ravel().dot(w.ravel())) for w in W)


def hyper_of(s: TrainConfig) -> tuple[tuple[str, float], ...]:
    """The optimiser's constants besides lr and weight decay, as its update uses them: momentum's (and
    nesterov's) momentum, rmsprop's alpha and epsilon, adagrad's epsilon, Adam's (and AdamW's) beta1, beta2 and
    epsilon; () for gradient descent."""
    if s.optimizer in ("momentum", "nesterov"):
        return (("momentum", s.momentum),)
    if s.optimizer == "rmsprop":
        return (("alpha", s.alpha), ("epsilon", s.epsilon))
    if s.optimizer == "adagrad":
        return (("epsilon", s.epsilon),)
    if s.optimizer in ("adam", "adamw"):
        return (("beta1", s.beta1), ("beta2", s.beta2), ("epsilon", s.epsilon))
    return ()


def l1_of(s: TrainConfig) -> tuple[tuple[str, float], ...]:
    """(("l1", coefficient),) when the L1 penalty is on, else (): shown and saved beside the optimiser's constants."""
    return (("l1", s.l1),) if s.l1 else ()


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
        arrays = [p for _, p, _ in self.params]
        for kind in BUFFERS.get(self.kind, ()):
            keys = [f"{kind}:{key}" for key, _, _ in self.params]
            if not any(k in self.buffers for k in keys):  # new state: one zero block, each array a view into it
                zeros = np.zeros(sum(a.size for a in arrays), arrays[0].dtype)
                self.buffers.update(zip(keys, block_views(zeros, arrays)))
            for k, p in zip(keys, arrays):
                self.buffers.setdefault(k, np.zeros_like(p))
        self._tmp = [np.empty_like(p) for p in arrays]  # scratch: no allocation per step
        self._state = [tuple(self.buffers.get(f"{kind}:{key}") for kind in ("m", "v")) for key, _, _ in self.params]
        self._trainable_bias = [b is not None and layer.bias_trainable for layer, b in zip(net.layers, net.b)]
        self._all_trainable = all(b is not None for b in net.b) and all(self._trainable_bias)
        # weight decay added to the gradient (the L2 term's); adamw's is taken off the weight instead
        self._coupled = bool(settings.weight_decay) and self.kind not in DECOUPLED
        self._block = self._block_plan(net, arrays)
        self.set_lr(settings.lr)

    def _block_plan(self, net: Network, arrays: list[Array]) -> tuple | None:
        """When every parameter array is updated alike (no frozen bias, no weight decay or L1 term, one dtype) and
        the optimiser's state arrays are views laid out one after another in one block per kind (as __init__ makes
        new ones): (the state blocks (m, v), a scratch block, its views). The update of a whole step can then run
        over blocks, the gradients' included (Buffers.grad lays them out alike), and only the last subtraction
        per parameter array. None otherwise."""
        if (self.s.weight_decay or self.s.l1 or len({a.dtype for a in arrays}) != 1
                or not all(b is None or t for b, t in zip(net.b, self._trainable_bias))):
            return None
        states = []
        for i in range(2):
            column = [st[i] for st in self._state]
            base = None if column[0] is None else _block_of(column)
            if column[0] is not None and base is None:
                return None
            states.append(base)
        tmp = np.empty(sum(a.size for a in arrays), arrays[0].dtype)
        return tuple(states), tmp, block_views(tmp, arrays)

    def set_lr(self, lr: float) -> None:
        """The learning rate of the next steps (a schedule's lr of the epoch); lr, weight decay and momentum in
        each parameter's dtype, converted once."""
        self.lr = float(lr)
        self._const = [tuple(p.dtype.type(v) for v in (lr, self.s.weight_decay, self.s.momentum))
                       for _, p, _ in self.params]

    def gradients(self, grads: Gradients) -> list[Array]:
        """The trainable parameters' gradients, aligned with self.params."""
        if self._all_trainable:  # W and b of every layer, in turn
            return [g for pair in zip(grads.dW, grads.db) for g in pair]
        out = []
        for trainable, dW, db in zip(self._trainable_bias, grads.dW, grads.db):
            out.append(dW)
            if trainable:
                out.append(db)
        return out

    def step(self, grads: list[Array], t: int, trace: dict[str, dict[str, Array]] | None = None,
             spent: bool = False, block: Array | None = None) -> None:
        """Apply one update; grads align with self.params; t is the 1-based step count.

        trace: when given, each parameter's named terms (TERMS) are recorded into trace[key] as copies, so a
        caller can show the very numbers of this update; training passes None.
        spent: the caller has no further use for the gradient arrays, so gradient descent's lr * g is written
        over g (one array fewer through the cache than a scratch array; the same numbers).
        block: the same gradients as one array, laid out as grads one after another (training's Buffers.grad).
        With it, spent gradients, no trace and a block plan (_block_plan), the step is computed once over the
        blocks and subtracted array by array: every term is elementwise, so each number is the one the per-array
        update gives, in a few calls a step instead of a few per array.
        """
        if block is not None and spent and trace is None and self._block is not None:
            states, tmp, tmp_views = self._block
            step = self._step_of(None, False, block, tmp, self._const[0], states, t, None, True)
            parts = grads if step is block else tmp_views  # _step_of leaves the step in g or in tmp
            for (_, p, _), d in zip(self.params, parts):
                np.subtract(p, d, out=p)
            return
        in_place = spent and trace is None
        for (key, p, is_w), g, tmp, const, state in zip(self.params, grads, self._tmp, self._const, self._state):
            rec = None if trace is None else trace.setdefault(key, {"value": p.copy(), "gradient": g.copy()})
            step = self._step_of(p, is_w, g, tmp, const, state, t, rec, in_place)
            np.subtract(p, step, out=p)
            if rec is not None:
                rec["new"] = p.copy()

    def _step_of(self, p: Array | None, is_w: bool, g: Array, tmp: Array, const: tuple, state, t: int,
                 rec: dict | None, in_place: bool) -> Array:
        """What one update subtracts from the parameter array p, given its gradient g, a scratch tmp, (lr, weight
        decay, momentum) in its dtype and its state arrays (m, v) (None where the optimiser keeps none), with
        in_place: g may be written over. The step is in g, tmp or another array; rec: the trace, or None.
        p is read for weight decay and the L1 term only (adamw's decay is taken off p here)."""
        s = self.s
        lr, wd, mu = const
        if self._coupled and is_w:  # the L2 term's gradient: g + wd * W
            np.multiply(p, wd, out=tmp)
            if rec is not None:
                rec["decay"] = tmp.copy()
            g = np.add(g, tmp, out=tmp)
        if s.l1 and is_w:  # the L1 term's subgradient: g + l1 * sign(W), 0 where W = 0
            l1 = np.sign(p)
            l1 *= p.dtype.type(s.l1)
            if rec is not None:
                rec["l1"] = l1.copy()
            g = np.add(g, l1, out=tmp)
        if rec is not None:
            rec["g"] = g.copy()
        kind = self.kind
        if kind in ("gd", "sgd"):  # W <- W - lr * g
            step = np.multiply(g, lr, out=g if in_place else tmp)
        elif kind == "momentum":  # v <- momentum * v + g;  W <- W - lr * v
            v = state[0]
            if rec is not None:
                rec["v_prev"] = v.copy()
            np.multiply(v, mu, out=v)
            np.add(v, g, out=v)
            step = np.multiply(v, lr, out=tmp)
            if rec is not None:
                rec["v"] = v.copy()
        elif kind == "nesterov":  # v <- momentum * v + g;  W <- W - lr * (g + momentum * v)
            v = state[0]
            if rec is not None:
                rec["v_prev"] = v.copy()
            np.multiply(v, mu, out=v)
            np.add(v, g, out=v)
            look = np.multiply(v, mu)
            look += g
            step = np.multiply(look, lr, out=tmp)
            if rec is not None:
                rec.update(v=v.copy(), look=look)
        elif kind == "rmsprop":
            step = self._rmsprop(state[1], g, tmp, rec, lr)
        elif kind == "adagrad":
            step = self._adagrad(state[1], g, tmp, rec, lr)
        else:
            if kind in DECOUPLED and s.weight_decay and is_w:
                decay = p * (lr * wd)  # W <- W - lr * wd * W, before the Adam step (torch.optim.AdamW)
                if rec is not None:
                    rec["decay"] = decay.copy()
                np.subtract(p, decay, out=p)
            step = self._adam(state[0], state[1], g, t, tmp, rec)
        if rec is not None:
            rec["step"] = step.copy()
        return step

    def _adam(self, m: Array, v: Array, g: Array, t: int, tmp: Array, rec: dict | None) -> Array:
        """m <- b1 m + (1 - b1) g;  v <- b2 v + (1 - b2) g^2;  m_hat = m / (1 - b1^t),  v_hat = v / (1 - b2^t);
        the step lr * m_hat / (sqrt(v_hat) + eps), into tmp (which may hold g: it is read first)."""
        s = self.s
        if rec is not None:
            rec["m_prev"], rec["v_prev"] = m.copy(), v.copy()
        m *= s.beta1
        m += (1 - s.beta1) * g
        v *= s.beta2
        v += (1 - s.beta2) * (g * g)
        c1, c2 = 1 - s.beta1**t, 1 - s.beta2**t
        m_hat = m / c1
        v_hat = v / c2
        denom = np.sqrt(v_hat)
        denom += s.epsilon
        step = np.multiply(m_hat, self.lr, out=tmp)
        step /= denom
        if rec is not None:
            rec.update(m=m.copy(), v=v.copy(), c1=np.full_like(m, c1), c2=np.full_like(m, c2), m_hat=m_hat,
                       v_hat=v_hat, denom=denom)
        return step


    def _rmsprop(self, v: Array, g: Array, tmp: Array, rec: dict | None, lr) -> Array:
        """v <- alpha v + (1 - alpha) g^2;  the step lr * g / (sqrt(v) + eps), into tmp (which may hold g)."""
        s = self.s
        if rec is not None:
            rec["v_prev"] = v.copy()
        v *= s.alpha
        v += (1 - s.alpha) * (g * g)
        denom = np.sqrt(v)
        denom += s.epsilon
        step = np.multiply(g, lr, out=tmp)
        step /= denom
        if rec is not None:
            rec.update(v=v.copy(), denom=denom)
        return step

    def _adagrad(self, acc: Array, g: Array, tmp: Array, rec: dict | None, lr) -> Array:
        """s <- s + g^2;  the step lr * g / (sqrt(s) + eps), into tmp (which may hold g)."""
        if rec is not None:
            rec["s_prev"] = acc.copy()
        acc += g * g
        denom = np.sqrt(acc)
        denom += self.s.epsilon
        step = np.multiply(g, lr, out=tmp)
        step /= denom
        if rec is not None:
            rec.update(s=acc.copy(), denom=denom)
        return step


def _block_of(arrays: list[Array]) -> Array | None:
    """The 1-D array the arrays are views of, laid out one after another from its start to its end (as block_views
    makes them); None when they are not."""
    base = arrays[0].base
    if base is None or base.ndim != 1 or not base.flags.c_contiguous:
        return None
    at = base.__array_interface__["data"][0]
    for a in arrays:
        if a.base is not base or not a.flags.c_contiguous or a.__array_interface__["data"][0] != at:
            return None
        at += a.nbytes
    return base if at == base.__array_interface__["data"][0] + base.nbytes else None


def preview_step(net: Network, settings: TrainConfig, grads: Gradients, buffers: dict[str, Array] | None = None,
                 step: int = 0) -> dict[str, dict[str, Array]]:
    """The next update of every trainable parameter array, as Optimizer.step makes it, without touching `net`
    or `buffers`: one traced step on copies of both, continuing from `buffers` (m:KEY, v:KEY; empty = zeros)
    after `step` steps (so t = step + 1). Returns trace[key][term] (TERMS), arrays shaped like the parameter."""
    own = {k: v.copy() for k, v in (buffers or {}).items() if k.startswith(("m:", "v:"))}
    opt = Optimizer(net.copy(), settings, own)
    trace: dict[str, dict[str, Array]] = {}
    opt.step(opt.gradients(grads), step + 1, trace)
    return trace
