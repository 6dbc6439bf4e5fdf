"""gradcheck's numeric side: differences of the engine's cost, each with an estimate of its own error.

Every perturbed cost is computed by the engine (engine.node_moved_losses and engine.losses_from run the copies of
the batch through the same forward pass training uses).  For each entry the parameter moves by +h, -h, +h/2
and -h/2; from those four costs come a Richardson-extrapolated central difference and its error bound
(rounding: the dtype's epsilon times the size of the loss values subtracted, over the step; truncation: how
far the differences at h and h/2 are apart), or, where a move crosses a kink, one-sided differences.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from bpcli.gradcheck.report import DEFAULT_EPS
from bpcli.nn.model import Network

Array = np.ndarray

_BUDGET = 1 << 16  # elements per batched array: a chunk and its temporaries stay in cache
MOVES = np.array([1.0, -1.0, 0.5, -0.5])  # the copies per entry, in units of its step h
QUICK = np.array([1.0, 0.5])  # the first pass over many entries: one side, at h and h/2


# --- the slow, obvious method ---------------------------------------------------------------


def naive_numeric_gradient(net: Network, x: Array, y: Array, eps: float = DEFAULT_EPS, refs=None) -> Array:
    """Central differences two full forward passes per parameter, in param_refs() order.

    The reference `check` is tested against, and the baseline the benchmark times; `net` is restored.
    """
    from bpcli.nn.engine import cost, forward

    out = []
    for ref in refs if refs is not None else net.param_refs():
        v = net.get(ref)
        net.set(ref, v + eps)
        cp = cost(net, forward(net, x)[1], y)
        net.set(ref, v - eps)
        cm = cost(net, forward(net, x)[1], y)
        net.set(ref, v)
        out.append((cp - cm) / (2 * eps))
    return np.array(out)


# --- the unperturbed pass and the size of its numbers ------------------------------------------


@dataclass
class _Base:
    """The unperturbed pass: the engine's tape, its per-sample losses L0 (m,), and per layer l the size S[l]
    of the numbers whose rounding reaches a loss value recomputed from layer l upward (mean over samples);
    S_node[l] the same for a copy in which one node of layer l moved (the rank-one update: layer l + 1's sums
    are not recomputed from their terms)."""

    net: Network
    x: Array
    y: Array
    tape: tuple
    L0: Array
    S: list[float]
    S_node: list[float]
    eps: float = float(np.finfo(np.float64).eps)
    cache: dict = field(default_factory=dict)  # y repeated, baselines, the longdouble copy: made once

    def L0_from(self, l: int, rank_one: bool) -> Array:
        """The unperturbed losses (m,) recomputed the way a moved copy is: from layer l + 1's sums (a rank-one
        move of layer l) or from layer l's (cached), so a one-sided difference subtracts like from like."""
        from bpcli.nn.engine import losses_from

        key = ("L0", l, rank_one)
        if key not in self.cache:
            k = l + 1 if rank_one else l
            zT = np.ascontiguousarray(self.tape[k].z.T)
            self.cache[key] = losses_from(self.net, k, zT.T, np.ascontiguousarray(self.y.T).T)
        return self.cache[key]

    def y_rows(self, B: int) -> Array:
        """y repeated for B copies of the batch, (B * m, n_out) F-ordered (cached: every full chunk has one B)."""
        if self.cache.get("y_rows_B") != B:
            self.cache.update(y_rows=np.tile(self.y.T, (1, B)).T, y_rows_B=B)
        return self.cache["y_rows"]


def make_base(net: Network, x: Array, y: Array, tape, grads) -> _Base:
    """The base of every difference: the tape and the rounding size of the losses, per layer.

    A loss value recomputed from layer l upward carries rounding of about eps times |L_i| plus, for every
    layer l2 >= l, |dL_i/dz| times the size of the terms of z (|W| |a_in| + |b|) and of z itself: a first-order
    forward error bound.
    """
    from bpcli.nn.engine import sample_losses

    L0 = sample_losses(net, tape[-1].z, tape[-1].a_out, y)
    per, own = [], []
    for l, t in enumerate(tape):
        terms = np.abs(t.a_in) @ np.abs(net.W[l]).T
        if net.b[l] is not None:
            terms += np.abs(net.b[l])
        per.append(np.sum(np.abs(grads.dz[l]) * (terms + np.abs(t.z)), axis=1))
        own.append(np.sum(np.abs(grads.dz[l] * t.z), axis=1))
    n = len(tape)
    S, S_node, acc = [0.0] * n, [0.0] * n, np.abs(L0)
    for l in range(n - 1, -1, -1):
        S[l] = float(np.mean(acc + per[l]))
        rank_one = net.layers[l].activation.elementwise and l < n - 1
        S_node[l] = float(np.mean(acc - per[l + 1] + own[l + 1] + own[l])) if rank_one else S[l]
        acc = acc + per[l]
    return _Base(net, x, y, tape, L0, S, S_node)


# --- kinks -----------------------------------------------------------------------------------


AT, ACROSS = 1, 2  # kink codes of a move: it left a kink it sat on (AT), it passed one (ACROSS); 0 neither


def crossed(act, z0: Array, z1: Array) -> Array:
    """Kink codes (int8, elementwise) of moving z0 -> z1: ACROSS where a kink lies strictly between them (for a
    formula: a branch condition differs between z1 and the value just past z0 on z1's side), AT where z0 sits
    on a kink and moves (the function is smooth along the move, but may not be differentiable at z0)."""
    shape = np.broadcast_shapes(np.shape(z0), np.shape(z1))
    z0, z1 = np.broadcast_to(z0, shape), np.broadcast_to(z1, shape)
    code = np.zeros(shape, dtype=np.int8)
    moved = z1 != z0
    if act.kinks:
        lo, hi = np.minimum(z0, z1), np.maximum(z0, z1)
        for k in act.kinks:
            code |= np.where((lo < k) & (k < hi), ACROSS, 0).astype(np.int8)
            code |= np.where(moved & (z0 == k), AT, 0).astype(np.int8)
    if act.branches is not None:
        past = np.nextafter(z0, z1)
        b0, bp, b1 = act.branches(z0), act.branches(past), act.branches(z1)
        code |= np.where(np.any(bp != b1, axis=0), ACROSS, 0).astype(np.int8)
        code |= np.where(moved & np.any(b0 != bp, axis=0), AT, 0).astype(np.int8)
    return code


def has_kinks(net: Network) -> bool:
    return bool(net.loss.kinks) or any(lay.activation.kinks or lay.activation.branches is not None
                                       for lay in net.layers)


class _LossKinks:
    """The loss's kinks in the shape _crossed reads (they sit at values of y' - y)."""

    def __init__(self, kinks):
        self.kinks, self.branches = kinks, None


def _tape_crossed(base, tape) -> bool:
    """Whether a whole perturbed tape lies across a kink from the base tape (activations, then the loss)."""
    net = base.net
    for lay, t0, t1 in zip(net.layers, base.tape, tape):
        if lay.activation.kinks or lay.activation.branches is not None:
            if np.any(crossed(lay.activation, t0.z, t1.z.astype(np.float64))):
                return True
    if net.loss.kinks:
        r0 = base.tape[-1].a_out - base.y
        r1 = tape[-1].a_out.astype(np.float64) - base.y
        return bool(np.any(crossed(_LossKinks(net.loss.kinks), r0, r1)))
    return False


class _Watch:
    """Collects, per copy of a batch of B copies, the kink codes (AT | ACROSS) of its move anywhere above."""

    def __init__(self, base: _Base, B: int, m: int):
        self.base, self.B, self.m = base, B, m
        self.cross = np.zeros(B, dtype=np.int8)

    def __call__(self, l: int, z) -> None:
        net, tape = self.base.net, self.base.tape
        act = net.layers[l].activation
        if isinstance(z, tuple):  # (js, zj): one node per copy
            js, zj = z
            if act.kinks or act.branches is not None:
                self.cross |= np.bitwise_or.reduce(crossed(act, tape[l].z[:, js].T, zj), axis=1)
            return
        Z = z.reshape(self.B, self.m, -1)
        if act.kinks or act.branches is not None:
            self.cross |= np.bitwise_or.reduce(crossed(act, tape[l].z[None], Z).reshape(self.B, -1), axis=1)
        if l == len(net.layers) - 1 and net.loss.kinks:
            r0 = tape[l].a_out - self.base.y
            r1 = act.fn(z).reshape(self.B, self.m, -1) - self.base.y[None]
            c = crossed(_LossKinks(net.loss.kinks), r0[None], r1)
            self.cross |= np.bitwise_or.reduce(c.reshape(self.B, -1), axis=1)


# --- differences -------------------------------------------------------------------------------


@dataclass
class Moves:
    """For P entries: d (4, P) the mean over samples of L(theta + s h) - L0 for s in MOVES, and cross (4, P)
    whether that move crossed a kink; h (P,) the steps; S the rounding size of the moved copies' loss values,
    S1 that of L0 besides (a one-sided difference subtracts L0, recomputed the way the copies are)."""

    d: Array
    cross: Array
    h: Array
    S: float
    eps: float
    S1: float = 0.0
    moves: Array = field(default_factory=lambda: MOVES)  # MOVES, or QUICK (d and cross then have two rows)


def node_moves(base: _Base, l: int, js: Array, v: Array, h: Array, tick=None, moves: Array = MOVES) -> Moves:
    """The moves of P entries, each one moving node js[p] of layer l's weighted sums by s * h[p] * v[p], s in moves
    (v: (P, m), how z_j moves per unit of the parameter: a_in[:, k] for w_jk, 1 for b_j, a_in . u + u_b for a
    direction over the node's incoming weights and bias)."""
    from bpcli.nn.engine import node_moved_losses

    net, tape = base.net, base.tape
    P, m = v.shape
    k = moves.size
    d, cross = np.empty((k, P)), np.zeros((k, P), dtype=np.int8)
    # the widest array a chunk makes decides how many entries go in one: k * per * m * width <= _BUDGET (a
    # rank-one update never builds layer l's full sums)
    widths = [lay.n_out for lay in net.layers[l + 1:]]
    if not net.layers[l].activation.elementwise or l == len(net.layers) - 1:
        widths.append(net.layers[l].n_out)
    per = max(1, _BUDGET // (k * m * max(widths)))
    zj_all = tape[l].z[:, js].T[None] + (moves[:, None] * h[None])[:, :, None] * v[None]  # (k, P, m)
    jsk = np.tile(js, k).reshape(k, P)
    watch_on = has_kinks(net)
    L0 = base.L0_from(l, net.layers[l].activation.elementwise and l < len(net.layers) - 1)
    for s0 in range(0, P, per):
        s = slice(s0, min(P, s0 + per))
        c = s.stop - s.start
        watch = _Watch(base, k * c, m) if watch_on else None
        L = node_moved_losses(net, tape, base.y_rows(k * c), l, jsk[:, s].ravel(), zj_all[:, s].reshape(k * c, m),
                              watch)
        d[:, s] = np.mean(L - L0, axis=1).reshape(k, c)
        if watch is not None:
            cross[:, s] = watch.cross.reshape(k, c)
        if tick is not None:
            tick(c)
    return Moves(d, cross, np.asarray(h, dtype=np.float64), base.S_node[l], base.eps, base.S_node[l], moves)


def layer_moves(base: _Base, l: int, dZ: Array, h: float) -> Moves:
    """The four moves of D whole-layer perturbations: layer l's weighted sums move by s * h * dZ[p],
    dZ: (D, m, n_l) (a shared bias, a random direction over a whole array)."""
    from bpcli.nn.engine import losses_from

    net, tape = base.net, base.tape
    D, m, n = dZ.shape
    Z = tape[l].z[None, None] + (MOVES[:, None, None, None] * h) * dZ[None]  # (4, D, m, n)
    yr = np.broadcast_to(base.y, (4 * D,) + base.y.shape).reshape(4 * D * m, -1)
    watch = _Watch(base, 4 * D, m) if has_kinks(net) else None
    L = losses_from(net, l, Z.reshape(4 * D * m, n), yr, watch).reshape(4 * D, m)
    d = np.mean(L - base.L0_from(l, False), axis=1).reshape(4, D)
    cross = np.zeros((4, D), dtype=np.int8) if watch is None else watch.cross.reshape(4, D)
    return Moves(d, cross, np.full(D, float(h)), base.S[l], base.eps, base.S[l])


# --- estimates ---------------------------------------------------------------------------------


@dataclass
class Estimate:
    """Numeric derivatives with their error bounds: value (P,), bound (P,), how ('central', 'right', 'left',
    or 'kink' when every difference crossed a kink) and, for a kink, the one-sided values (right, left) and
    their bounds, NaN where not available."""

    value: Array
    bound: Array
    kink: Array
    right: Array
    right_bound: Array
    left: Array
    left_bound: Array
    h: Array
    right_at: Array | None = None  # the side's move left a kink it sat on: a mismatch there is not a failure
    left_at: Array | None = None


def estimate(mv: Moves) -> Estimate:
    """Richardson-extrapolated differences from the four moves, each with its error bound (from the two QUICK
    moves, the one-sided R+ alone: where it crossed a kink, nothing, for the four moves to decide).

    Central, when no move crossed a kink: D(s) = (C(+s h) - C(-s h)) / (2 s h), R = (4 D(h/2) - D(h)) / 3,
    bound = 6 eps S / h (rounding: each loss value off by up to eps S) + |D(h) - D(h/2)| / 3 (truncation).
    One-sided on each side that did not cross: D+(s) = (C(s h) - C0) / (s h), R+ = 2 D+(h/2) - D+(h),
    bound = 10 eps (S + S1) / 2h + |D+(h) - D+(h/2)| (C0 is recomputed the copies' way, with its own rounding).
    """
    d, h, r = mv.d, mv.h, mv.eps * mv.S
    r1 = mv.eps * (mv.S + mv.S1) / 2
    code = np.asarray(mv.cross)
    if mv.moves.size == 2:
        with np.errstate(all="ignore"):
            R1, R2 = d[0] / h, 2 * d[1] / h
            right, right_bound = 2 * R2 - R1, 10 * r1 / h + np.abs(R1 - R2)
        across = np.any(code & ACROSS, axis=0)
        at = np.any(code & AT, axis=0)
        nan = np.full_like(right, np.nan)
        return Estimate(np.where(across | at, nan, right), np.where(across | at, np.inf, right_bound), across | at,
                        np.where(across, nan, right), np.where(across, np.inf, right_bound), nan, nan + np.inf, h,
                        at, np.zeros_like(at))
    with np.errstate(all="ignore"):
        D1 = (d[0] - d[1]) / (2 * h)
        D2 = (d[2] - d[3]) / h
        central = (4 * D2 - D1) / 3
        central_bound = 6 * r / h + np.abs(D1 - D2) / 3
        R1, R2 = d[0] / h, 2 * d[2] / h
        right, right_bound = 2 * R2 - R1, 10 * r1 / h + np.abs(R1 - R2)
        L1, L2 = -d[1] / h, -2 * d[3] / h
        left, left_bound = 2 * L2 - L1, 10 * r1 / h + np.abs(L1 - L2)
    crossed = np.any(code != 0, axis=0)  # the central difference needs both sides clean
    ok_right = ((code[0] | code[2]) & ACROSS) == 0
    ok_left = ((code[1] | code[3]) & ACROSS) == 0
    nan = np.full_like(central, np.nan)
    return Estimate(np.where(crossed, nan, central), np.where(crossed, np.inf, central_bound), crossed,
                    np.where(crossed & ok_right, right, nan), np.where(crossed & ok_right, right_bound, np.inf),
                    np.where(crossed & ok_left, left, nan), np.where(crossed & ok_left, left_bound, np.inf), h,
                    ((code[0] | code[2]) & AT) != 0, ((code[1] | code[3]) & AT) != 0)


def entry_moves(base: _Base, l: int, kind: str, flat: Array, h: Array, tick=None, moves: Array = MOVES) -> Moves:
    """The moves of the entries `flat` (flat indices) of W[l] or b[l], entry p by h[p]."""
    net, tape = base.net, base.tape
    layer = net.layers[l]
    P = flat.size
    m = base.x.shape[0]
    if kind == "b" and layer.shared_bias:  # one bias moves every weighted sum of the layer
        mv = layer_moves(base, l, np.ones((1, m, layer.n_out)), float(h[0]))  # always the four moves
        if tick is not None:
            tick(P)
        return Moves(np.repeat(mv.d, P, axis=1), np.repeat(mv.cross, P, axis=1), h, mv.S, mv.eps, mv.S1)
    if kind == "W":
        js, ks = np.unravel_index(flat, net.W[l].shape)
        v = tape[l].a_in.T[ks]  # (P, m): how z_j moves per unit of w_jk
    else:
        js, v = flat, np.ones((P, m))
    return node_moves(base, l, np.asarray(js), v, h, tick, moves)


def extended_moves(base: _Base, l: int, kind: str, flat: Array, h: Array) -> Moves:
    """The four moves of the entries in numpy's longdouble: the engine's forward pass on a copy of the network
    in extended precision (its epsilon replaces float64's in the bound).  Full passes, one per move: for
    small networks only."""
    from bpcli.nn.engine import forward, sample_losses

    ld = np.longdouble
    if "ld_net" not in base.cache:
        net_ld = base.net.astype(ld)
        x, y = base.x.astype(ld), base.y.astype(ld)
        t = forward(net_ld, x)[1]
        base.cache.update(ld_net=net_ld, ld_x=x, ld_y=y, ld_L0=sample_losses(net_ld, t[-1].z, t[-1].a_out, y))
    e = base.cache
    net_ld, x, y, L0 = e["ld_net"], e["ld_x"], e["ld_y"], e["ld_L0"]
    arr = net_ld.W[l] if kind == "W" else net_ld.b[l]
    d, cross = np.empty((4, flat.size)), np.zeros((4, flat.size), dtype=np.int8)
    for p, f in enumerate(flat):
        idx = np.unravel_index(int(f), arr.shape)
        w = arr[idx]
        for i, s in enumerate(MOVES):
            arr[idx] = w + ld(s) * ld(h[p])
            t = forward(net_ld, x)[1]
            d[i, p] = float(np.mean(sample_losses(net_ld, t[-1].z, t[-1].a_out, y) - L0))
            if has_kinks(base.net):
                cross[i, p] = ACROSS if _tape_crossed(base, t) else 0
        arr[idx] = w
    return Moves(d, cross, h, base.S[l], float(np.finfo(ld).eps), base.S[l])
