"""Training very small float64 networks in plain Python floats: the same records as train.fit, no numpy per step.

For a network like the seed's 2-2-1 the numpy path costs about 40 numpy calls per step, each of which
takes longer than the whole step in Python floats.  This module writes, for one network, a Python
function with every weight in a local variable and every sum written out (forward, loss, metric,
backward, gradient norms, the optimiser update), compiles it once per fit, and runs the epoch loop
with the same bookkeeping as train.fit: the same EpochRecord fields, stopping, rollback and TrainState.

The numbers are those of the numpy path to rounding (math.tanh and OpenBLAS's fused multiply-adds
differ from it in the last bit), deterministic for a config and seed.  Whenever an epoch is not clean
here (an overflow that numpy would turn into inf, a NaN or infinite loss or weight), the epoch is run
again, from its start, by the numpy path, which then finishes the run: divergence is always reported
by numpy's own rules.
"""

from __future__ import annotations

import functools
import math
import time
from collections.abc import Callable, Iterator

import numpy as np

from bpcli.schema import TrainConfig
from bpcli.data import Dataset
from bpcli.losses import SQUARED_CONVENTIONS, squared_scale
from bpcli.model import Network

ENABLED = True  # train.fit takes this path when it applies; tests set it False to force the numpy path
MAX_WORK = 500  # parameters x batch rows: from about 600-1500 on the numpy path is faster (docs/perf.md)
MAX_PARAMS = 200  # keeps the generated source small
ACTIVATIONS = ("identity", "sigmoid", "tanh", "relu", "leaky_relu", "elu", "softplus", "silu", "gelu")
LOSSES = ("squared_error", "binary_cross_entropy", "cross_entropy", "absolute_error", "huber")
OPTIMIZERS = ("gd", "sgd", "momentum", "adam")


def n_params(net: Network) -> int:
    return sum(W.size + (0 if b is None else b.size) for W, b in zip(net.W, net.b))


def applies(net: Network, train: Dataset, settings: TrainConfig) -> bool:
    """True when fit should train `net` here: float64, elementwise math-module activations, a scalar loss, small."""
    if not ENABLED or np.dtype(net.dtype) != np.float64 or settings.optimizer not in OPTIMIZERS:
        return False
    if any(a is not None and (a.dtype != np.float64 or not a.flags.c_contiguous) for a in net.W + net.b):
        return False
    if any(layer.activation.name not in ACTIVATIONS or not layer.activation.elementwise for layer in net.layers):
        return False
    loss = net.loss
    if loss.name not in LOSSES or (loss.name == "squared_error"
                                   and loss.params.get("convention") not in SQUARED_CONVENTIONS):
        return False
    if loss.name == "cross_entropy" and net.fused_output:
        return False  # softmax output: not elementwise (already excluded above)
    bs = train.m if settings.batch_size is None else min(settings.batch_size, train.m)
    p = n_params(net)
    return p <= MAX_PARAMS and p * bs <= MAX_WORK


# --- code generation --------------------------------------------------------------------------------


def _f(v: float) -> str:
    """A float literal that reads back as exactly v."""
    return repr(float(v))


def _activation(name: str, params: dict, z: str, a: str) -> list[str]:
    """Lines computing a = f(z), the registry's operations in the registry's order."""
    if name == "identity":
        return [f"{a} = {z}"]
    if name == "sigmoid":
        return [f"{a} = 0.5 * (1.0 + tanh(0.5 * {z}))"]
    if name == "tanh":
        return [f"{a} = tanh({z})"]
    if name == "relu":
        return [f"{a} = {z} if {z} > 0.0 else 0.0"]
    if name == "leaky_relu":
        return [f"{a} = {z} if {z} > 0.0 else {_f(params['slope'])} * {z}"]
    if name == "elu":
        return [f"{a} = {z} if {z} > 0.0 else {_f(params['alpha'])} * expm1({z})"]
    if name == "softplus":
        return [f"{a} = softplus({z})"]
    if name == "silu":
        return [f"{a} = {z} * (0.5 * (1.0 + tanh(0.5 * {z})))"]
    if name == "gelu":
        return [f"{a} = 0.5 * {z} * (1.0 + tanh(GELU_C * ({z} + 0.044715 * {z} ** 3)))"]
    raise ValueError(name)


def _derivative(name: str, params: dict, z: str, a: str) -> str | None:
    """An expression for f'(z) as the registry's grad(z, a) computes it; None for identity (f' = 1)."""
    if name == "identity":
        return None
    if name == "sigmoid":
        return f"({a} * (1.0 - {a}))"
    if name == "tanh":
        return f"(1.0 - {a} * {a})"
    if name == "relu":
        return f"(1.0 if {z} > 0.0 else 0.0)"
    if name == "leaky_relu":
        return f"(1.0 if {z} > 0.0 else {_f(params['slope'])})"
    if name == "elu":
        return f"(1.0 if {z} > 0.0 else {a} + {_f(params['alpha'])})"
    if name == "softplus":
        return f"(0.5 * (1.0 + tanh(0.5 * {z})))"
    if name == "silu":
        return f"silu_grad({z})"
    if name == "gelu":
        return f"gelu_grad({z})"
    raise ValueError(name)


def _softplus(z: float) -> float:
    """numpy's logaddexp(0.0, z), step for step (never overflows)."""
    if z == 0.0:
        return 0.0 + math.log(2.0)
    tmp = 0.0 - z
    if tmp > 0:
        return 0.0 + math.log1p(math.exp(-tmp))
    if tmp <= 0:
        return z + math.log1p(math.exp(tmp))
    return tmp


def _silu_grad(z: float) -> float:
    s = 0.5 * (1.0 + math.tanh(0.5 * z))
    return s * (1.0 + z * (1.0 - s))


_GELU_C = math.sqrt(2.0 / math.pi)


def _gelu_grad(z: float) -> float:
    t = math.tanh(_GELU_C * (z + 0.044715 * z**3))
    return 0.5 * (1.0 + t) + 0.5 * z * (1.0 - t * t) * _GELU_C * (1.0 + 3 * 0.044715 * z * z)


class _Names:
    """Variable names of the generated code: W{l}_{j}_{k}, b{l}_{j}, their gradients g..., buffers m.../v..."""

    def __init__(self, net: Network):
        self.net = net
        self.params: list[str] = []  # every parameter, in the order of _arrays(net), row-major
        self.trainable: list[str] = []  # the parameters the optimiser updates, in Optimizer order
        self.weight: dict[str, bool] = {}
        for l, (layer, W, b) in enumerate(zip(net.layers, net.W, net.b)):
            start = len(self.params)
            for j in range(W.shape[0]):
                for k in range(W.shape[1]):
                    self.params.append(f"W{l}_{j}_{k}")
            self.trainable += self.params[start:]
            self.weight.update({p: True for p in self.params[start:]})
            if b is not None:
                start = len(self.params)
                self.params += [f"b{l}_{j}" for j in range(b.size)]
                if layer.bias_trainable:
                    self.trainable += self.params[start:]
                self.weight.update({p: False for p in self.params[start:]})

    def bias(self, l: int, j: int) -> str | None:
        layer = self.net.layers[l]
        if layer.bias == "off":
            return None
        return f"b{l}_0" if layer.bias == "shared" else f"b{l}_{j}"


def _step_source(net: Network, settings: TrainConfig, classification: bool, backward: bool, full: bool) -> str:
    """Source of one generated function; rows are tuples (x_0, ..., y_0, ..., label), P, M, V flat tuples
    of the parameters and the optimiser buffers (Optimizer order), N0 the weight norms at the epoch's start.

    backward and full: epoch(P, M, V, rows, t, N0) -> (P, M, V, loss sum, score, ||dW|| per layer,
        saturation, ||W|| per layer, update ratios, check), one full-batch step and everything its
        EpochRecord needs; check is finite exactly when the loss and every parameter are (all terms >= 0).
    backward, not full: step(P, M, V, rows, t) -> (P, M, V, loss sum, score, ||dW|| per layer).
    not backward: saturation(P, rows) -> the saturation of each layer on these rows.
    """
    count = full or not backward
    nm = _Names(net)
    layers = net.layers
    n = len(layers)
    n_in = layers[0].n_in
    n_out = layers[-1].n_out
    L: list[str] = []
    ind = "    "
    emit = L.append
    opt = settings.optimizer
    if not backward:
        emit("def saturation(P, rows):")
    elif full:
        emit("def epoch(P, M, V, rows, t, N0):")
    else:
        emit("def step(P, M, V, rows, t):")
    emit(ind + f"({', '.join(nm.params)},) = P")
    if backward:
        tr = nm.trainable
        if opt in ("momentum", "adam") and tr:
            emit(ind + f"({', '.join('m' + p for p in tr)},) = M")
        if opt == "adam" and tr:
            emit(ind + f"({', '.join('v' + p for p in tr)},) = V")
        if tr:
            emit(ind + " = ".join("g" + p for p in tr) + " = 0.0")
        emit(ind + "loss = score = 0.0")
    sat_units = []  # (l, j, kind) with a counter c{l}_{j}
    if count:
        for l, layer in enumerate(layers):
            kind = layer.activation.saturates
            if kind in ("sigmoid-like", "relu-like"):
                sat_units += [(l, j, kind) for j in range(layer.n_out)]
        if sat_units:
            emit(ind + " = ".join(f"c{l}_{j}" for l, j, _ in sat_units) + " = 0")
    xs = [f"x{k}" for k in range(n_in)]
    ys = [f"y{k}" for k in range(n_out)]
    emit(ind + f"for {', '.join(xs + ys)}, label in rows:")
    body = ind * 2
    # forward: z = a_in @ W.T + b, a = f(z)
    a_in = xs
    outs: list[list[str]] = []
    for l, layer in enumerate(layers):
        act = layer.activation
        a_l = []
        for j in range(layer.n_out):
            s = " + ".join(f"W{l}_{j}_{k} * {a_in[k]}" for k in range(layer.n_in))
            b = nm.bias(l, j)
            if b is not None:
                s = f"{s} + {b}"
            z = f"z{l}_{j}"
            emit(body + f"{z} = {s}")
            if act.name == "identity":
                a_l.append(z)
            else:
                for line in _activation(act.name, act.params, z, f"a{l}_{j}"):
                    emit(body + line)
                a_l.append(f"a{l}_{j}")
        outs.append(a_l)
        a_in = a_l
    o = outs[-1]
    # saturation counters: f'(z) below 5% of its peak (sigmoid-like), or z > 0 (relu-like: dead when never)
    stored: dict[tuple[int, int], str] = {}
    for l, j, kind in sat_units:
        act = layers[l].activation
        if kind == "sigmoid-like":
            peak = 0.25 if act.name == "sigmoid" else 1.0
            emit(body + f"f{l}_{j} = {_derivative(act.name, act.params, f'z{l}_{j}', outs[l][j])}")
            stored[(l, j)] = f"f{l}_{j}"  # f'(z), computed once for the counter and the backward pass
            emit(body + f"c{l}_{j} += f{l}_{j} < {_f(0.05 * peak)}")
        else:
            emit(body + f"c{l}_{j} += z{l}_{j} > 0.0")
    # share of saturated (f' < 5% of its peak on > 90% of the samples) or dead (never z > 0) units
    sat = []
    for l, layer in enumerate(layers):
        kind = layer.activation.saturates
        if kind == "sigmoid-like":
            sat.append("(" + " + ".join(f"(c{l}_{j} / n_rows > 0.9)" for j in range(layer.n_out))
                       + f") / {layer.n_out}")
        elif kind == "relu-like":
            sat.append("(" + " + ".join(f"(c{l}_{j} == 0)" for j in range(layer.n_out)) + f") / {layer.n_out}")
        else:
            sat.append("None")
    sat_tuple = "(" + "".join(f"{v}, " for v in sat) + ")"
    if not backward:
        emit(ind + "n_rows = len(rows)")
        emit(ind + f"return {sat_tuple}")
        return "\n".join(L) + "\n"
    # the loss L_i and dL_i/dy'
    loss = net.loss
    fused = net.fused_output
    dy: list[str] = []
    res = [f"r{k}" for k in range(n_out)]
    for k in range(n_out):
        emit(body + f"r{k} = {o[k]} - {ys[k]}")
    if loss.name == "squared_error":
        scale = squared_scale(loss.params["convention"], n_out)
        sq = " + ".join(f"r{k} * r{k}" for k in range(n_out))
        emit(body + (f"loss += {sq} * {_f(scale)}" if n_out == 1 else f"loss += ({sq}) * {_f(scale)}"))
        gs = 2.0 * scale
        dy = res if gs == 1.0 else [f"r{k} * {_f(gs)}" for k in range(n_out)]
    elif loss.name == "binary_cross_entropy":
        terms = []
        for k in range(n_out):
            emit(body + f"p{k} = 1e-300 if {o[k]} < 1e-300 else (1.0 if {o[k]} > 1.0 else {o[k]})")
            emit(body + f"q{k} = 1.0 - {o[k]}")
            emit(body + f"q{k} = 1e-300 if q{k} < 1e-300 else (1.0 if q{k} > 1.0 else q{k})")
            terms.append(f"{ys[k]} * log(p{k}) + (1.0 - {ys[k]}) * log(q{k})")
        emit(body + f"loss += -({' + '.join(terms) if n_out == 1 else ' + '.join(f'({t})' for t in terms)})")
        if not fused:
            for k in range(n_out):
                emit(body + f"p{k} = 1e-300 if {o[k]} < 1e-300 else "
                            f"({_f(1.0 - 1e-16)} if {o[k]} > {_f(1.0 - 1e-16)} else {o[k]})")
                dy.append(f"(p{k} - {ys[k]}) / (p{k} * (1.0 - p{k}))")
    elif loss.name == "cross_entropy":
        for k in range(n_out):
            emit(body + f"p{k} = 1e-300 if {o[k]} < 1e-300 else {o[k]}")
        emit(body + f"loss += -({' + '.join(f'{ys[k]} * log(p{k})' for k in range(n_out))})")
        dy = [f"-{ys[k]} / p{k}" for k in range(n_out)]
    elif loss.name == "absolute_error":
        emit(body + f"loss += {' + '.join(f'abs(r{k})' for k in range(n_out))}")
        dy = [f"(1.0 if r{k} > 0.0 else (-1.0 if r{k} < 0.0 else 0.0))" for k in range(n_out)]
    elif loss.name == "huber":
        d = _f(loss.params["delta"])
        for k in range(n_out):
            emit(body + f"h{k} = abs(r{k})")
        emit(body + "loss += " + " + ".join(f"(0.5 * h{k} * h{k} if h{k} <= {d} else {d} * (h{k} - 0.5 * {d}))"
                                             for k in range(n_out)))
        dy = [f"(-{d} if r{k} < -{d} else ({d} if r{k} > {d} else r{k}))" for k in range(n_out)]
    else:
        raise ValueError(loss.name)
    # the metric: correct count (threshold 0.5 or argmax) or the sum of squared residuals
    if classification:
        if n_out == 1:
            emit(body + f"score += ({o[0]} >= 0.5) == label")
        else:
            emit(body + f"best = {o[0]}")
            emit(body + "pred = 0")
            for k in range(1, n_out):
                emit(body + f"if {o[k]} > best:")
                emit(body + ind + f"best = {o[k]}")
                emit(body + ind + f"pred = {k}")
            emit(body + "score += pred == label")
    else:
        emit(body + f"score += {' + '.join(f'r{k} * r{k}' for k in range(n_out))}")
    # backward: dz of the output layer, then dW += dz a_in, db += dz, da = dz @ W, dz = da f'(z)
    top = layers[-1].activation
    for k in range(n_out):
        if fused:
            emit(body + f"d{n - 1}_{k} = {o[k]} - {ys[k]}")
        else:
            der = stored.get((n - 1, k)) or _derivative(top.name, top.params, f"z{n - 1}_{k}", o[k])
            emit(body + f"d{n - 1}_{k} = {dy[k]}" + ("" if der is None else f" * {der}"))
    for l in range(n - 1, -1, -1):
        layer = layers[l]
        a_in = xs if l == 0 else outs[l - 1]
        for j in range(layer.n_out):
            for k in range(layer.n_in):
                emit(body + f"gW{l}_{j}_{k} += d{l}_{j} * {a_in[k]}")
        if layer.bias == "shared":
            emit(body + f"gb{l}_0 += {' + '.join(f'd{l}_{j}' for j in range(layer.n_out))}")
        elif layer.bias_trainable:
            for j in range(layer.n_out):
                emit(body + f"gb{l}_{j} += d{l}_{j}")
        if l > 0:
            below = layers[l - 1].activation
            for k in range(layer.n_in):
                da = " + ".join(f"d{l}_{j} * W{l}_{j}_{k}" for j in range(layer.n_out))
                der = stored.get((l - 1, k)) or _derivative(below.name, below.params, f"z{l - 1}_{k}", outs[l - 1][k])
                emit(body + f"d{l - 1}_{k} = " + (da if der is None else f"({da}) * {der}"))
    # the mean over the batch, ||dW|| per layer, the update
    emit(ind + "n_rows = len(rows)")
    emit(ind + "inv_m = 1.0 / n_rows")
    for p in nm.trainable:
        emit(ind + f"g{p} = g{p} * inv_m")
    gnorm = []
    for l, layer in enumerate(layers):
        gnorm.append("sqrt(" + " + ".join(f"gW{l}_{j}_{k} * gW{l}_{j}_{k}" for j in range(layer.n_out)
                                          for k in range(layer.n_in)) + ")")
    lr = _f(settings.lr)
    wd = settings.weight_decay
    if opt == "adam":
        emit(ind + f"lr_t = {lr} * sqrt(1 - {_f(settings.beta2)} ** t) / (1 - {_f(settings.beta1)} ** t)")
        emit(ind + f"eps_t = {_f(settings.epsilon)} * sqrt(1 - {_f(settings.beta2)} ** t)")
    for p in nm.trainable:  # the updated value goes to n{p}: the epoch's update ratio needs both
        g = f"g{p}"
        if wd and nm.weight[p]:  # weight decay: the update's gradient, not the recorded ||dW||
            emit(ind + f"k{p} = {g} + {p} * {_f(wd)}")
            g = f"k{p}"
        if opt in ("gd", "sgd"):
            emit(ind + f"n{p} = {p} - {g} * {lr}")
        elif opt == "momentum":
            emit(ind + f"m{p} = m{p} * {_f(settings.momentum)} + {g}")
            emit(ind + f"n{p} = {p} - m{p} * {lr}")
        else:
            emit(ind + f"m{p} = m{p} * {_f(settings.beta1)} + {_f(1 - settings.beta1)} * {g}")
            emit(ind + f"v{p} = v{p} * {_f(settings.beta2)} + {_f(1 - settings.beta2)} * ({g} * {g})")
            emit(ind + f"n{p} = {p} - lr_t * m{p} / (sqrt(v{p}) + eps_t)")
    tr = nm.trainable
    new_p = "(" + "".join(("n" + p if p in tr else p) + ", " for p in nm.params) + ")"
    new_m = f"({''.join('m' + p + ', ' for p in tr)})" if opt in ("momentum", "adam") else "M"
    new_v = f"({''.join('v' + p + ', ' for p in tr)})" if opt == "adam" else "V"
    gnorms = "(" + "".join(g + ", " for g in gnorm) + ")"
    if not full:
        emit(ind + f"return {new_p}, {new_m}, {new_v}, loss, score, {gnorms}")
        return "\n".join(L) + "\n"
    # the epoch's statistics: ||W||, ||W - W0|| / ||W0|| (W0: the weights before this step)
    norms, ratios = [], []
    for l, W in enumerate(net.W):
        ws = [f"W{l}_{j}_{k}" for j in range(W.shape[0]) for k in range(W.shape[1])]
        for w in ws:
            emit(ind + f"u{w} = n{w} - {w}")
        emit(ind + f"norm{l} = sqrt(" + " + ".join(f"n{w} * n{w}" for w in ws) + ")")
        norms.append(f"norm{l}")
        ratios.append(f"sqrt({' + '.join(f'u{w} * u{w}' for w in ws)}) / (N0_{l} if N0_{l} > 1e-12 else 1e-12)")
    bsq = [f"{'n' + p if p in tr else p} * {'n' + p if p in tr else p}" for p in nm.params if p.startswith("b")]
    check = " + ".join(["loss"] + norms + bsq)
    emit(ind + f"({''.join(f'N0_{l}, ' for l in range(n))}) = N0")
    emit(ind + f"return {new_p}, {new_m}, {new_v}, loss, score, {gnorms}, {sat_tuple}, "
               f"({''.join(v + ', ' for v in norms)}), ({''.join(v + ', ' for v in ratios)}), {check}")
    return "\n".join(L) + "\n"


def _stats_source(net: Network) -> str:
    """Source of stats(P, P0, N0) -> (||W|| per layer, ||W - W0|| / ||W0|| per layer, check): P0 and N0 at the
    epoch's start; check = sum of the norms and of b^2, finite exactly when every parameter is."""
    nm = _Names(net)
    old = [f"o{p}" for p in nm.params]
    L = ["def stats(P, P0, N0):",
         f"    ({', '.join(nm.params)},) = P",
         f"    ({', '.join(old)},) = P0"]
    norms, ratios = [], []
    for l, W in enumerate(net.W):
        ws = [f"W{l}_{j}_{k}" for j in range(W.shape[0]) for k in range(W.shape[1])]
        L.append(f"    norm{l} = sqrt(" + " + ".join(f"{w} * {w}" for w in ws) + ")")
        norms.append(f"norm{l}")
        for w in ws:
            L.append(f"    d{w} = {w} - o{w}")
        ratios.append(f"sqrt({' + '.join(f'd{w} * d{w}' for w in ws)}) / max(N0[{l}], 1e-12)")
    check = " + ".join(norms + [f"{b} * {b}" for b in nm.params if b.startswith("b")])
    L.append(f"    return ({''.join(s + ', ' for s in norms)}), ({''.join(s + ', ' for s in ratios)}), {check}")
    return "\n".join(L) + "\n"


def _put_source(arrays: list[np.ndarray]) -> tuple[str, str, dict]:
    """Source of put(P): the values of P, in order, into the arrays (through flat memoryviews: no numpy call)."""
    L, ns, q = ["def put(P):"], {}, 0
    for i, a in enumerate(arrays):
        ns[f"mv{i}"] = memoryview(a).cast("B").cast("d")
        for e in range(a.size):
            L.append(f"    mv{i}[{e}] = P[{q}]")
            q += 1
    return "\n".join(L) + "\n", "put", ns


def _compile(src: str, name: str, extra: dict | None = None):
    ns = {**(extra or {}), "tanh": math.tanh, "exp": math.exp, "expm1": math.expm1, "log": math.log, "sqrt": math.sqrt,
          "softplus": _softplus, "silu_grad": _silu_grad, "gelu_grad": _gelu_grad, "GELU_C": _GELU_C}
    exec(_code(src, name), ns)  # noqa: S102 - our own generated source
    return ns[name]


@functools.lru_cache(maxsize=64)
def _code(src: str, name: str):
    """Compiled once per source: a second run of the same network and settings skips the ~1 ms compile."""
    return compile(src, f"<bpcli.tiny.{name}>", "exec")


# --- the epoch loop ---------------------------------------------------------------------------------


def fit(net: Network, train: Dataset, val: Dataset | None, settings: TrainConfig, state,
        should_stop: Callable[[], bool], numpy_fit) -> Iterator:
    """train.fit for a network applies() accepts; numpy_fit(net, train, val, settings, state, should_stop)
    takes over from the start of any epoch that overflows or is not finite here.

    net's arrays and state.buffers are current whenever a record is yielded and when the run ends.
    """
    from bpcli.train import SATURATION_SAMPLES, EpochRecord, Optimizer, _arrays, evaluate

    rng = np.random.default_rng(settings.seed)
    if state.rng_state is not None:
        rng.bit_generator.state = state.rng_state
    opt = Optimizer(net, settings, state.buffers)  # the buffers: resumed, or zeros
    state.buffers = opt.buffers
    if any(b.dtype != np.float64 or not b.flags.c_contiguous or not b.flags.writeable for b in opt.buffers.values()):
        yield from numpy_fit(net, train, val, settings, state, should_stop)  # resumed buffers we cannot write to
        return
    kind = settings.optimizer
    buffers = [[opt.buffers[f"{mv}:{key}"] for key, _, _ in opt.params]
               for mv in {"momentum": "m", "adam": "mv"}.get(kind, "")]
    arrays = _arrays(net)
    classification = train.task == "classification"
    m = train.m
    full = settings.batch_size is None or settings.batch_size >= m
    bs = m if full else settings.batch_size
    if full:
        epoch_fn = _compile(_step_source(net, settings, classification, True, True), "epoch")
    else:
        step = _compile(_step_source(net, settings, classification, True, False), "step")
        stats = _compile(_stats_source(net), "stats")
        saturation = _compile(_step_source(net, settings, classification, False, False), "saturation")
    put = _compile(*_put_source(arrays + [a for group in buffers for a in group]))
    x = train.x.astype(np.float64, copy=False)
    y = train.y.astype(np.float64, copy=False)
    if classification:
        labels = ((y >= 0.5) if y.shape[1] == 1 else np.argmax(y, axis=1)).reshape(m).tolist()
        ss_tot = 0.0
    else:
        labels = [None] * m
        ss_tot = float(np.sum((y - y.mean(axis=0)) ** 2))
    rows = [tuple(xi) + tuple(yi) + (t,) for xi, yi, t in zip(x.tolist(), y.tolist(), labels)]
    sat_rows = rows[:SATURATION_SAMPLES]
    P = tuple(v for a in arrays for v in a.ravel().tolist())
    M, V = (tuple(v for a in group for v in a.ravel().tolist()) for group in (buffers + [[], []])[:2])
    start_norms = tuple(math.sqrt(sum(v * v for v in W.ravel().tolist())) for W in net.W)
    rng_state = rng.bit_generator.state
    epochs, patience = settings.epochs, settings.patience
    n_layers = len(net.layers)
    perf = time.perf_counter
    isfinite = math.isfinite
    while state.epoch < epochs:
        t0 = perf()
        P0, M0, V0 = P, M, V
        start_rng, start_step = rng_state, state.step
        interrupted = False
        try:
            if full:
                (P, M, V, total_loss, score, grad_norm, sat, norms, ratios,
                 check) = epoch_fn(P, M, V, rows, start_step + 1, start_norms)
                state.step += 1
                interrupted = should_stop()
            else:
                total_loss = score = 0.0
                gnorm = [0.0] * n_layers
                n_batches = 0
                order = rng.permutation(m).tolist()
                for start in range(0, m, bs):
                    P, M, V, loss_sum, s, gn = step(P, M, V, [rows[i] for i in order[start:start + bs]],
                                                    state.step + 1)
                    state.step += 1
                    total_loss += loss_sum
                    score += s
                    for l, g in enumerate(gn):
                        gnorm[l] += g
                    n_batches += 1
                    if should_stop():
                        interrupted = True
                        break
                if not interrupted:
                    grad_norm = tuple(g / n_batches for g in gnorm)
                    norms, ratios, check = stats(P, P0, start_norms)
                    check += total_loss
            clean = interrupted or isfinite(check)  # an interrupted epoch is rolled back whatever it held
        except (ArithmeticError, ValueError):
            clean = False  # an overflow: numpy would carry inf or NaN on and decides below what it means
        if interrupted:
            # roll back to the end of the last whole epoch: weights, optimiser and RNG agree
            put(P0 + M0 + V0)
            state.step = start_step
            state.rng_state = start_rng
            state.status = "interrupted"
            state.message = f"interrupted during epoch {state.epoch + 1}; saved the state after epoch {state.epoch}"
            return
        if not clean:
            # the numpy path runs this epoch again from its start and the rest of the run
            put(P0 + M0 + V0)
            state.step = start_step
            state.rng_state = start_rng
            yield from numpy_fit(net, train, val, settings, state, should_stop)
            return
        put(P + M + V)  # net and state.buffers are current whenever a record is out
        if classification:
            metric = score / m
        else:
            metric = 1.0 - score / ss_tot if ss_tot > 0 else None
        state.epoch += 1
        val_loss = val_metric = None
        if val is not None:
            val_loss, val_metric = evaluate(net, val)
        if not full:
            sat = saturation(P, sat_rows)  # a unit is dead when it is off on the data, not on one batch
            rng_state = rng.bit_generator.state
        rec = EpochRecord(state.epoch, total_loss / m, val_loss, metric, val_metric, grad_norm, norms, ratios, sat,
                          perf() - t0)
        start_norms = norms
        state.rng_state = rng_state
        if val_loss is not None and patience is not None:
            if val_loss < state.best_val - settings.min_delta:
                state.best_val, state.bad_epochs = val_loss, 0
            else:
                state.bad_epochs += 1
        yield rec
        if patience is not None and state.bad_epochs >= patience:
            state.status = "early_stopped"
            state.message = (f"validation loss did not improve for {patience} epochs; stopped at epoch {state.epoch}")
            return
    state.status = "completed"
