"""gradcheck's verdicts: relative error, the rounding noise of a central difference, and the verdict bands.

The ground floor of the gradcheck modules: gradcheck_report, gradcheck_units, gradcheck and explain's check
all import from here, and this imports nothing of bpcli.
"""

from __future__ import annotations

import numpy as np

Array = np.ndarray

# Verdict bands of the relative error (CS231n's rule of thumb for float64 gradient checks).
GOOD = 1e-7  # below: good
OK = 1e-4  # below: ok; from here to WRONG: suspicious
WRONG = 1e-2  # above: wrong
VERDICTS = ("good", "ok", "suspicious", "wrong", "kink", "not finite", "inconclusive")
KINK, NOT_FINITE, INCONCLUSIVE = 4, 5, 6  # codes into VERDICTS; 0-3 are the bands

# Exit codes of a check: 0 everything passed; 1 something failed (a band over the pass line, or not finite);
# 3 nothing failed but something could not be checked (inconclusive).  2 stays bad input.
EXIT_PASSED, EXIT_FAILED, EXIT_INCONCLUSIVE = 0, 1, 3

# Relative errors divide by max(|a|, |n|, floor).  The floor is FLOOR_FACTOR times the rounding noise that a
# central difference of this cost can carry (machine epsilon * the cost's scale / eps): gradients smaller than
# that are judged by their absolute error, since their last digits are noise; a trained network with a tiny
# cost gets a tiny floor, so gradcheck stays sharp near a minimum.
FLOOR_FACTOR = 1e7
MACHINE_EPS = float(np.finfo(np.float64).eps)


def relative_error(analytic: Array, numeric: Array, floor: float | Array = 0.0) -> Array:
    """|a - n| / max(|a|, |n|, floor), elementwise (NaN where a value is not finite)."""
    a, n = np.asarray(analytic, dtype=np.float64), np.asarray(numeric, dtype=np.float64)
    with np.errstate(invalid="ignore", over="ignore"):
        diff = np.abs(a - n)
        den = np.maximum(np.maximum(np.abs(a), np.abs(n)), floor)
        out = np.divide(diff, den, out=np.zeros_like(diff), where=den > 0)  # 0 / 0: both exactly zero, no error
    return np.where(np.isfinite(a) & np.isfinite(n), out, np.nan)


def rounding_noise(scale: float | Array, eps: float) -> float | Array:
    """How far rounding alone can move a central difference of a function of size `scale` with step eps."""
    return MACHINE_EPS * scale / eps


def resolved_step(w: Array, step: float | Array) -> Array:
    """True where float64 can take the step at w: w + step and w - step both differ from w (elementwise)."""
    w = np.asarray(w, dtype=np.float64)
    with np.errstate(invalid="ignore", over="ignore"):
        return (w + step != w) & (w - step != w)


def judge(analytic: Array, numeric: Array, floor: float | Array, tol: float, kink: Array | bool = False,
          resolved: Array | bool = True) -> tuple[Array, Array, Array]:
    """(rel, code, passed): the one verdict rule of every check (entries, directions, units, explain).

    In order, the first that applies:
      not finite    the analytic or the numeric value is inf or NaN (fails);
      inconclusive  the step was not taken (w +- eps == w: eps is below what float64 resolves at w), or it did
                    not change the cost (numeric exactly 0 while analytic is not), or the floor alone made the
                    pass: both |a| and |n| lie within the absolute error the floor allows (tol * floor), so any
                    value there, 0 or -a included, would have passed, while a and n differ by more than tol in
                    their own terms (does not pass, does not count as wrong);
      kink          the step crossed a kink and the entry misses the pass line (excused, passes);
      a band        good / ok / suspicious / wrong from the relative error; passes when rel <= tol.
    """
    a = np.asarray(analytic, dtype=np.float64)
    n = np.asarray(numeric, dtype=np.float64)
    floor = np.asarray(floor, dtype=np.float64)
    floor = np.where(np.isfinite(floor), floor, 0.0)  # an overflowed noise estimate: compare without a floor
    rel = relative_error(a, n, floor)
    plain = relative_error(a, n)
    with np.errstate(invalid="ignore", over="ignore"):
        swallowed = (np.maximum(np.abs(a), np.abs(n)) <= tol * floor) & ~(plain <= tol)
    code = np.select([~(rel <= WRONG), rel >= OK, rel >= GOOD], [3, 2, 1], 0)  # NaN counts as wrong
    code = np.where(np.asarray(kink) & ~(rel <= tol), KINK, code)
    code = np.where(swallowed & (rel <= tol), INCONCLUSIVE, code)
    code = np.where(~np.asarray(resolved) | ((n == 0) & (a != 0)), INCONCLUSIVE, code)
    code = np.where(np.isfinite(a) & np.isfinite(n), code, NOT_FINITE)
    passed = (code == KINK) | ((code <= 3) & (rel <= tol))
    return rel, code, passed


def exit_code(failed: bool, inconclusive: bool) -> int:
    """1 when something failed, else 3 when something could not be checked, else 0."""
    return EXIT_FAILED if failed else EXIT_INCONCLUSIVE if inconclusive else EXIT_PASSED
