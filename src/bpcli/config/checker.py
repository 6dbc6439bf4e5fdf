"""Checking typed values at config paths: each problem gathered as `file:line: path: message`."""

from __future__ import annotations

import math
import re
import reprlib
from typing import Any

import numpy as np

from bpcli.errors import did_you_mean, is_finite_number, one_of
from bpcli.yamlsrc import Locations, as_bool, format_path, yaml11_hint


def by_line(problems: list[str]) -> list[str]:
    """Problems in file order (stable), so they read top to bottom like the file."""
    def key(p: str) -> int:
        m = re.match(r"^.*?:(\d+): ", p)
        return int(m.group(1)) if m else 0
    return sorted(problems, key=key)


class Checker:
    """Typed values read from a parsed config; every problem is gathered with its file, line and path."""

    def __init__(self, source: str, locs: Locations):
        self.source = source
        self.locs = locs
        self.problems: list[str] = []

    def problem(self, path: tuple, msg: str) -> None:
        line = self.locs.line(path)
        where = f"{self.source}:{line}" if line else self.source
        self.problems.append(f"{where}: {format_path(path)}: {msg}")

    def mapping(self, value: Any, path: tuple, allowed: tuple[str, ...]) -> dict:
        if value is None:
            return {}
        if not isinstance(value, dict):
            self.problem(path, f"expected a mapping of keys ({', '.join(allowed)}), found {kind_of(value)}")
            return {}
        for key in value:
            if key not in allowed:
                self.problem(path + (key,), f"unknown key '{key}'{did_you_mean(str(key), allowed)}; "
                             f"valid keys here: {', '.join(allowed)}")
        return value

    def integer(self, d: dict, key: str, path: tuple, default, lo: int | None = None, hi: int | None = None,
                allow_none: bool = False):
        v = d.get(key, default)
        if v is None and allow_none:
            return None
        if isinstance(v, bool) or not isinstance(v, int):
            if isinstance(v, float) and v.is_integer() and math.isfinite(v):
                v = int(v)
            else:
                self.problem(path + (key,), f"expected a whole number, found {kind_of(v)} {short_repr(v)}"
                             f"{yaml11_hint(v)}")
                return default
        if lo is not None and v < lo:
            self.problem(path + (key,), f"must be at least {lo}, found {_whole(v)}")
            return default
        if hi is not None and v > hi:
            self.problem(path + (key,), f"must be at most {hi}, found {_whole(v)}")
            return default
        return v

    def number(self, d: dict, key: str, path: tuple, default, lo: float | None = None, hi: float | None = None,
               lo_open: bool = False, hi_open: bool = False):
        v = d.get(key, default)
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            self.problem(path + (key,), f"expected a number, found {kind_of(v)} {short_repr(v)}{yaml11_hint(v)}")
            return default
        if not is_finite_number(v):
            self.problem(path + (key,), f"expected a finite number, found {short_repr(v)}")
            return default
        v = float(v)
        if lo is not None and (v < lo or (lo_open and v == lo)):
            self.problem(path + (key,), f"must be {'>' if lo_open else '>='} {lo:g}, found {v:g}")
            return default
        if hi is not None and (v > hi or (hi_open and v == hi)):
            self.problem(path + (key,), f"must be {'<' if hi_open else '<='} {hi:g}, found {v:g}")
            return default
        return v

    def choice(self, d: dict, key: str, path: tuple, default: str, choices: tuple[str, ...]) -> str:
        v = d.get(key, default)
        if "on" in choices and "off" in choices and not (isinstance(v, str) and v.lower() in choices):
            v = {True: "on", False: "off"}.get(as_bool(v), v)  # true/false and yes/no for on/off
        if not isinstance(v, str) or v.lower() not in choices:
            self.problem(path + (key,), f"unknown value {short_repr(v)}{did_you_mean(str(v), choices)}; "
                         f"expected {one_of(choices)}")
            return default
        return v.lower()

    def boolean(self, d: dict, key: str, path: tuple, default: bool) -> bool:
        """true/false, or yes/no/on/off written as words."""
        v = d.get(key, default)
        b = as_bool(v)
        if b is None:
            self.problem(path + (key,), f"expected true or false, found {kind_of(v)} {short_repr(v)}")
            return default
        return b

    def string(self, d: dict, key: str, path: tuple, default: str | None) -> str | None:
        v = d.get(key, default)
        if v is not None and not isinstance(v, str):
            self.problem(path + (key,), f"expected text, found {kind_of(v)} {short_repr(v)}")
            return default
        return v


def human_bytes(n: float) -> str:
    """1536 -> '1.5 KiB'; absurd sizes stay short ('8.88e+84 EiB'), even beyond float range."""
    if n >= 10**300:  # a whole number from a 1e308 layer size: float(n) would overflow
        return "more than 1e280 EiB"
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if n < 1024:
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:,.1f} {unit}"
        n /= 1024
    return f"{n:,.1f} EiB" if n < 1e6 else f"{n:.3g} EiB"


def big_count(n: int) -> str:
    """12,345 in full; 1.23e+20 beyond 10**15; 'more than 1e300' for whole numbers near or beyond float range."""
    if n < 0:
        return "-" + big_count(-n)
    if n < 10**15:
        return f"{n:,}"
    if n < 10**300:
        return f"{float(n):.3g}"
    return "more than 1e300"


def _whole(n: int) -> str:
    """A whole number as typed, unless it has more than 15 digits (1e308 read as a whole number has 309)."""
    return str(n) if abs(n) < 10**15 else big_count(n)


def kind_of(v: Any) -> str:
    """What a YAML value is, in words: 'a mapping', 'text', ..."""
    return {dict: "a mapping", list: "a list", str: "text", bool: "true/false", int: "a number",
            float: "a number", type(None): "nothing"}.get(type(v), type(v).__name__)


_REPR = reprlib.Repr()
_REPR.maxlevel, _REPR.maxlist, _REPR.maxdict, _REPR.maxstring, _REPR.maxother = 2, 4, 3, 40, 40
_REPR.maxlong = 40


def short_repr(v: Any) -> str:
    """A repr of at most 40 characters that never walks a whole (possibly alias-exploded) structure."""
    s = _REPR.repr(v)
    return s if len(s) <= 40 else s[:37] + "..."


def matrix(ck: Checker, v: Any, path: tuple) -> np.ndarray | None:
    """A list of equal-length lists of finite numbers as a 2-D float64 array."""
    if not isinstance(v, list) or not v:
        ck.problem(path, f"expected a non-empty list of rows, found {kind_of(v)}")
        return None
    rows = [r if isinstance(r, list) else [r] for r in v]
    width = len(rows[0])
    if width == 0:
        ck.problem(path + (0,), "the row is empty; each row needs at least one number")
        return None
    for i, r in enumerate(rows):
        if len(r) != width:
            ck.problem(path + (i,), f"row has {len(r)} values, row 0 has {width}")
            return None
        for j, c in enumerate(r):
            if isinstance(c, bool) or not isinstance(c, (int, float)):
                ck.problem(path + (i,), f"value {j} is {kind_of(c)} {short_repr(c)}, expected a number{yaml11_hint(c)}")
                return None
            if not is_finite_number(c):
                ck.problem(path + (i,), f"value {j} is {short_repr(c)} (NaN, infinite or beyond float range)")
                return None
    return np.asarray(rows, dtype=np.float64)
