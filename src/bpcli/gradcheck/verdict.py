"""gradcheck's verdicts: the one rule judging an analytic value against a numeric one and its error bound.

The ground floor of the gradcheck package: its report, units, formula and check modules and explain's check
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

# The safety factor on an error bound: an entry fails only when its difference exceeds the tolerance by more
# than SAFETY times what the numeric side's and the analytic side's own errors can explain.
SAFETY = 4.0
MACHINE_EPS = float(np.finfo(np.float64).eps)


def relative_error(analytic: Array, numeric: Array, floor: float | Array = 0.0) -> Array:
    """|a - n| / max(|a|, |n|, floor), elementwise (NaN where a value is not finite)."""
    a, n = np.asarray(analytic, dtype=np.float64), np.asarray(numeric, dtype=np.float64)
    with np.errstate(invalid="ignore", over="ignore"):
        diff = np.abs(a - n)
        den = np.maximum(np.maximum(np.abs(a), np.abs(n)), floor)
        out = np.divide(diff, den, out=np.zeros_like(diff), where=den > 0)  # 0 / 0: both exactly zero, no error
    return np.where(np.isfinite(a) & np.isfinite(n), out, np.nan)


def resolved_step(w: Array, step: float | Array) -> Array:
    """True where float64 can take the step at w: w + step and w - step both differ from w (elementwise)."""
    w = np.asarray(w, dtype=np.float64)
    with np.errstate(invalid="ignore", over="ignore"):
        return (w + step != w) & (w - step != w)


def judge(analytic: Array, numeric: Array, bound: float | Array, tol: float, kink: Array | bool = False,
          resolved: Array | bool = True) -> tuple[Array, Array, Array]:
    """(rel, code, passed): the one verdict rule of every check (entries, directions, units, explain, torch).

    bound: how far the two values can be apart from rounding and truncation alone (the numeric value's error
    estimate plus the analytic side's own rounding), per entry.  With diff = |a - n| and scale = max(|a|, |n|),
    the entry itself (no floor taken from other entries):
      not finite    a or n is inf or NaN (fails);
      inconclusive  the step was not taken (w +- h == w), or the move crossed a kink (kink=True: code 'kink',
                    counted as inconclusive, never excused), or neither rule below applies;
      fail          diff > tol * scale + SAFETY * bound: more apart than the tolerance and the errors explain;
      pass          diff <= tol * scale and bound <= tol * scale: agree, and the check could have seen a
                    disagreement of tol (or both are exactly 0: the move changed nothing and backprop agrees).
    A decided entry is named by its band of rel = diff / scale: good, ok, suspicious, wrong.
    """
    a = np.asarray(analytic, dtype=np.float64)
    n = np.asarray(numeric, dtype=np.float64)
    bound = np.asarray(bound, dtype=np.float64)
    rel = relative_error(a, n)
    with np.errstate(invalid="ignore", over="ignore"):
        diff = np.abs(a - n)
        scale = np.maximum(np.abs(a), np.abs(n))
        fail = diff > tol * scale + SAFETY * np.where(np.isnan(bound), np.inf, bound)
        exact = (a == 0) & (n == 0)
        ok = ((diff <= tol * scale) & (bound <= tol * scale)) | exact
    code = np.select([~(rel <= WRONG), rel >= OK, rel >= GOOD], [3, 2, 1], 0)
    code = np.where(fail | ok, code, INCONCLUSIVE)
    code = np.where(np.asarray(kink) & ~ok, KINK, code)
    code = np.where(~np.asarray(resolved), INCONCLUSIVE, code)
    code = np.where(np.isfinite(a) & np.isfinite(n), code, NOT_FINITE)
    passed = (code <= 3) & ok & ~fail
    return rel, code, passed


def undecided(code: Array) -> Array:
    """True where a verdict neither passed nor failed: inconclusive, or a kink no step could avoid."""
    code = np.asarray(code)
    return (code == INCONCLUSIVE) | (code == KINK)


def judge_estimate(ana: Array, est, ab: Array, tol: float, resolved: Array | bool = True):
    """(numeric, bound, rel, code, passed) of analytic values against an Estimate (gradcheck.numeric), ab the
    analytic side's rounding bound.  Where every central difference crossed a kink, the one-sided differences
    that did not cross decide: pass when backprop matches one of them (it takes one side's derivative at a
    kink), else 'kink' (inconclusive, never excused), unless a side whose move is smooth from w on disagrees:
    a failure."""
    num, bound = est.value.copy(), est.bound + ab
    rel, code, passed = judge(ana, num, bound, tol, resolved=resolved)
    if est.kink.any():
        k = est.kink
        rR, cR, pR = judge(ana, est.right, est.right_bound + ab, tol, resolved=resolved)
        rL, cL, pL = judge(ana, est.left, est.left_bound + ab, tol, resolved=resolved)
        # a side fails only where its move is smooth all the way from w (no element sat on a kink): there C has
        # a derivative at w and backprop must give it; where one sat on a kink, only a match counts
        fR = ~pR & ~undecided(cR) & ~np.asarray(est.right_at, dtype=bool) & np.isfinite(est.right)
        fL = ~pL & ~undecided(cL) & ~np.asarray(est.left_at, dtype=bool) & np.isfinite(est.left)
        use_right = pR | (~pL & (fR | (~fL & np.isfinite(est.right) & ~(est.right_bound > est.left_bound))))
        side_num = np.where(use_right, est.right, est.left)
        side_bound = np.where(use_right, est.right_bound, est.left_bound) + ab
        side_rel = np.where(use_right, rR, rL)
        side_code = np.where(pR, cR, np.where(pL, cL, np.where(fR, cR, np.where(fL, cL, KINK))))
        side_code = np.where(np.isfinite(ana), side_code, cR)  # a non-finite gradient fails at a kink too
        num, bound = np.where(k, side_num, num), np.where(k, side_bound, bound)
        rel, code, passed = np.where(k, side_rel, rel), np.where(k, side_code, code), np.where(k, pR | pL, passed)
    return num, bound, rel, code, passed


def exit_code(failed: bool, inconclusive: bool) -> int:
    """1 when something failed, else 3 when something could not be checked, else 0."""
    return EXIT_FAILED if failed else EXIT_INCONCLUSIVE if inconclusive else EXIT_PASSED


def richardson(d_h: Array, d_h2: Array, h: float | Array, scale: float | Array, eps: float = MACHINE_EPS
               ) -> tuple[Array, Array]:
    """(value, bound) from central differences at h and h/2 of a function whose values have size `scale`:
    R = (4 D(h/2) - D(h)) / 3, bound = 6 eps scale / h (rounding) + |D(h) - D(h/2)| / 3 (truncation)."""
    d_h, d_h2 = np.asarray(d_h, dtype=np.float64), np.asarray(d_h2, dtype=np.float64)
    with np.errstate(all="ignore"):
        return (4 * d_h2 - d_h) / 3, 6 * eps * np.asarray(scale) / h + np.abs(d_h - d_h2) / 3
