"""gradcheck --units: every registered activation and loss against central differences, on its own.

A broken derivative is pinned to its function here, not only to the weights it affects.
"""

from __future__ import annotations

import numpy as np

from bpcli.gradcheck.report import DEFAULT_EPS, DEFAULT_TOL, UnitRow
from bpcli.gradcheck.verdict import MACHINE_EPS, VERDICTS, judge, richardson, undecided

Array = np.ndarray


# --- the registries on their own -----------------------------------------------------------------


def _spread(rng: np.random.Generator, rows: int, cols: int, lo: float, hi: float, avoid: tuple[float, ...],
            margin: float) -> Array:
    """rows x cols values spread over [lo, hi] (a grid plus noise), none within `margin` of `avoid`."""
    z = np.linspace(lo, hi, rows * cols) + rng.uniform(-0.05, 0.05, rows * cols)
    for k in avoid:
        close = np.abs(z - k) < margin
        z[close] = k + np.where(z[close] >= k, 1, -1) * 2 * margin
    return rng.permutation(z).reshape(rows, cols)


def _unit(kind: str, name: str, ana: Array, num: Array, at: Array, scale: Array, eps: float, tol: float,
          bound: Array) -> UnitRow:
    """The worst point of one unit: a failing point first, else the largest relative error among the points
    that could be checked; inconclusive only when none could (a point in a tail where f' is below the rounding
    noise carries no evidence, the others still do).  bound: each point's error bound (the numeric value's and
    the analytic one's rounding, eps * scale)."""
    bound = bound + 4 * MACHINE_EPS * scale + 6 * MACHINE_EPS * scale / eps  # + the rounding of f's own terms
    rel, code, passed = (np.ravel(v) for v in np.broadcast_arrays(*judge(ana, num, bound, tol)))
    checked = ~undecided(code)
    key = np.where(np.isfinite(rel), rel, np.inf)
    i = int(np.lexsort((-key, passed, ~checked if checked.any() else checked))[0])
    return UnitRow(kind, name, int(rel.size), float(rel[i]), float(np.abs(ana - num).ravel()[i]),
                   str(np.ravel(at)[i]), VERDICTS[int(code[i])], bool(passed[i]))


def _columnwise(fn, v: Array, eps: float) -> tuple[Array, Array]:
    """Richardson-extrapolated central differences of fn (row-wise: (rows, n) -> (rows,) or (rows, k)) for each
    column j of v moved by +-eps and +-eps/2, stacked: (n, rows) or (n, rows, k), with their bounds."""
    vals, bounds = [], []
    for j in range(v.shape[1]):
        d = []
        for h in (eps, eps / 2):
            vp, vm = v.copy(), v.copy()
            vp[:, j] += h
            vm[:, j] -= h
            fp, fm = fn(vp), fn(vm)
            d.append((fp - fm) / (2 * h))
        val, bd = richardson(d[0], d[1], eps, np.abs(fp) + np.abs(fm) + np.abs(fn(v)))
        vals.append(val)
        bounds.append(bd)
    return np.stack(vals), np.stack(bounds)


def check_units(eps: float = DEFAULT_EPS, tol: float = DEFAULT_TOL, seed: int = 0) -> list[UnitRow]:
    """Every registered activation (default parameters) and loss (every squared_error convention) on its own.

    Activations: f'(z), the layer's vjp and its Jacobian against central differences at 200 values of z in
    [-6, 6] (none within 100 eps of a kink); losses: dL/dy' on outputs that suit them; each fused pair
    (softmax + cross_entropy, sigmoid + binary_cross_entropy): the engine's shortcut dL/dz = y' - y.
    """
    from bpcli.nn import activations as acts
    from bpcli.nn import losses as ls

    rng = np.random.default_rng(seed)
    rows: list[UnitRow] = []
    for key in list(acts.ACTIVATIONS):
        act = acts.get_activation(key)
        z = _spread(rng, 40, 5, -6.0, 6.0, act.kinks, 100 * eps)
        a = act.fn(z)
        da = rng.standard_normal(z.shape)
        num_vjp, b_vjp = (v.T for v in _columnwise(lambda v: np.sum(da * act.fn(v), axis=1), z, eps))  # d(da . a)/dz
        num_jac, b_jac = (np.transpose(v, (1, 2, 0)) for v in _columnwise(act.fn, z, eps))  # (rows, k, l): da_k/dz_l
        at = np.char.add("z=", np.char.mod("%.4g", z))
        scale = 1.0 + np.abs(z) + np.abs(a)
        parts = [(act.vjp(z, a, da), num_vjp, at, scale * (1 + np.abs(da)), b_vjp),
                 (act.jacobian(z, a), num_jac, at[:, None, :], scale[:, None, :], b_jac)]
        if act.elementwise:
            parts.append((act.grad(z, a), np.diagonal(num_jac, axis1=1, axis2=2), at, scale,
                          np.diagonal(b_jac, axis1=1, axis2=2)))
        ana, num, where, sc, bd = (np.concatenate([np.broadcast_to(p[i], p[1].shape).ravel() for p in parts])
                                   for i in range(5))
        rows.append(_unit("activation", key, ana, num, where, sc, eps, tol, bd))

    for key in list(ls.LOSSES):
        variants = [{"convention": c} for c in ls.SQUARED_CONVENTIONS] if key == "squared_error" else [{}]
        for params in variants:
            loss = ls.get_loss(key, params)
            y_hat, y = _loss_inputs(rng, loss, eps)
            num, bd = (v.T for v in _columnwise(lambda v: loss.value(v, y), y_hat, eps))
            at = np.char.add(np.char.add("y'=", np.char.mod("%.4g", y_hat)), np.char.add(" y=", np.char.mod("%.4g", y)))
            scale = 1.0 + np.abs(loss.value(y_hat, y))[:, None] + np.abs(y_hat) + np.abs(y)
            label = key + "".join(f" ({v})" for v in params.values())
            rows.append(_unit("loss", label, loss.grad(y_hat, y), num, at, scale, eps, tol, bd))
            if loss.fused_with:
                act = acts.get_activation(loss.fused_with)
                z = rng.normal(0, 2, size=y.shape)
                num, bd = (v.T for v in _columnwise(lambda v: loss.value_z(v, y), z, eps))  # as training computes it
                at = np.char.add("z=", np.char.mod("%.4g", z))
                scale = 1.0 + np.abs(loss.value_z(z, y))[:, None] + np.abs(z)
                rows.append(_unit("fused", f"{loss.fused_with} + {key}", act.fn(z) - y, num, at, scale, eps, tol,
                                  bd))
    return rows


def _loss_inputs(rng: np.random.Generator, loss, eps: float) -> tuple[Array, Array]:
    """(y_hat, y) of shape (40, 3) where this loss is defined and differentiable."""
    from bpcli.nn.activations import get_activation

    shape = (40, 3)
    if loss.name == "cross_entropy":
        y = np.eye(3)[rng.integers(0, 3, size=40)]
        return get_activation("softmax").fn(rng.normal(0, 1.0, size=shape)), y
    if loss.name == "binary_cross_entropy":
        y = rng.integers(0, 2, size=shape).astype(float)
        return rng.uniform(0.03, 0.97, size=shape), y
    y = rng.normal(size=shape)
    delta = loss.params.get("delta")
    avoid = loss.kinks + ((-delta, delta) if delta else ())  # huber's pieces meet at +-delta
    return y + _spread(rng, 40, 3, -3.0, 3.0, avoid, 100 * eps), y
