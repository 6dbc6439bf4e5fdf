"""gradcheck: backprop's gradients against central differences -> a GradcheckReport.

Everything runs in float64.  The numeric value of dC/dtheta is (C(theta + eps) - C(theta - eps)) / (2 eps),
with C the engine's mean cost, evaluated for real (no Taylor shortcut), but without redoing work that a
perturbation cannot change: moving W[l][j, k] by +-eps moves only column j of layer l's weighted sums, by
+-eps * a_in[:, k], so each perturbed copy is recomputed from there upward, many copies at once.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

import numpy as np

from bpcli.errors import BpcliError
from bpcli.gradcheck.numeric import (
    entry_moves, estimate, extended_moves, layer_moves, MOVES, QUICK, make_base, node_moves,
)
from bpcli.gradcheck.report import (
    ArrayResult, DirectionRow, GradcheckOptions, GradcheckReport, LayerSummary,
)
from bpcli.gradcheck.formula import formula_units
from bpcli.gradcheck.rounding import analytic_bounds
from bpcli.gradcheck.units import check_units
from bpcli.gradcheck.verdict import SAFETY, VERDICTS, judge_estimate, resolved_step, undecided
from bpcli.nn.model import Network, node_name

Array = np.ndarray

_DIR_BUDGET = 1 << 20  # elements of one chunk of random directions (8 MB)
# estimate_seconds' rates: per perturbed sample copy, per multiply-add, per activation or loss element
SECONDS_PER_COPY, SECONDS_PER_MAC, SECONDS_PER_ELEMENT = 1e-7, 3e-10, 2e-8


# --- selection -------------------------------------------------------------------------------


def _arrays(net: Network) -> list[tuple[int, str, str]]:
    """(layer index, 'W' or 'b', 'A.W') for every parameter array."""
    out = []
    for l, layer in enumerate(net.layers):
        out.append((l, "W", f"{layer.letter}.W"))
        if net.b[l] is not None:
            out.append((l, "b", f"{layer.letter}.b"))
    return out


def selection(net: Network, weights: tuple[str, ...]) -> dict[tuple[int, str], Array]:
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
          source: str = "", units: bool = False, progress: Callable[[int, int], None] | None = None
          ) -> GradcheckReport:
    """Compare backprop's gradient of the mean cost with central differences, per parameter.

    x: (m, n_in), y: (m, n_out).  The network is copied to float64; nothing is changed in place.
    progress(done, total) is called as entries and directions are checked (each one a unit of work).
    Overflow on the way is not warned about: it shows as a "not finite" verdict.
    """
    with np.errstate(all="ignore"):
        return _check(net, x, y, options or GradcheckOptions(), name, source, units, progress)


def _check(net: Network, x: Array, y: Array, opt: GradcheckOptions, name: str, source: str, units: bool,
           progress: Callable[[int, int], None] | None) -> GradcheckReport:
    from bpcli.nn.engine import backward, cost, forward

    t0 = time.perf_counter()
    opt.validate()
    net = net.astype(np.float64)
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    rng = np.random.default_rng(opt.seed)
    notes: list[str] = []

    m_total = x.shape[0]
    x, y = subset(x, y, opt, rng, notes)

    sel, do_entries, do_dirs, sample_entries, n_selected = _plan(net, opt, rng)
    if sample_entries:
        notes.append(f"{n_selected} parameters are more than the cap of {opt.cap}: checked a sample of "
                     f"{sum(v.size for v in sel.values())} entries from every array; --all checks every entry")
    if do_dirs:
        notes.append(f"directional check: {opt.directions} random unit direction(s) in every parameter array, "
                     f"each comparing the gradient's projection with a two-sided difference along it")

    y_hat, tape = forward(net, x)
    grads = backward(net, tape, y)
    base = make_base(net, x, y, tape, grads)
    abound = analytic_bounds(net, tape, y, grads)
    base_cost = cost(net, tape, y)
    extended_ok = net.n_params * x.shape[0] <= EXTENDED_LIMIT

    node_dirs = sample_entries and do_entries
    total = int(sum(v.size for v in sel.values())) * do_entries + len(sel) * opt.directions * do_dirs
    total += sum(net.layers[l].n_out for (l, k) in sel if k == "W") * node_dirs
    done = 0

    def tick(k: int) -> None:
        nonlocal done
        done += k
        if progress is not None:
            progress(done, total)

    arrays: list[ArrayResult] = []
    directions: list[DirectionRow] = []
    for (l, kind), flat in sel.items():
        layer = net.layers[l]
        g = grads.dW[l] if kind == "W" else grads.db[l]
        arr = net.W[l] if kind == "W" else net.b[l]
        ab = (abound[l][0] if kind == "W" else abound[l][1]).ravel()
        if do_entries:
            ana = g.ravel()[flat]
            num, bound, rel, code, passed, step = _entries(base, l, kind, flat, ana, ab[flat], arr.ravel()[flat], opt,
                                                     extended_ok, tick)
            arrays.append(ArrayResult(layer, kind, flat, ana, num, rel, code, passed, bound, step))
        if do_dirs:
            ana, num, bound, rel, code, passed = _along_directions(base, l, kind, flat, g, ab, opt.directions, rng,
                                                                   opt, tick)
            for i in range(opt.directions):
                directions.append(DirectionRow(f"{layer.letter}.{kind}", layer.letter, i + 1, int(flat.size),
                                               float(ana[i]), float(num[i]), float(abs(ana[i] - num[i])),
                                               float(rel[i]), VERDICTS[code[i]], bool(passed[i]), float(bound[i])))
        if node_dirs and kind == "W":
            directions += _node_directions(base, l, grads, abound, opt, tick)
    if node_dirs:
        notes.append("node check: every node's incoming weights and bias moved together along their gradient "
                     "(one direction per node), so a derivative wrong for one node fails whatever the sample")

    unit_rows = tuple(check_units(opt.eps, opt.tol, opt.seed)) if units else ()
    if units:  # the config's own formulas, on a grid and at this network's z values
        unit_rows += tuple(formula_units(net, tape, y, opt.eps, opt.tol))
    directions.sort(key=lambda r: (r.passed, r.verdict in ("inconclusive", "kink"), -_key(r.rel_error)))
    mode = "+".join(p for p, on in (("entries", do_entries), ("directional", do_dirs)) if on)
    return GradcheckReport(
        name, source, net.n_params, n_selected, x.shape[0], m_total, mode, sample_entries, tuple(notes), opt,
        base_cost, SAFETY, tuple(arrays), tuple(directions), layer_summaries(net, sel, arrays, directions),
        unit_rows, time.perf_counter() - t0,
    )


def subset(x: Array, y: Array, opt: GradcheckOptions, rng: np.random.Generator,
            notes: list[str]) -> tuple[Array, Array]:
    """The samples to check on: all of them, or opt.samples of them drawn at random (said in `notes`)."""
    m_total = x.shape[0]
    if m_total == 0:
        raise BpcliError("no samples to check the gradient on")
    if opt.samples is not None and opt.samples < m_total:
        idx = np.sort(rng.choice(m_total, size=opt.samples, replace=False))
        x, y = x[idx], y[idx]
        notes.append(f"{opt.samples} of {m_total} samples, chosen at random (seed {opt.seed}); "
                     f"--n-samples changes this")
    return x, y


def estimate_seconds(net: Network, m: int, options: GradcheckOptions) -> tuple[int, float]:
    """(checks, seconds): how many entries and directions `check` will difference, and about how long it takes.

    From the network's size: a perturbed copy of W[l][j, k] is recomputed from layer l upward for every sample,
    two copies per entry (or per direction), at SECONDS_PER_MAC seconds per multiply-add (docs/gradcheck.md gives
    the networks it was measured on and how close it came).
    """
    opt = options
    m = m if opt.samples is None else min(m, opt.samples)
    sel, do_entries, do_dirs, _, _ = _plan(net, opt, np.random.default_rng(opt.seed))
    checks, copies, macs, elems = 0, 0.0, 0.0, 0.0
    for (l, kind), flat in sel.items():
        # an entry changes one node: a rank-one update into layer l + 1, full products from layer l + 2 on,
        # and every activation above (plus the loss) per copy; a direction moves the whole layer
        mac = sum(lay.n_in * lay.n_out for lay in net.layers[l + 2:]) + sum(lay.n_out for lay in net.layers[l + 1:l + 2])
        elem = 1 + sum(lay.n_out for lay in net.layers[l + 1:])
        if do_entries:
            checks += flat.size
            copies += 2.0 * m * flat.size
            macs += 2.0 * m * flat.size * mac
            elems += 2.0 * m * flat.size * elem
        if do_dirs:
            checks += opt.directions
            copies += 2.0 * m * opt.directions
            macs += 2.0 * m * opt.directions * sum(lay.n_in * lay.n_out for lay in net.layers[l:])
            elems += 2.0 * m * opt.directions * sum(lay.n_out for lay in net.layers[l:])
    return checks, copies * SECONDS_PER_COPY + macs * SECONDS_PER_MAC + elems * SECONDS_PER_ELEMENT


def _plan(net: Network, opt: GradcheckOptions, rng: np.random.Generator):
    """(selection, do_entries, do_dirs, entries sampled, parameters in scope) for these options."""
    sel = selection(net, tuple(opt.weights))
    n_selected = int(sum(v.size for v in sel.values()))
    big = n_selected > opt.cap
    if opt.mode == "auto":
        do_entries, do_dirs = True, big and not opt.all_entries
    else:
        do_entries, do_dirs = opt.mode == "entries", opt.mode == "directional"
    sample_entries = do_entries and big and not opt.all_entries
    if sample_entries:
        sel = _sample_selection(sel, opt.sample_size, rng)
    return sel, do_entries, do_dirs, sample_entries, n_selected


# Candidate steps, in units of --eps, tried on an entry the first step left undecided (larger ones lower the
# rounding, smaller ones the truncation and step off a kink); the one with the smallest error bound is kept.
CANDIDATES = (10.0, 100.0, 1000.0, 0.1, 0.01, 0.001)
# An entry still undecided is differenced in numpy's longdouble when parameters * samples is at most this.
EXTENDED_LIMIT = 20_000


def _entries(base, l: int, kind: str, flat: Array, ana: Array, ab: Array, w: Array, opt: GradcheckOptions,
             extended_ok: bool, tick):
    """(numeric, bound, rel, code, passed) of the entries `flat` of W[l] or b[l]: the step --eps first, then,
    for the entries left undecided, the candidate steps (the smallest bound wins) and extended precision."""
    return _refined(lambda i, h, mv=MOVES: entry_moves(base, l, kind, flat[i], h, tick if i.size == flat.size else None,
                                                      mv),
                    (lambda i, h: extended_moves(base, l, kind, flat[i], h)) if extended_ok else None,
                    ana, ab, lambda i, h: resolved_step(w[i], h), opt)


def _refined(moves, extended, ana: Array, ab: Array, resolved, opt: GradcheckOptions):
    """Judge P values with the step --eps; re-difference the undecided ones with each candidate step (and, when
    `extended` is given, those still undecided in longdouble), keeping per value the first decided result
    (else the smallest bound).

    moves(i, h, moves=MOVES) -> Moves of the values i (indices) with steps h; resolved(i, h) -> bool per value.
    Returns (numeric, bound, rel, code, passed, step): step, the h each value's difference used."""
    allp = np.arange(ana.size)
    h = np.full(ana.size, opt.eps)
    # the first pass: two moves per value, +h and +h/2 (one-sided, extrapolated); where that cannot decide, the
    # four moves (both sides) at the same step, then the candidate steps
    out = [np.array(v) for v in judge_estimate(ana, estimate(moves(allp, h, QUICK)), ab, opt.tol,
                                               resolved(allp, h))] + [h.copy()]
    todo = np.flatnonzero(undecided(out[3]))
    rounds = [(moves, c) for c in (1.0, *CANDIDATES)] + ([(extended, c) for c in (1.0, 10.0, 100.0, 1000.0)]
                                                         if extended is not None else [])
    for fn, c in rounds:
        if not todo.size:
            break
        hc = np.full(todo.size, opt.eps * c)
        new = (*judge_estimate(ana[todo], estimate(fn(todo, hc)), ab[todo], opt.tol, resolved(todo, hc)), hc)
        better = ~undecided(new[3]) | (new[1] < out[1][todo])  # decided first, else the smaller bound
        for v, nv in zip(out, new):
            v[todo] = np.where(better, nv, v[todo])
        todo = todo[undecided(out[3][todo])]
    return out


def _along_directions(base, l: int, kind: str, flat: Array, g: Array, ab: Array, D: int,
                      rng: np.random.Generator, opt: GradcheckOptions, tick):
    """(g . u, numeric, bound, rel, code, passed) for D random unit directions u over the entries `flat` of one
    array.  The directions are drawn and differenced a few at a time, so memory stays bounded whatever D is; the
    random stream is the same as drawing all D at once.  A direction is resolved when float64 can take the step
    eps * u_k at every entry it moves; its analytic bound is sum_k |u_k| times each entry's."""
    net = base.net
    arr = net.W[l] if kind == "W" else net.b[l]
    w = arr.ravel()[flat]
    m = base.x.shape[0]
    width = max(lay.n_out for lay in net.layers[l:])
    per = max(1, min(_DIR_BUDGET // max(arr.size, 1), _DIR_BUDGET // (4 * m * width)))
    outs = []
    for s in range(0, D, per):
        c = min(per, D - s)
        u = rng.standard_normal((c, flat.size))
        u /= np.linalg.norm(u, axis=1, keepdims=True)
        U = np.zeros((c, arr.size))
        U[:, flat] = u
        if kind == "W":
            dZ = np.matmul(base.tape[l].a_in[None], U.reshape((c,) + arr.shape).transpose(0, 2, 1))  # (c, m, n)
        elif net.layers[l].shared_bias:
            dZ = np.broadcast_to(U[:, :, None], (c, m, net.layers[l].n_out)).copy()
        else:
            dZ = np.broadcast_to(U[:, None, :], (c, m, arr.size)).copy()
        ana = U @ g.ravel()  # the gradient's projection on each direction
        resolved = np.all(resolved_step(w, opt.eps * u) | (u == 0), axis=1)
        est = estimate(layer_moves(base, l, dZ, opt.eps))
        outs.append((ana, *judge_estimate(ana, est, np.abs(U) @ ab, opt.tol, resolved)))
        tick(c)
    return tuple(np.concatenate([o[i] for o in outs]) for i in range(6))


def _node_directions(base, l: int, grads, abound, opt: GradcheckOptions, tick) -> list[DirectionRow]:
    """Every node of layer l: its incoming weights and bias moved together along their gradient u = g / |g|
    (all ones, normalised, where g is 0): two cost evaluations per node, the analytic value |g|."""
    net = base.net
    layer = net.layers[l]
    gW, aW = grads.dW[l], abound[l][0]
    with_b = net.b[l] is not None and not layer.shared_bias
    G = np.concatenate([gW, grads.db[l][:, None]], axis=1) if with_b else gW
    A = np.concatenate([aW, abound[l][1][:, None]], axis=1) if with_b else aW
    W = np.concatenate([net.W[l], net.b[l][:, None]], axis=1) if with_b else net.W[l]
    norm = np.linalg.norm(G, axis=1, keepdims=True)
    U = np.where(norm > 0, G / np.where(norm > 0, norm, 1.0), 1.0 / np.sqrt(G.shape[1]))
    v = U[:, :layer.n_in] @ base.tape[l].a_in.T  # (n_out, m): how z_j moves per unit step along u_j
    if with_b:
        v += U[:, -1:]
    ana = np.sum(U * G, axis=1)
    js = np.arange(layer.n_out)
    num, bound, rel, code, passed, _ = _refined(
        lambda i, h, mv=MOVES: node_moves(base, l, js[i], v[i], h, None, mv), None, ana, np.sum(np.abs(U) * A, axis=1),
        lambda i, h: np.all(resolved_step(W[i], h[:, None] * U[i]) | (U[i] == 0), axis=1), opt)
    tick(layer.n_out)
    return [DirectionRow(f"{layer.letter} node {node_name(layer, j)}", layer.letter, j + 1, int(U.shape[1]),
                         float(ana[j]), float(num[j]), float(abs(ana[j] - num[j])), float(rel[j]),
                         VERDICTS[int(code[j])], bool(passed[j]), float(bound[j]), node=node_name(layer, j))
            for j in range(layer.n_out)]


def _key(rel: float) -> float:
    return rel if math.isfinite(rel) else math.inf


def _sample_selection(sel: dict, budget: int, rng: np.random.Generator) -> dict:
    """A seeded sample of entries from every array, in proportion to its size, at least 16 (or all) each."""
    total = sum(v.size for v in sel.values())
    out = {}
    for key, flat in sel.items():
        k = min(flat.size, max(16, round(budget * flat.size / total)))
        out[key] = np.sort(rng.choice(flat, size=k, replace=False)) if k < flat.size else flat
    return out


def layer_summaries(net: Network, sel: dict, arrays: list[ArrayResult],
                     directions: list[DirectionRow]) -> tuple[LayerSummary, ...]:
    """Per layer: entries and directions checked, verdict counts, failures (inconclusive ones apart) and the
    worst error that is neither a kink nor inconclusive."""
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
            excused = undecided(r.verdict)
            rel = np.where(excused, -1.0, np.nan_to_num(r.rel_error, nan=np.inf))
            if rel.size and rel.max() >= 0 and (worst is None or rel.max() > worst):
                i = int(np.argmax(rel))
                worst, worst_name = float(rel[i]), r.name(i)
        for d in ds:
            if d.verdict not in ("kink", "inconclusive") and (worst is None or _key(d.rel_error) > worst):
                worst, worst_name = _key(d.rel_error), d.name
        failed = int(sum(np.sum(~r.passed & ~undecided(r.verdict)) for r in rs)) + \
            sum(not d.passed and d.verdict not in ("inconclusive", "kink") for d in ds)
        out.append(LayerSummary(layer.letter, layer.activation.name, layer.n_params,
                                int(sum(r.flat.size for r in rs)), len(ds), worst, worst_name, counts, failed))
    return tuple(out)



def budget_needed(seconds: float, budget: float) -> int | None:
    """None when a check estimated at `seconds` (estimate_seconds') fits in `budget` seconds; else a budget that
    would let it start (the estimate with half again for its error)."""
    return None if seconds <= budget else max(int(budget) + 1, math.ceil(seconds * 1.5))


def duration_text(seconds: float) -> str:
    """'3 days', '5 hours', '12 minutes' or '40 s'."""
    for unit, size in (("days", 86400), ("hours", 3600), ("minutes", 60)):
        if seconds >= 2 * size:
            return f"{seconds / size:.0f} {unit}"
    return f"{seconds:.0f} s"
