"""Numbers for the views: the one formatting rule (fmt, DIGITS), relative errors, sparklines and metric labels."""

from __future__ import annotations

import math

SPARK = "▁▂▃▄▅▆▇█"


DIGITS = 6  # significant digits of every number a view shows (explain, gradcheck, step, ...)


def fmt(v: float | None, digits: int = DIGITS) -> str:
    """A number for a view, the one rule every command follows: `digits` significant figures (DIGITS), a minus
    sign and no plus sign, scientific (1.23457e-05, 1e-08: no trailing zeros) below 1e-4 and from 1e6 on, 0 for
    zero, "-" for none."""
    if v is None:
        return "-"
    v = float(v)
    if not math.isfinite(v):
        return str(v)
    if v == 0:
        return "0"
    if abs(v) < 1e-4 or abs(v) >= 1e6:
        mant, exp = f"{v:.{max(digits - 1, 1)}e}".split("e")
        return (mant.rstrip("0").rstrip(".") if "." in mant else mant) + "e" + exp
    text = f"{v:.{digits}g}"
    # a value that rounds to a whole number at these digits without being one (y' = 0.99999997 shown as 1, a
    # probability that looks certain): more digits, until it no longer reads as that whole number
    while float(text) != v and float(text).is_integer() and digits < 17:
        digits += 1
        text = f"{v:.{digits}g}"
    return text


def digits_apart(a: float, b: float, digits: int = DIGITS) -> int:
    """The digits fmt needs to show two different numbers differently (a value before and after a tiny update:
    never `x - tiny = x`): `digits`, or more, up to 17."""
    while a != b and fmt(a, digits) == fmt(b, digits) and digits < 17:
        digits += 1
    return digits


def fmt_error(v: float | None) -> str:
    """An error (relative or absolute) in two-digit scientific notation, 1.2e-09; 0 for an exact match."""
    if v is None:
        return "-"
    v = float(v)
    if v == 0:
        return "0"
    if not math.isfinite(v):
        return str(v)
    return f"{v:.1e}"


def sparkline(values: list[float], width: int = 40, log: bool = True) -> str:
    """A one-line curve of `values`, downsampled to `width` characters (log scale for losses)."""
    vals = [v for v in values if v is not None and math.isfinite(v)]
    if not vals:
        return ""
    if len(vals) > width:  # evenly spaced samples, the first and the last value always among them
        n = len(vals)
        vals = [vals[round(i * (n - 1) / (width - 1))] for i in range(width)]
    if log and min(vals) > 0:
        vals = [math.log10(v) for v in vals]
    lo, hi = min(vals), max(vals)
    if hi - lo < 1e-12:
        return SPARK[3] * len(vals)
    return "".join(SPARK[min(int((v - lo) / (hi - lo) * (len(SPARK) - 1) + 0.5), len(SPARK) - 1)] for v in vals)


def metric_label(name: str) -> str:
    return {"accuracy": "accuracy", "r2": "R^2"}.get(name, name)


def fmt_metric(name: str, v: float | None) -> str:
    if v is None:
        return "-"
    if name == "accuracy":
        return f"{100 * v:.1f}%"
    return f"{v:.4f}" if abs(v) < 1e6 else fmt(v, 4)  # a diverged run's R^2 can be -1e290
