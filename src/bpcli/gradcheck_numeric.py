"""gradcheck's numeric side: central differences of the engine's cost, batched, and the naive loop.

Moving W[l][j, k] by +-eps moves only column j of layer l's weighted sums, by +-eps * a_in[:, k], so each
perturbed copy is recomputed from there upward, many copies at once.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bpcli.gradcheck_report import DEFAULT_EPS
from bpcli.model import Network

Array = np.ndarray

_BUDGET = 1 << 14  # elements per batched array (128 KB): a chunk and its temporaries stay in cache


# --- the slow, obvious method ---------------------------------------------------------------


def naive_numeric_gradient(net: Network, x: Array, y: Array, eps: float = DEFAULT_EPS, refs=None) -> Array:
    """Central differences two full forward passes per parameter, in param_refs() order.

    The reference `check` is tested against, and the baseline the benchmark times; `net` is restored.
    """
    from bpcli.engine import cost, forward

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



# --- batched central differences ------------------------------------------------------------


@dataclass
class _Base:
    """The unperturbed pass, transposed: zT[l], aT[l]: (n_l, m); xT: (n_in, m); yT: (n_out, m).

    Perturbed copies are laid out (n, copies, m), so that each node's values sit together in memory and the
    registry's row-wise functions (softmax, the losses) get F-ordered (copies * m, n) views whose reductions
    over a row are fast.
    """

    net: Network
    xT: Array
    yT: Array
    zT: list[Array]
    aT: list[Array]
    ytile: Array | None = None  # (n_out, copies * m)

    def a_inT(self, l: int) -> Array:
        return self.xT if l == 0 else self.aT[l - 1]

    def y_rows(self, copies: int) -> Array:
        """y repeated for `copies` perturbed copies, as a (copies * m, n_out) F-ordered view."""
        n, m = self.yT.shape
        if self.ytile is None or self.ytile.shape[1] < copies * m:
            self.ytile = np.tile(self.yT, (1, copies))
        return self.ytile[:, : copies * m].T


def _crossing(zp: Array, zm: Array, z0: Array, kinks: tuple[float, ...], axis: int = 1) -> Array:
    """(P,) True where a kink lies between the values of some element at -eps, 0 and +eps.

    zp, zm: the +eps and -eps copies, with the copy index on `axis` (P long); z0 broadcasts against them.
    """
    lo = np.minimum(np.minimum(zp, zm), z0)
    hi = np.maximum(np.maximum(zp, zm), z0)
    moved = hi > lo
    hit = np.zeros(zp.shape, dtype=bool)
    for k in kinks:
        hit |= moved & (lo <= k) & (k <= hi)
    return np.any(np.moveaxis(hit, axis, 0).reshape(zp.shape[axis], -1), axis=1)


def _losses_from(base: _Base, l: int, Z: Array) -> tuple[Array, Array]:
    """Per-sample losses of 2P perturbed copies whose layer-l weighted sums are Z: (n_l, 2P, m).

    Returns (L: (2P, m), kink: (P,)): copy p is the +eps side of pair p, copy P + p its -eps side.
    """
    net = base.net
    n, B, m = Z.shape
    P = B // 2
    kink = np.zeros(P, dtype=bool)
    last = len(net.layers) - 1
    for l2 in range(l, len(net.layers)):
        act = net.layers[l2].activation
        if act.kinks:
            kink |= _crossing(Z[:, :P], Z[:, P:], base.zT[l2][:, None, :], act.kinks)
        if l2 == last and net.fused_output:
            return _loss_rows(base, None, kink, Z)  # a fused pair's loss needs only z (no softmax/sigmoid pass)
        aT = act.fn(Z.reshape(-1, B * m).T).T  # the registry sees (copies * m, n): one row per sample
        if l2 < last:
            Z = net.W[l2 + 1] @ aT
            if net.b[l2 + 1] is not None:
                Z += net.b[l2 + 1][:, None]
            Z = Z.reshape(-1, B, m)
    return _loss_rows(base, aT.reshape(-1, B, m), kink, Z)


def _loss_rows(base: _Base, Y: Array | None, kink: Array, Z: Array | None = None) -> tuple[Array, Array]:
    """Per-sample losses (B, m) of B perturbed outputs Y: (n_out, B, m); kinks of the loss flagged.

    Z: the output layer's weighted sums behind Y, (n_out, B, m); a fused pair's loss is computed from them
    (engine.sample_losses), as training computes it, and Y may then be None.
    """
    from bpcli.engine import sample_losses

    n, B, m = (Y if Y is not None else Z).shape
    loss = base.net.loss
    if loss.kinks:
        P = B // 2
        yT = base.yT[:, None, :]
        kink = kink | _crossing(Y[:, :P] - yT, Y[:, P:] - yT, base.aT[-1][:, None, :] - yT, loss.kinks)
    Zr = None if Z is None else Z.reshape(n, B * m).T
    L = sample_losses(base.net, Zr, None if Y is None else Y.reshape(n, B * m).T, base.y_rows(B))
    return L.reshape(B, m), kink


def _chunks(n: int, per: int):
    per = max(1, per)
    for s in range(0, n, per):
        yield slice(s, min(n, s + per))


def _pair(plus: Array, minus: Array) -> Array:
    """The +eps copies of a chunk followed by its -eps copies, along the first axis."""
    return np.concatenate([plus, minus])


def _numeric_entries(base: _Base, l: int, kind: str, flat: Array, eps: float, tick=None) -> tuple[Array, Array]:
    """Central differences of C for the entries `flat` (flat indices) of W[l] or b[l]: (numeric, kink).

    Entry p moves one weighted sum, z_j of layer l (j = js[p]), by +-eps * a_in[:, k] (a weight w_jk) or
    +-eps (a bias b_j).  With an elementwise activation only a_j changes, so the layer above gets the
    rank-one update z' = z + W[l+1][:, j] * (a'_j - a_j); from there on every copy runs in full.
    tick(k), when given, is called after each chunk of k entries.
    """
    net = base.net
    layer = net.layers[l]
    act = layer.activation
    last = l == len(net.layers) - 1
    m = base.xT.shape[1]
    P = flat.size
    out = np.empty(P)
    kink = np.zeros(P, dtype=bool)
    z0 = base.zT[l]
    if kind == "b" and layer.shared_bias:
        # A shared bias moves every weighted sum of the layer.
        L, k = _losses_from(base, l, np.stack([z0 + eps, z0 - eps], axis=1))
        out[:] = np.mean(L[0] - L[1]) / (2 * eps)
        kink[:] = k
        if tick is not None:
            tick(P)
        return out, kink
    if kind == "W":
        js, ks = np.unravel_index(flat, net.W[l].shape)
        step = eps * base.a_inT(l)[ks]  # (P, m): how z_j moves, sample by sample
    else:
        js, step = flat, np.full((P, m), eps)
    col = z0[js]
    zp, zm = col + step, col - step
    # The widest array a chunk makes decides how many entries go in one: 2 * per * m * width <= _BUDGET.
    wide = [lay.n_out for lay in net.layers[l + 1:]]
    if not act.elementwise or last:
        wide.append(layer.n_out)
    per = max(1, _BUDGET // (2 * m * max(wide)))
    if act.elementwise:
        if act.kinks:
            kink |= _crossing(zp, zm, col, act.kinks, axis=0)
        ap, am = act.fn(zp), act.fn(zm)  # (P, m): the one changed node, every entry at once
        if not last:
            a_col = base.aT[l][js]
            dp, dm = ap - a_col, am - a_col
            Wj = net.W[l + 1][:, js]  # (n_next, P): where node j's output goes
            z_next = base.zT[l + 1][:, None, :]
    for s in _chunks(P, per):
        c = s.stop - s.start
        j2 = np.concatenate([js[s], js[s]])
        if not act.elementwise:
            Z = np.repeat(z0[:, None, :], 2 * c, axis=1)
            Z[j2, np.arange(2 * c), :] = _pair(zp[s], zm[s])
            L, k = _losses_from(base, l, Z)
        elif last:
            Y = np.repeat(base.aT[l][:, None, :], 2 * c, axis=1)
            Y[j2, np.arange(2 * c), :] = _pair(ap[s], am[s])
            Z = None
            if net.fused_output:
                Z = np.repeat(z0[:, None, :], 2 * c, axis=1)
                Z[j2, np.arange(2 * c), :] = _pair(zp[s], zm[s])
            L, k = _loss_rows(base, Y, np.zeros(c, dtype=bool), Z)
        else:
            Z = np.concatenate([Wj[:, s], Wj[:, s]], axis=1)[:, :, None] * _pair(dp[s], dm[s])[None]
            Z += z_next
            L, k = _losses_from(base, l + 1, Z)
        out[s] = np.mean(L[:c] - L[c:], axis=1) / (2 * eps)
        kink[s] |= k
        if tick is not None:
            tick(c)
    return out, kink


def _numeric_directions(base: _Base, l: int, kind: str, U: Array, eps: float) -> tuple[Array, Array]:
    """Two-sided differences of C along D unit directions U (D, *shape of W[l] or b[l]): (numeric, kink)."""
    D = U.shape[0]
    z0 = base.zT[l][:, None, :]
    if kind == "W":
        dZ = np.matmul(U, base.a_inT(l)[None]).transpose(1, 0, 2)  # (n_out, D, m): U @ a_in
    else:
        dZ = U.T[:, :, None]
    Z = np.concatenate([z0 + eps * dZ, z0 - eps * dZ], axis=1)
    L, k = _losses_from(base, l, Z)
    return np.mean(L[:D] - L[D:], axis=1) / (2 * eps), k


def cost_scale(net: Network, tape, grads, y: Array) -> float:
    """The size of the numbers whose rounding reaches the cost: |L_i| plus |dL_i/dz * z| over every layer,
    averaged over the samples (a first-order forward error bound, in units of machine epsilon)."""
    from bpcli.engine import sample_losses

    L = sample_losses(net, tape[-1].z, tape[-1].a_out, y)
    s = np.abs(L) + sum(np.sum(np.abs(dz * t.z), axis=1) for dz, t in zip(grads.dz, tape))
    return float(np.mean(s)) or 1.0
