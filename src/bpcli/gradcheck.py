"""gradcheck: backprop's gradients against central differences -> a GradcheckReport.

Everything runs in float64.  The numeric value of dC/dtheta is (C(theta + eps) - C(theta - eps)) / (2 eps),
with C the engine's mean cost, evaluated for real (no Taylor shortcut), but without redoing work that a
perturbation cannot change: moving W[l][j, k] by +-eps moves only column j of layer l's weighted sums, by
+-eps * a_in[:, k], so each perturbed copy is recomputed from there upward, many copies at once.
"""

from __future__ import annotations

import math
import time

import numpy as np

from bpcli.errors import BpcliError
# the pieces live in their own modules; they are re-exported because they are this module's API
from bpcli.gradcheck_numeric import _Base, _numeric_directions, _numeric_entries, naive_numeric_gradient  # noqa: F401
from bpcli.gradcheck_report import (  # noqa: F401
    DEFAULT_CAP,
    DEFAULT_DIRECTIONS,
    DEFAULT_EPS,
    DEFAULT_SAMPLE,
    DEFAULT_SAMPLES,
    DEFAULT_TOL,
    ArrayResult,
    DirectionRow,
    EntryRow,
    GradcheckOptions,
    GradcheckReport,
    LayerSummary,
    UnitRow,
)
from bpcli.gradcheck_units import check_units
from bpcli.gradcheck_verdict import (  # noqa: F401
    FLOOR_FACTOR,
    GOOD,
    MACHINE_EPS,
    OK,
    VERDICTS,
    WRONG,
    relative_error,
    rounding_noise,
    verdict_codes,
    verdict_of,
)
from bpcli.model import Network

Array = np.ndarray


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
    from bpcli.engine import backward, cost, forward

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
