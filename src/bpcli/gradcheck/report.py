"""gradcheck's options and result objects: GradcheckOptions and the GradcheckReport it produces."""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np

from bpcli.errors import BpcliError
from bpcli.gradcheck.verdict import GOOD, KINK, NOT_FINITE, OK, VERDICTS, WRONG, exit_code, undecided
from bpcli.nn.model import Layer, node_name, weight_name

Array = np.ndarray

DEFAULT_EPS = 1e-5
DEFAULT_TOL = OK
DEFAULT_CAP = 5000  # above this many parameters, entries are sampled unless --all
DEFAULT_SAMPLE = 1000  # entries sampled above the cap
DEFAULT_DIRECTIONS = 4  # random directions per parameter array
DEFAULT_SAMPLES = 64  # data samples used unless --n-samples says otherwise

# The ranges the options are refused outside of (docs/gradcheck.md says why).  On the 120 smooth random
# networks of the test suite, correct gradients above 1e-3 miss the default pass line at eps 1e-10 (107 of
# 2557: rounding noise) and at eps 1e-2 (244 of 2557: truncation); none does from 1e-9 to 1e-4.
EPS_RANGE = (1e-9, 1e-3)
TOL_RANGE = (1e-10, WRONG)  # a pass line above WRONG would pass entries called wrong
SAMPLES_MAX = 100_000
DIRECTIONS_MAX = 1000


@dataclass(frozen=True)
class GradcheckOptions:
    """What to check and how; the CLI's options one to one."""

    eps: float = DEFAULT_EPS
    tol: float = DEFAULT_TOL
    samples: int | None = DEFAULT_SAMPLES  # None: every sample
    mode: str = "auto"  # auto | entries | directional
    all_entries: bool = False
    cap: int = DEFAULT_CAP
    sample_size: int = DEFAULT_SAMPLE
    directions: int = DEFAULT_DIRECTIONS
    weights: tuple[str, ...] = ()
    seed: int = 0

    def validate(self) -> None:
        """BpcliError naming the option and its range when a value cannot work."""
        lo, hi = EPS_RANGE
        if not (_number(self.eps) and lo <= self.eps <= hi):
            raise BpcliError(f"--eps: must be from {lo:g} to {hi:g} (below, rounding noise swamps the difference; "
                             f"above, truncation error does), found {self.eps}")
        lo, hi = TOL_RANGE
        if not (_number(self.tol) and lo <= self.tol <= hi):
            raise BpcliError(f"--tol: must be from {lo:g} to {hi:g}, found {self.tol}")
        if self.samples is not None and not (_whole(self.samples) and 1 <= self.samples <= SAMPLES_MAX):
            raise BpcliError(f"--n-samples: must be from 1 to {SAMPLES_MAX}, found {self.samples}")
        if self.mode not in ("auto", "entries", "directional"):
            raise BpcliError(f"mode: expected 'auto', 'entries' or 'directional', found {self.mode!r}")
        if not (_whole(self.directions) and 1 <= self.directions <= DIRECTIONS_MAX):
            raise BpcliError(f"--directions: must be from 1 to {DIRECTIONS_MAX}, found {self.directions}")
        if not (_whole(self.seed) and 0 <= self.seed < 2**63):
            raise BpcliError(f"--subset-seed: must be from 0 to 2**63 - 1, found {self.seed}")

    def to_dict(self) -> dict:
        return {"eps": self.eps, "tol": self.tol, "samples": self.samples, "mode": self.mode,
                "all": self.all_entries, "cap": self.cap, "sample_size": self.sample_size,
                "directions": self.directions, "weights": list(self.weights), "seed": self.seed}


def _number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _whole(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


# The verdict rule, as the JSON states it (docs/gradcheck.md explains it).
RULE = ("fail when |a - n| > tol * max(|a|, |n|) + safety * bound; pass when |a - n| <= tol * max(|a|, |n|) and "
        "bound <= tol * max(|a|, |n|); inconclusive otherwise")


# --- result objects ------------------------------------------------------------------------


@dataclass(frozen=True)
class EntryRow:
    """One parameter: backprop's value against the central difference."""

    name: str
    layer: str
    kind: str  # weight | bias
    analytic: float
    numeric: float
    abs_error: float
    rel_error: float
    verdict: str  # good | ok | suspicious | wrong | kink | not finite | inconclusive
    passed: bool
    bound: float = 0.0  # how far apart rounding and truncation alone can put the two values
    step: float | None = None  # the step h the numeric value was differenced with

    def to_dict(self) -> dict:
        return {"name": self.name, "layer": self.layer, "kind": self.kind, "analytic": self.analytic,
                "numeric": self.numeric, "abs_error": self.abs_error, "rel_error": self.rel_error,
                "bound": self.bound, "step": self.step, "verdict": self.verdict, "passed": self.passed}


@dataclass(frozen=True)
class ArrayResult:
    """Entry-by-entry results for one parameter array, kept as columns; rows are made on demand."""

    layer: Layer
    kind: str  # W | b
    flat: Array  # flat indices into the array, (k,)
    analytic: Array
    numeric: Array
    rel_error: Array
    verdict: Array  # int codes into VERDICTS
    passed: Array  # bool
    bound: Array | None = None  # each entry's error bound (numeric and analytic rounding, truncation)
    step: Array | None = None  # each entry's step h (None when compared with another analytic value)

    @property
    def array(self) -> str:
        return f"{self.layer.letter}.{self.kind}"

    def name(self, i: int) -> str:
        f = int(self.flat[i])
        if self.kind == "W":
            return weight_name(self.layer, f // self.layer.n_in, f % self.layer.n_in)
        return f"b_{self.layer.letter}" if self.layer.shared_bias else f"b_{node_name(self.layer, f)}"

    def row(self, i: int) -> EntryRow:
        a, n = float(self.analytic[i]), float(self.numeric[i])
        return EntryRow(self.name(i), self.layer.letter, "weight" if self.kind == "W" else "bias", a, n, abs(a - n),
                        float(self.rel_error[i]), VERDICTS[int(self.verdict[i])], bool(self.passed[i]),
                        float(self.bound[i]) if self.bound is not None else 0.0,
                        float(self.step[i]) if self.step is not None else None)


@dataclass(frozen=True)
class DirectionRow:
    """One random unit direction u inside one parameter array: g . u against (C(+eps u) - C(-eps u)) / 2eps."""

    array: str  # A.W, A.b, ...
    layer: str
    index: int  # 1-based within the array
    size: int  # entries the direction moves
    analytic: float
    numeric: float
    abs_error: float
    rel_error: float
    verdict: str
    passed: bool
    bound: float = 0.0  # how far apart rounding and truncation alone can put the two values
    node: str | None = None  # a node check: the node whose incoming weights and bias moved together

    @property
    def name(self) -> str:
        return self.array if self.node else f"{self.array} dir {self.index}"

    def to_dict(self) -> dict:
        return {"array": self.array, "layer": self.layer, "index": self.index, "size": self.size,
                "node": self.node, "analytic": self.analytic, "numeric": self.numeric,
                "abs_error": self.abs_error, "rel_error": self.rel_error, "bound": self.bound,
                "verdict": self.verdict, "passed": self.passed}


@dataclass(frozen=True)
class LayerSummary:
    letter: str
    activation: str
    n_params: int
    n_checked: int  # entries checked one by one
    n_directions: int
    worst_rel: float | None  # over entries and directions that are not kinks
    worst_name: str | None
    counts: dict  # verdict -> number, entries and directions together
    failed: int

    def to_dict(self) -> dict:
        return {"layer": self.letter, "activation": self.activation, "params": self.n_params,
                "checked": self.n_checked, "directions": self.n_directions, "worst_rel_error": self.worst_rel,
                "worst": self.worst_name, "counts": dict(self.counts), "failed": self.failed}


@dataclass(frozen=True)
class UnitRow:
    """One registry entry (activation or loss) against central differences on a spread of inputs."""

    kind: str  # activation | loss | fused
    name: str  # e.g. sigmoid, squared_error (convention=mean), softmax + cross_entropy
    points: int
    worst_rel: float
    worst_abs: float
    worst_at: str  # the input where the worst error was found
    verdict: str
    passed: bool

    def to_dict(self) -> dict:
        return {"kind": self.kind, "name": self.name, "points": self.points, "worst_rel_error": self.worst_rel,
                "worst_abs_error": self.worst_abs, "worst_at": self.worst_at, "verdict": self.verdict,
                "passed": self.passed}


@dataclass(frozen=True)
class GradcheckReport:
    name: str
    source: str
    n_params: int
    n_selected: int  # parameters in scope (after --weight)
    n_samples: int
    n_samples_total: int
    mode: str  # entries | directional | entries+directional
    sampled: bool  # entries were sampled rather than all checked
    notes: tuple[str, ...]
    options: GradcheckOptions
    cost: float
    safety: float  # the safety factor on each entry's error bound (gradcheck.verdict.SAFETY)
    arrays: tuple[ArrayResult, ...]  # the entries checked, array by array
    directions: tuple[DirectionRow, ...]  # worst first
    layers: tuple[LayerSummary, ...]
    units: tuple[UnitRow, ...]  # empty unless asked for
    seconds: float
    against: str = "central differences"  # the oracle backprop is compared with ("PyTorch autograd")

    def _order(self, n: int | None = None) -> list[tuple[ArrayResult, int]]:
        """(array, index) of the n worst entries (all when None): failures, then inconclusive entries, then
        kinks, then by relative error."""
        if not self.arrays:
            return []
        which = np.concatenate([np.full(r.flat.size, i) for i, r in enumerate(self.arrays)])
        at = np.concatenate([np.arange(r.flat.size) for r in self.arrays])
        rel = np.concatenate([np.nan_to_num(r.rel_error, nan=np.inf) for r in self.arrays])
        kink = np.concatenate([r.verdict == KINK for r in self.arrays])
        unsure = np.concatenate([undecided(r.verdict) for r in self.arrays])
        passed = np.concatenate([r.passed for r in self.arrays])
        order = np.lexsort((-rel, ~kink, unsure, passed))[:n]
        return [(self.arrays[which[o]], int(at[o])) for o in order]

    def worst_entries(self, n: int | None = None) -> list[EntryRow]:
        """The n worst entries (all of them when n is None), as rows."""
        return [r.row(i) for r, i in self._order(n)]

    @functools.cached_property
    def entries(self) -> tuple[EntryRow, ...]:
        return tuple(self.worst_entries())

    @property
    def n_entries(self) -> int:
        return sum(r.flat.size for r in self.arrays)

    @property
    def failed_entries(self) -> list[EntryRow]:
        """Entries that fail: a band over the pass line, or not finite (inconclusive ones are apart)."""
        return [r.row(i) for r in self.arrays for i in np.flatnonzero(~r.passed & ~undecided(r.verdict))]

    @property
    def inconclusive_entries(self) -> list[EntryRow]:
        return [r.row(i) for r in self.arrays for i in np.flatnonzero(undecided(r.verdict))]

    @property
    def failed_directions(self) -> list[DirectionRow]:
        return [r for r in self.directions if not r.passed and r.verdict not in ("inconclusive", "kink")]

    @property
    def inconclusive_directions(self) -> list[DirectionRow]:
        return [r for r in self.directions if r.verdict in ("inconclusive", "kink")]

    @property
    def failed_units(self) -> list[UnitRow]:
        return [u for u in self.units if not u.passed and u.verdict != "inconclusive"]

    @property
    def inconclusive_units(self) -> list[UnitRow]:
        return [u for u in self.units if u.verdict == "inconclusive"]

    @property
    def failed(self) -> bool:
        return bool(self.failed_entries or self.failed_directions or self.failed_units)

    @property
    def inconclusive(self) -> bool:
        return bool(self.inconclusive_entries or self.inconclusive_directions or self.inconclusive_units)

    @property
    def passed(self) -> bool:
        """Every entry, direction and unit passed: nothing failed and nothing was inconclusive."""
        return not (self.failed or self.inconclusive)

    @property
    def verdict(self) -> str:
        """fail (something failed), inconclusive (nothing failed, something could not be checked) or pass."""
        return "fail" if self.failed else "inconclusive" if self.inconclusive else "pass"

    @property
    def exit_code(self) -> int:
        """0 pass, 1 fail, 3 inconclusive."""
        return exit_code(self.failed, self.inconclusive)

    @property
    def n_kinks(self) -> int:
        return int(sum(np.sum(r.verdict == KINK) for r in self.arrays)) + sum(r.verdict == "kink" for r in self.directions)

    @property
    def n_not_finite(self) -> int:
        return int(sum(np.sum(r.verdict == NOT_FINITE) for r in self.arrays)) + \
            sum(r.verdict == "not finite" for r in self.directions)

    def to_dict(self) -> dict:
        return {
            "command": "gradcheck", "name": self.name, "source": self.source, "against": self.against,
            "verdict": self.verdict,
            "passed": self.passed, "exit_code": self.exit_code, "mode": self.mode, "sampled": self.sampled,
            "notes": list(self.notes),
            "params": self.n_params, "selected": self.n_selected,
            "samples": {"used": self.n_samples, "total": self.n_samples_total},
            "options": self.options.to_dict(),
            "thresholds": {"good": GOOD, "ok": OK, "wrong": WRONG, "pass": self.options.tol},
            "cost": self.cost, "rule": RULE, "safety": self.safety,
            "checked": {"entries": self.n_entries, "directions": len(self.directions), "units": len(self.units)},
            "failed": {"entries": len(self.failed_entries), "directions": len(self.failed_directions),
                       "units": len(self.failed_units)},
            "inconclusive": {"entries": len(self.inconclusive_entries),
                             "directions": len(self.inconclusive_directions), "units": len(self.inconclusive_units)},
            "kinks": self.n_kinks,
            "layers": [s.to_dict() for s in self.layers],
            "entries": [r.to_dict() for r in self.entries],
            "directions": [r.to_dict() for r in self.directions],
            "units": [u.to_dict() for u in self.units],
            "seconds": self.seconds,
        }

