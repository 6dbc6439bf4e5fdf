"""gradcheck --units for the config's own formulas: the user's df (and dL) against central differences of f (L).

Checked on a grid of inputs and on the values the network actually computes, and reported at the first input,
in increasing order, where the derivative is wrong: that is where a learner starts looking.
"""

from __future__ import annotations

import numpy as np

from bpcli.gradcheck_report import UnitRow
from bpcli.gradcheck_verdict import FLOOR_FACTOR, INCONCLUSIVE, VERDICTS, judge, rounding_noise

Array = np.ndarray

GRID = np.linspace(-5.975, 5.975, 240)  # step 0.05, halfway between round numbers (kinks sit on those)


def _row(kind: str, name: str, ana: Array, num: Array, at: list[str], scale: Array, eps: float, tol: float,
         floor: float | None) -> UnitRow:
    """The first failing point in the given order, else the worst checked one."""
    fl = FLOOR_FACTOR * rounding_noise(scale, eps) if floor is None else floor
    rel, code, passed = (np.ravel(v) for v in np.broadcast_arrays(*judge(ana, num, fl, tol)))
    failing = np.flatnonzero(~passed & (code != INCONCLUSIVE))
    if failing.size:
        i = int(failing[0])
        where = f"first wrong {at[i]}"
    else:
        checked = code != INCONCLUSIVE
        key = np.where(np.isfinite(rel) & checked, rel, -1.0)
        i = int(np.argmax(key)) if checked.any() else 0
        where = at[i]
    return UnitRow(kind, name, int(rel.size), float(rel[i]), float(abs(ana[i] - num[i])), where,
                   VERDICTS[int(code[i])], bool(passed[i]))


def formula_units(net, tape, y: Array, eps: float, tol: float, floor: float | None = None) -> list[UnitRow]:
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
        with np.errstate(all="ignore"):
            a = act.fn(z)
            ana = act.grad(z, a)
            num = (act.fn(z + eps) - act.fn(z - eps)) / (2 * eps)
        at = [f"z={v:.6g}" for v in z]
        scale = 1.0 + np.abs(z) + np.abs(a)
        rows.append(_row("activation", f"{act.name} (layer {layer.letter})", ana, num, at, scale, eps, tol,
                         floor))
    loss = net.loss
    if "dL" in loss.params:
        top = tape[-1].a_out.astype(np.float64)
        yy = np.asarray(y, dtype=np.float64)
        yg = np.concatenate([np.broadcast_to(yy.mean(axis=0), (GRID.size, yy.shape[1])), yy])
        y_hat = np.concatenate([yg[: GRID.size] + GRID[:, None] / 3.0, top])
        with np.errstate(all="ignore"):
            ana = loss.grad(y_hat, yg)
            num = np.stack([(loss.value(_moved(y_hat, j, eps), yg) - loss.value(_moved(y_hat, j, -eps), yg)) / (2 * eps)
                            for j in range(y_hat.shape[1])], axis=1)
            scale = 1.0 + np.abs(loss.value(y_hat, yg))[:, None] + np.abs(y_hat) + np.abs(yg)
        at = [f"y'={p:.6g} y={q:.6g}" for p, q in zip(y_hat.ravel(), yg.ravel())]
        rows.append(_row("loss", f"{loss.name} (your dL)", ana.ravel(), num.ravel(), at, scale.ravel(), eps, tol,
                         floor))
    return rows


def _moved(v: Array, j: int, step: float) -> Array:
    out = v.copy()
    out[:, j] += step
    return out
