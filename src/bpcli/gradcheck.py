"""gradcheck: backprop's gradients against central differences -> a GradcheckReport.

Everything runs in float64.  The numeric value of dC/dtheta is (C(theta + eps) - C(theta - eps)) / (2 eps),
with C the engine's mean cost, evaluated for real (no Taylor shortcut), but without redoing work that a
perturbation cannot change: moving W[l][j, k] by +-eps moves only column j of layer l's weighted sums, by
+-eps * a_in[:, k], so each perturbed copy is recomputed from there upward, many copies at once.
"""

from __future__ import annotations

import functools
import math
import time
from dataclasses import dataclass

import numpy as np

from bpcli.errors import BpcliError
from bpcli.model import Layer, Network, node_name, weight_name

Array = np.ndarray

# Verdict bands of the relative error (CS231n's rule of thumb for float64 gradient checks).
GOOD = 1e-7  # below: good
OK = 1e-4  # below: ok; from here to WRONG: suspicious
WRONG = 1e-2  # above: wrong
VERDICTS = ("good", "ok", "suspicious", "wrong", "kink")

DEFAULT_EPS = 1e-5
DEFAULT_TOL = OK
DEFAULT_CAP = 5000  # above this many parameters, entries are sampled unless --all
DEFAULT_SAMPLE = 1000  # entries sampled above the cap
DEFAULT_DIRECTIONS = 4  # random directions per parameter array
DEFAULT_SAMPLES = 64  # data samples used unless --samples says otherwise
# Relative errors divide by max(|a|, |n|, floor).  The floor is FLOOR_FACTOR times the rounding noise that a
# central difference of this cost can carry (machine epsilon * the cost's scale / eps): gradients smaller than
# that are judged by their absolute error, since their last digits are noise; a trained network with a tiny
# cost gets a tiny floor, so gradcheck stays sharp near a minimum.
FLOOR_FACTOR = 1e7
MACHINE_EPS = float(np.finfo(np.float64).eps)
_BUDGET = 1 << 14  # elements per batched array (128 KB): a chunk and its temporaries stay in cache


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
    floor: float | None = None  # None: FLOOR_FACTOR * the estimated rounding noise

    def validate(self) -> None:
        """BpcliError naming the option when a value cannot work."""
        if not (isinstance(self.eps, (int, float)) and math.isfinite(self.eps) and 0 < self.eps <= 0.1):
            raise BpcliError(f"--eps: must be a number above 0 and at most 0.1, found {self.eps}")
        if not (math.isfinite(self.tol) and 0 < self.tol < 1):
            raise BpcliError(f"--tol: must be a number above 0 and below 1, found {self.tol}")
        if self.samples is not None and self.samples < 1:
            raise BpcliError(f"--samples: must be at least 1, found {self.samples}")
        if self.mode not in ("auto", "entries", "directional"):
            raise BpcliError(f"mode: expected 'auto', 'entries' or 'directional', found {self.mode!r}")
        if self.directions < 1:
            raise BpcliError(f"--directions: must be at least 1, found {self.directions}")
        if self.seed < 0:
            raise BpcliError(f"--seed: must be 0 or more, found {self.seed}")

    def to_dict(self) -> dict:
        return {"eps": self.eps, "tol": self.tol, "samples": self.samples, "mode": self.mode,
                "all": self.all_entries, "cap": self.cap, "sample_size": self.sample_size,
                "directions": self.directions, "weights": list(self.weights), "seed": self.seed,
                "floor": self.floor}


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
    verdict: str  # good | ok | suspicious | wrong | kink
    passed: bool

    def to_dict(self) -> dict:
        return {"name": self.name, "layer": self.layer, "kind": self.kind, "analytic": self.analytic,
                "numeric": self.numeric, "abs_error": self.abs_error, "rel_error": self.rel_error,
                "verdict": self.verdict, "passed": self.passed}


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

    @property
    def array(self) -> str:
        return f"{self.layer.letter}.{self.kind}"

    def name(self, i: int) -> str:
        f = int(self.flat[i])
        if self.kind == "W":
            return weight_name(self.layer, f // self.layer.n_in, f % self.layer.n_in)
        return f"b_{self.layer.letter}" if self.layer.bias == "shared" else f"b_{node_name(self.layer, f)}"

    def row(self, i: int) -> EntryRow:
        a, n = float(self.analytic[i]), float(self.numeric[i])
        return EntryRow(self.name(i), self.layer.letter, "weight" if self.kind == "W" else "bias", a, n, abs(a - n),
                        float(self.rel_error[i]), VERDICTS[int(self.verdict[i])], bool(self.passed[i]))


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

    @property
    def name(self) -> str:
        return f"{self.array} dir {self.index}"

    def to_dict(self) -> dict:
        return {"array": self.array, "layer": self.layer, "index": self.index, "size": self.size,
                "analytic": self.analytic, "numeric": self.numeric, "abs_error": self.abs_error,
                "rel_error": self.rel_error, "verdict": self.verdict, "passed": self.passed}


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
    floor: float  # the relative-error floor used
    arrays: tuple[ArrayResult, ...]  # the entries checked, array by array
    directions: tuple[DirectionRow, ...]  # worst first
    layers: tuple[LayerSummary, ...]
    units: tuple[UnitRow, ...]  # empty unless asked for
    seconds: float

    def _order(self, n: int | None = None) -> list[tuple[ArrayResult, int]]:
        """(array, index) of the n worst entries (all when None): failures, then kinks, then by relative error."""
        if not self.arrays:
            return []
        which = np.concatenate([np.full(r.flat.size, i) for i, r in enumerate(self.arrays)])
        at = np.concatenate([np.arange(r.flat.size) for r in self.arrays])
        rel = np.concatenate([np.nan_to_num(r.rel_error, nan=np.inf) for r in self.arrays])
        kink = np.concatenate([r.verdict == VERDICTS.index("kink") for r in self.arrays])
        passed = np.concatenate([r.passed for r in self.arrays])
        order = np.lexsort((-rel, ~kink, passed))[:n]
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
        return [r.row(i) for r in self.arrays for i in np.flatnonzero(~r.passed)]

    @property
    def failed_directions(self) -> list[DirectionRow]:
        return [r for r in self.directions if not r.passed]

    @property
    def failed_units(self) -> list[UnitRow]:
        return [u for u in self.units if not u.passed]

    @property
    def passed(self) -> bool:
        return not (self.failed_entries or self.failed_directions or self.failed_units)

    @property
    def verdict(self) -> str:
        return "pass" if self.passed else "fail"

    @property
    def n_kinks(self) -> int:
        kink = VERDICTS.index("kink")
        return int(sum(np.sum(r.verdict == kink) for r in self.arrays)) + sum(r.verdict == "kink" for r in self.directions)

    def to_dict(self) -> dict:
        return {
            "command": "gradcheck", "name": self.name, "source": self.source, "verdict": self.verdict,
            "passed": self.passed, "mode": self.mode, "sampled": self.sampled, "notes": list(self.notes),
            "params": self.n_params, "selected": self.n_selected,
            "samples": {"used": self.n_samples, "total": self.n_samples_total},
            "options": self.options.to_dict(),
            "thresholds": {"good": GOOD, "ok": OK, "wrong": WRONG, "pass": self.options.tol},
            "cost": self.cost, "floor": self.floor,
            "checked": {"entries": self.n_entries, "directions": len(self.directions), "units": len(self.units)},
            "failed": {"entries": len(self.failed_entries), "directions": len(self.failed_directions),
                       "units": len(self.failed_units)},
            "kinks": self.n_kinks,
            "layers": [s.to_dict() for s in self.layers],
            "entries": [r.to_dict() for r in self.entries],
            "directions": [r.to_dict() for r in self.directions],
            "units": [u.to_dict() for u in self.units],
            "seconds": self.seconds,
        }


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


# --- errors and verdicts -----------------------------------------------------------------


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
    for l2 in range(l, len(net.layers)):
        act = net.layers[l2].activation
        if act.kinks:
            kink |= _crossing(Z[:, :P], Z[:, P:], base.zT[l2][:, None, :], act.kinks)
        aT = act.fn(Z.reshape(-1, B * m).T).T  # the registry sees (copies * m, n): one row per sample
        if l2 + 1 < len(net.layers):
            Z = net.W[l2 + 1] @ aT
            if net.b[l2 + 1] is not None:
                Z += net.b[l2 + 1][:, None]
            Z = Z.reshape(-1, B, m)
    return _loss_rows(base, aT.reshape(-1, B, m), kink, Z)


def _loss_rows(base: _Base, Y: Array, kink: Array, Z: Array | None = None) -> tuple[Array, Array]:
    """Per-sample losses (B, m) of B perturbed outputs Y: (n_out, B, m); kinks of the loss flagged.

    Z: the output layer's weighted sums behind Y, (n_out, B, m); a fused pair's loss is computed from them
    (engine.sample_losses), as training computes it.
    """
    from bpcli.engine import sample_losses

    n, B, m = Y.shape
    loss = base.net.loss
    if loss.kinks:
        P = B // 2
        yT = base.yT[:, None, :]
        kink = kink | _crossing(Y[:, :P] - yT, Y[:, P:] - yT, base.aT[-1][:, None, :] - yT, loss.kinks)
    Zr = None if Z is None else Z.reshape(n, B * m).T
    L = sample_losses(base.net, Zr, Y.reshape(n, B * m).T, base.y_rows(B))
    return L.reshape(B, m), kink


def _chunks(n: int, per: int):
    per = max(1, per)
    for s in range(0, n, per):
        yield slice(s, min(n, s + per))


def _pair(plus: Array, minus: Array) -> Array:
    """The +eps copies of a chunk followed by its -eps copies, along the first axis."""
    return np.concatenate([plus, minus])


def _numeric_entries(base: _Base, l: int, kind: str, flat: Array, eps: float) -> tuple[Array, Array]:
    """Central differences of C for the entries `flat` (flat indices) of W[l] or b[l]: (numeric, kink).

    Entry p moves one weighted sum, z_j of layer l (j = js[p]), by +-eps * a_in[:, k] (a weight w_jk) or
    +-eps (a bias b_j).  With an elementwise activation only a_j changes, so the layer above gets the
    rank-one update z' = z + W[l+1][:, j] * (a'_j - a_j); from there on every copy runs in full.
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
    if kind == "b" and layer.bias == "shared":
        # A shared bias moves every weighted sum of the layer.
        L, k = _losses_from(base, l, np.stack([z0 + eps, z0 - eps], axis=1))
        out[:] = np.mean(L[0] - L[1]) / (2 * eps)
        kink[:] = k
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


# --- selection -------------------------------------------------------------------------------


def _arrays(net: Network) -> list[tuple[int, str, str]]:
    """(layer index, 'W' or 'b', 'A.W') for every parameter array."""
    out = []
    for l, layer in enumerate(net.layers):
        out.append((l, "W", f"{layer.letter}.W"))
        if net.b[l] is not None:
            out.append((l, "b", f"{layer.letter}.b"))
    return out


def _selection(net: Network, weights: tuple[str, ...]) -> dict[tuple[int, str], Array]:
    """Flat indices in scope per array: everything, or the parameters named by --weight."""
    if not weights:
        return {(l, k): np.arange((net.W[l] if k == "W" else net.b[l]).size) for l, k, _ in _arrays(net)}
    chosen: dict[tuple[int, str], set[int]] = {}
    for w in weights:
        ref = net.resolve(w)
        arr = net.W[ref.layer] if ref.kind == "W" else net.b[ref.layer]
        chosen.setdefault((ref.layer, ref.kind), set()).add(int(np.ravel_multi_index(ref.index, arr.shape)))
    return {key: np.array(sorted(v)) for key, v in sorted(chosen.items())}


# --- the check -------------------------------------------------------------------------------


def check(net: Network, x: Array, y: Array, options: GradcheckOptions | None = None, name: str = "",
          source: str = "", units: bool = False) -> GradcheckReport:
    """Compare backprop's gradient of the mean cost with central differences, per parameter.

    x: (m, n_in), y: (m, n_out).  The network is copied to float64; nothing is changed in place.
    """
    from bpcli.engine import backward, cost, forward, sample_losses

    t0 = time.perf_counter()
    opt = options or GradcheckOptions()
    opt.validate()
    net = net.astype(np.float64)
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    rng = np.random.default_rng(opt.seed)
    notes: list[str] = []

    m_total = x.shape[0]
    if m_total == 0:
        raise BpcliError("no samples to check the gradient on")
    if opt.samples is not None and opt.samples < m_total:
        idx = np.sort(rng.choice(m_total, size=opt.samples, replace=False))
        x, y = x[idx], y[idx]
        notes.append(f"{opt.samples} of {m_total} samples, chosen at random (seed {opt.seed}); "
                     f"--samples changes this")

    sel = _selection(net, tuple(opt.weights))
    n_selected = int(sum(v.size for v in sel.values()))
    big = n_selected > opt.cap
    if opt.mode == "auto":
        do_entries, do_dirs = True, big and not opt.all_entries
    else:
        do_entries, do_dirs = opt.mode == "entries", opt.mode == "directional"
    sample_entries = do_entries and big and not opt.all_entries
    if sample_entries:
        sel = _sample_selection(sel, opt.sample_size, rng)
        notes.append(f"{n_selected} parameters are more than the cap of {opt.cap}: checked a sample of "
                     f"{sum(v.size for v in sel.values())} entries from every array; --all checks every entry")
    if do_dirs:
        notes.append(f"directional check: {opt.directions} random unit direction(s) in every parameter array, "
                     f"each comparing the gradient's projection with a two-sided difference along it")

    y_hat, tape = forward(net, x)
    grads = backward(net, tape, y)
    base = _Base(net, np.ascontiguousarray(x.T), np.ascontiguousarray(y.T), [np.ascontiguousarray(t.z.T) for t in tape],
                 [np.ascontiguousarray(t.a_out.T) for t in tape])
    base_cost = cost(net, tape, y)
    floor = opt.floor if opt.floor is not None else FLOOR_FACTOR * rounding_noise(_cost_scale(net, tape, grads, y), opt.eps)

    arrays: list[ArrayResult] = []
    directions: list[DirectionRow] = []
    for (l, kind), flat in sel.items():
        layer = net.layers[l]
        g = grads.dW[l] if kind == "W" else grads.db[l]
        if do_entries:
            num, kink = _numeric_entries(base, l, kind, flat, opt.eps)
            ana = g.ravel()[flat]
            rel = relative_error(ana, num, floor)
            code, passed = verdict_codes(rel, kink, opt.tol)
            arrays.append(ArrayResult(layer, kind, flat, ana, num, rel, code, passed))
        if do_dirs:
            arr = net.W[l] if kind == "W" else net.b[l]
            U = np.zeros((opt.directions, arr.size))
            U[:, flat] = rng.standard_normal((opt.directions, flat.size))
            U /= np.linalg.norm(U, axis=1, keepdims=True)
            num, kink = _numeric_directions(base, l, kind, U.reshape((opt.directions,) + arr.shape), opt.eps)
            ana = U @ g.ravel()  # the gradient's projection on each direction
            rel = relative_error(ana, num, floor)
            code, passed = verdict_codes(rel, kink, opt.tol)
            for i in range(opt.directions):
                directions.append(DirectionRow(f"{layer.letter}.{kind}", layer.letter, i + 1, int(flat.size),
                                               float(ana[i]), float(num[i]), float(abs(ana[i] - num[i])),
                                               float(rel[i]), VERDICTS[code[i]], bool(passed[i])))

    unit_rows = tuple(check_units(opt.eps, opt.tol, opt.floor, opt.seed)) if units else ()
    directions.sort(key=lambda r: (r.passed, r.verdict != "kink", -_key(r.rel_error)))
    mode = "+".join(p for p, on in (("entries", do_entries), ("directional", do_dirs)) if on)
    return GradcheckReport(
        name, source, net.n_params, n_selected, x.shape[0], m_total, mode, sample_entries, tuple(notes), opt,
        base_cost, floor, tuple(arrays), tuple(directions), _layer_summaries(net, sel, arrays, directions),
        unit_rows, time.perf_counter() - t0,
    )


def _key(rel: float) -> float:
    return rel if math.isfinite(rel) else math.inf


def _cost_scale(net: Network, tape, grads, y: Array) -> float:
    """The size of the numbers whose rounding reaches the cost: |L_i| plus |dL_i/dz * z| over every layer,
    averaged over the samples (a first-order forward error bound, in units of machine epsilon)."""
    from bpcli.engine import sample_losses

    L = sample_losses(net, tape[-1].z, tape[-1].a_out, y)
    s = np.abs(L) + sum(np.sum(np.abs(dz * t.z), axis=1) for dz, t in zip(grads.dz, tape))
    return float(np.mean(s)) or 1.0


def _sample_selection(sel: dict, budget: int, rng: np.random.Generator) -> dict:
    """A seeded sample of entries from every array, in proportion to its size, at least 16 (or all) each."""
    total = sum(v.size for v in sel.values())
    out = {}
    for key, flat in sel.items():
        k = min(flat.size, max(16, round(budget * flat.size / total)))
        out[key] = np.sort(rng.choice(flat, size=k, replace=False)) if k < flat.size else flat
    return out


def _layer_summaries(net: Network, sel: dict, arrays: list[ArrayResult],
                     directions: list[DirectionRow]) -> tuple[LayerSummary, ...]:
    """Per layer: entries and directions checked, verdict counts, failures and the worst non-kink error."""
    kink = VERDICTS.index("kink")
    out = []
    for l, layer in enumerate(net.layers):
        if not any(key[0] == l for key in sel):
            continue
        rs = [r for r in arrays if r.layer.letter == layer.letter]
        ds = [d for d in directions if d.layer == layer.letter]
        counts = {v: 0 for v in VERDICTS}
        for r in rs:
            for code, n in zip(*np.unique(r.verdict, return_counts=True)):
                counts[VERDICTS[code]] += int(n)
        for d in ds:
            counts[d.verdict] += 1
        worst, worst_name = None, None
        for r in rs:
            rel = np.where(r.verdict == kink, -1.0, np.nan_to_num(r.rel_error, nan=np.inf))
            if rel.size and rel.max() >= 0 and (worst is None or rel.max() > worst):
                i = int(np.argmax(rel))
                worst, worst_name = float(rel[i]), r.name(i)
        for d in ds:
            if d.verdict != "kink" and (worst is None or _key(d.rel_error) > worst):
                worst, worst_name = _key(d.rel_error), d.name
        failed = int(sum(np.sum(~r.passed) for r in rs)) + sum(not d.passed for d in ds)
        out.append(LayerSummary(layer.letter, layer.activation.name, layer.n_params,
                                int(sum(r.flat.size for r in rs)), len(ds), worst, worst_name, counts, failed))
    return tuple(out)


# check_units lives in its own module; imported last, once everything it uses from here exists
from bpcli.gradcheck_units import check_units  # noqa: E402,F401
