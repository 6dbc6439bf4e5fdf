"""gradcheck's verdicts: relative error, the rounding noise of a central difference, and the verdict bands.

The ground floor of the gradcheck modules: gradcheck_report, gradcheck_units, gradcheck and explain's check
all import from here, and this imports nothing of bpcli.
"""

from __future__ import annotations

import math

import numpy as np

Array = np.ndarray

# Verdict bands of the relative error (CS231n's rule of thumb for float64 gradient checks).
GOOD = 1e-7  # below: good
OK = 1e-4  # below: ok; from here to WRONG: suspicious
WRONG = 1e-2  # above: wrong
VERDICTS = ("good", "ok", "suspicious", "wrong", "kink")

# Relative errors divide by max(|a|, |n|, floor).  The floor is FLOOR_FACTOR times the rounding noise that a
# central difference of this cost can carry (machine epsilon * the cost's scale / eps): gradients smaller than
# that are judged by their absolute error, since their last digits are noise; a trained network with a tiny
# cost gets a tiny floor, so gradcheck stays sharp near a minimum.
FLOOR_FACTOR = 1e7
MACHINE_EPS = float(np.finfo(np.float64).eps)


def relative_error(analytic: Array, numeric: Array, floor: float | Array = 0.0) -> Array:
    """|a - n| / max(|a|, |n|, floor), elementwise."""
    a, n = np.asarray(analytic, dtype=np.float64), np.asarray(numeric, dtype=np.float64)
    diff = np.abs(a - n)
    den = np.maximum(np.maximum(np.abs(a), np.abs(n)), floor)
    return np.divide(diff, den, out=np.zeros_like(diff), where=den > 0)  # 0 / 0: both exactly zero, no error


def rounding_noise(scale: float | Array, eps: float) -> float | Array:
    """How far rounding alone can move a central difference of a function of size `scale` with step eps."""
    return MACHINE_EPS * scale / eps


def verdict_codes(rel: Array, kink: Array, tol: float) -> tuple[Array, Array]:
    """(verdict codes into VERDICTS, passed) for relative errors; a kink at the step only excuses a miss."""
    rel = np.asarray(rel)
    code = np.select([~(rel <= WRONG), rel >= OK, rel >= GOOD], [3, 2, 1], 0)  # NaN counts as wrong
    code = np.where(np.asarray(kink) & ~(rel <= tol), VERDICTS.index("kink"), code)
    return code, (code == VERDICTS.index("kink")) | (rel <= tol)


def verdict_of(rel: float) -> str:
    if not math.isfinite(rel) or rel > WRONG:
        return "wrong"
    if rel >= OK:
        return "suspicious"
    if rel >= GOOD:
        return "ok"
    return "good"

