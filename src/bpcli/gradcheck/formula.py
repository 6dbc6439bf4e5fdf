"""gradcheck --units for the config's own formulas: the user's df (and dL) against central differences of f (L).

Checked on a grid of inputs and on the values the network actually computes, and reported at the first input,
in increasing order, where the derivative is wrong: that is where a learner starts looking.
"""

from __future__ import annotations

import numpy as np

from bpcli.gradcheck.report import UnitRow
from bpcli.gradcheck.verdict import MACHINE_EPS, VERDICTS, judge, richardson, undecided

Array = np.ndarray

GRID = np.linspace(-5.975, 5.975, 240)  # step 0.05, halfway between round numbers (kinks sit on those)


def _row(kind: str, name: str, ana: Array, num: Array, at: list[str], scale: Array, eps: float, tol: float,
         bound: Array, kink: Array | None = None, sides: tuple | None = None) -> UnitRow:
    """The first failing point in the given order, else the worst checked one.  Where the step crosses a kink
    (kink True) the one-sided differences in `sides` ((right, bound), (left, bound)) decide: a match with
    either passes, else the point is a kink (inconclusive, never a failure)."""
    bound = bound + 4 * MACHINE_EPS * scale
    rel, code, passed = (np.ravel(v) for v in np.broadcast_arrays(*judge(ana, num, bound, tol)))
    if kink is not None and kink.any():
        (r, rb), (lf, lb) = sides
        rR, cR, pR = judge(ana, r, rb + 4 * MACHINE_EPS * scale, tol)
        rL, cL, pL = judge(ana, lf, lb + 4 * MACHINE_EPS * scale, tol)
        rel = np.where(kink, np.where(pR | ~pL, rR, rL), rel)
        code = np.where(kink, np.where(pR, cR, np.where(pL, cL, 4)), code)  # 4: kink
        passed = np.where(kink, pR | pL, passed)
    failing = np.flatnonzero(~passed & ~undecided(code))
    if failing.size:
        i = int(failing[0])
        where = f"first wrong {at[i]}"
    else:
        checked = ~undecided(code)
        key = np.where(np.isfinite(rel) & checked, rel, -1.0)
        i = int(np.argmax(key)) if checked.any() else 0
        where = at[i]
    return UnitRow(kind, name, int(rel.size), float(rel[i]), float(abs(ana[i] - num[i])), where,
                   VERDICTS[int(code[i])], bool(passed[i]))


def formula_units(net, tape, y: Array, eps: float, tol: float) -> list[UnitRow]:
    """One row per layer whose activation is a formula, and one for a formula loss.

    tape: the engine's forward pass on the checked samples (its z values are checked besides the grid).
    """
    rows: list[UnitRow] = []
    for l, (layer, t) in enumerate(zip(net.layers, tape)):
        act = layer.activation
        if "df" not in act.params:
            continue
        z = np.unique(np.concatenate([GRID, np.ravel(t.z).astype(np.float64)]))  # sorted, so "first" is lowest z
        z = z[np.isfinite(z)]
        from bpcli.gradcheck.numeric import crossed

        with np.errstate(all="ignore"):
            a = act.fn(z)
            ana = act.grad(z, a)
            f = {s: act.fn(z + s * eps) for s in (1.0, -1.0, 0.5, -0.5)}
            scale = 1.0 + np.abs(z) + np.abs(a)
            num, bound = richardson((f[1.0] - f[-1.0]) / (2 * eps), (f[0.5] - f[-0.5]) / eps, eps, scale)
            R1, R2 = (f[1.0] - a) / eps, (f[0.5] - a) / (eps / 2)
            L1, L2 = (a - f[-1.0]) / eps, (a - f[-0.5]) / (eps / 2)
            one = 10 * MACHINE_EPS * scale / eps
            cross = {s: crossed(act, z, z + s * eps) for s in f}
        kink = cross[1.0] | cross[-1.0] | cross[0.5] | cross[-0.5]
        right = np.where(cross[1.0] | cross[0.5], np.nan, 2 * R2 - R1), one + np.abs(R1 - R2)
        left = np.where(cross[-1.0] | cross[-0.5], np.nan, 2 * L2 - L1), one + np.abs(L1 - L2)
        at = [f"z={v:.6g}" for v in z]
        rows.append(_row("activation", f"{act.name} (layer {layer.letter})", ana, num, at, scale, eps, tol,
                         bound, kink, (right, left)))
    loss = net.loss
    if "dL" in loss.params:
        top = tape[-1].a_out.astype(np.float64)
        yy = np.asarray(y, dtype=np.float64)
        yg = np.concatenate([np.broadcast_to(yy.mean(axis=0), (GRID.size, yy.shape[1])), yy])
        y_hat = np.concatenate([yg[: GRID.size] + GRID[:, None] / 3.0, top])
        with np.errstate(all="ignore"):
            ana = loss.grad(y_hat, yg)
            d = [np.stack([(loss.value(_moved(y_hat, j, h), yg) - loss.value(_moved(y_hat, j, -h), yg)) / (2 * h)
                           for j in range(y_hat.shape[1])], axis=1) for h in (eps, eps / 2)]
            scale = 1.0 + np.abs(loss.value(y_hat, yg))[:, None] + np.abs(y_hat) + np.abs(yg)
            num, bound = richardson(d[0], d[1], eps, scale)
        at = [f"y'={p:.6g} y={q:.6g}" for p, q in zip(y_hat.ravel(), yg.ravel())]
        rows.append(_row("loss", f"{loss.name} (your dL)", ana.ravel(), num.ravel(), at, scale.ravel(), eps, tol,
                         bound.ravel()))
    return rows


def _moved(v: Array, j: int, step: float) -> Array:
    out = v.copy()
    out[:, j] += step
    return out
