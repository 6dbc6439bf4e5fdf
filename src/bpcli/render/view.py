"""bpcli view: the learning page's data, laid out from the numbers explain.learning computes for each kept epoch.

The page's JavaScript only draws: weights, activations, heatmap levels, curve points and every number of the
chain-rule panel come from here, the panel's from the very Explanation.to_dict() that `explain --json` prints.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bpcli.explain.learning import EpochState, Learning, Plane, config_learning, epoch_states, input_plane, run_learning
from bpcli.explain.result import Explanation
from bpcli.nn.model import Network
from bpcli.render.numbers import fmt

BUDGET = 3_000_000  # bytes the whole page may take
MAX_EPOCHS = 120  # never more epochs than this on the slider, however small they are
MAX_SAMPLES = 8  # training samples the sample selector offers (evenly spread when there are more)
GRID = 24  # heatmap cells per side for two-input data
LEVELS = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz-_"  # one character per colour level
PAGE_FIXED = 60_000  # the page's HTML, CSS and JavaScript, with room to spare
BOUNDED = {"sigmoid": (0.0, 1.0), "softmax": (0.0, 1.0), "tanh": (-1.0, 1.0), "softsign": (-1.0, 1.0)}

Array = np.ndarray


def epochs_to_embed(kept: list[int], per_epoch: int, fixed: int, budget: int = BUDGET,
                    cap: int = MAX_EPOCHS) -> list[int]:
    """The kept epochs the page embeds: all of them when they fit in `budget` bytes (each epoch costing
    `per_epoch`, the rest of the page `fixed`) and number at most `cap`; else as many as fit, evenly spread,
    the first and the last always among them."""
    if not kept:
        return []
    room = max((budget - fixed) // max(per_epoch, 1), 1)
    n = int(min(len(kept), cap, room))
    if n >= len(kept):
        return list(kept)
    if n == 1:
        return [kept[-1]]
    picks = sorted({round(i * (len(kept) - 1) / (n - 1)) for i in range(n)})
    return [kept[i] for i in picks]


def fit_budget(chosen: list[int], sizes: list[int], fixed: int, budget: int = BUDGET,
               cap: int = MAX_EPOCHS) -> list[int]:
    """The epochs built (`chosen`, of `sizes` bytes each) when they fit in `budget` with `fixed`; else picked
    again by epochs_to_embed as if each were as large as the largest."""
    if fixed + sum(sizes) <= budget:
        return list(chosen)
    return epochs_to_embed(chosen, max(sizes), fixed, budget, cap)


def spread(m: int, k: int = MAX_SAMPLES) -> list[int]:
    """k sample indices evenly spread over 0..m-1 (all of them when m <= k), the first and last among them."""
    if m <= k:
        return list(range(m))
    return sorted({round(i * (m - 1) / (k - 1)) for i in range(k)})


def levels(a: Array, lo: float, hi: float) -> str:
    """Values as colour levels, one character of LEVELS each: lo -> the first, hi -> the last."""
    with np.errstate(invalid="ignore"):
        t = np.clip((np.asarray(a, dtype=np.float64) - lo) / (hi - lo if hi > lo else 1.0), 0.0, 1.0)
    t = np.where(np.isfinite(t), t, 0.5)
    return "".join(LEVELS[i] for i in np.rint(t * (len(LEVELS) - 1)).astype(int).ravel())


def value_range(activation: str, a: Array) -> tuple[float, float]:
    """The range a colour scale spans: the activation's own when it is bounded, else symmetric about 0."""
    if activation in BOUNDED:
        return BOUNDED[activation]
    finite = np.asarray(a, dtype=np.float64)
    finite = finite[np.isfinite(finite)]
    top = float(np.max(np.abs(finite))) if finite.size else 1.0
    return (-top, top) if top > 0 else (-1.0, 1.0)


@dataclass(frozen=True)
class ViewPage:
    """The page's data: the network's shape and names, the samples, the curve, one record per embedded epoch."""

    title: str
    source: str
    network: dict
    samples: dict
    curve: dict
    epochs: tuple[dict, ...]
    kept: int  # epochs the run keeps
    per_epoch_bytes: int
    note: str  # what the page shows of the run (subsampled epochs, samples)

    def to_dict(self) -> dict:
        return {"title": self.title, "source": self.source, "network": self.network, "samples": self.samples,
                "curve": self.curve, "kept": self.kept, "embedded": len(self.epochs), "note": self.note,
                "epochs": list(self.epochs)}


# --- the parts that do not change over the epochs ---------------------------------------------------


def network_shape(net: Network, input_names: tuple[str, ...], classes: tuple[str, ...] | None) -> dict:
    """Layers with node names (class names on output nodes) and every parameter's place in the drawing."""
    layers = []
    for l, layer in enumerate(net.layers):
        nodes = [net.node_name(l, j) for j in range(layer.n_out)]
        labels = list(nodes)
        if l == len(net.layers) - 1 and classes is not None and len(classes) == layer.n_out:
            labels = [f"{n} {c}" for n, c in zip(nodes, classes)]
        layers.append({"letter": layer.letter, "activation": layer.activation.name, "nodes": nodes,
                       "labels": labels})
    params = []
    for ref in net.param_refs():
        params.append({"name": ref.name, "layer": ref.layer, "kind": ref.kind, "to": ref.to_node,
                       "from": ref.from_node})
    return {"inputs": list(input_names), "layers": layers, "params": params,
            "classes": list(classes) if classes else None}


def _sample_label(i: int, x: Array, y: Array, inputs: tuple[str, ...], targets: tuple[str, ...],
                  scaled: bool = False) -> str:
    """`sample 3: x1 = 0, x2 = 1 -> y = 1`; standardised inputs (the values the network sees) say so."""
    xs = ", ".join(f"{n} = {fmt(v)}" for n, v in zip(inputs, x))
    ys = ", ".join(f"{n} = {fmt(v)}" for n, v in zip(targets, y))
    return f"sample {i + 1}{' (inputs standardised)' if scaled else ''}: {xs} -> {ys}"


def curve_points(history: list[dict]) -> dict:
    """The loss (and validation loss) over the epochs as points in the unit square, log scale when all are
    positive, with the axis labels."""
    rows = [r for r in history if isinstance(r.get("loss"), (int, float))]
    if not rows:
        return {"train": [], "val": [], "log": False, "ticks": [], "epochs": [0, 0]}
    ep = np.array([r["epoch"] for r in rows], dtype=np.float64)
    series = {"train": [r.get("loss") for r in rows], "val": [r.get("val_loss") for r in rows]}
    every = [v for s in series.values() for v in s if isinstance(v, (int, float)) and np.isfinite(v)]
    log = bool(every) and min(every) > 0
    tr = (lambda v: np.log10(v)) if log else (lambda v: v)
    lo, hi = (float(tr(min(every))), float(tr(max(every)))) if every else (0.0, 1.0)
    span = hi - lo if hi > lo else 1.0
    e0, e1 = float(ep[0]), float(ep[-1])
    ex = (lambda e: (e - e0) / (e1 - e0)) if e1 > e0 else (lambda e: 0.5)
    out = {}
    for key, vals in series.items():
        out[key] = [[round(ex(e), 5), round((float(tr(v)) - lo) / span, 5)] for e, v in zip(ep, vals)
                    if isinstance(v, (int, float)) and np.isfinite(v) and (v > 0 or not log)]
    ticks = [[0.0, fmt(10 ** lo if log else lo, 3)], [1.0, fmt(10 ** hi if log else hi, 3)]]
    return {**out, "log": log, "ticks": ticks, "epochs": [int(e0), int(e1)]}


def curve_x(epoch: int, curve: dict) -> float:
    e0, e1 = curve["epochs"]
    return round(min(max((epoch - e0) / (e1 - e0), 0.0), 1.0), 5) if e1 > e0 else 0.5  # epoch 0: the left edge


# --- one epoch ----------------------------------------------------------------------------------


def chain_record(e: Explanation, shown: list[int], text: dict) -> dict:
    """The numbers the panel shows of one Explanation (the object `explain --json` prints with to_dict()) as text
    (fmt): the factors at the shown samples, the mean, the engine's gradient, the numeric check, the update, the
    upstream sums and the paths. Their symbols and notes are in `text` (chain_text of the same parameter), said
    once for every epoch."""
    f = lambda v: fmt(v)
    up = [c for c in e.compact if c.kind == "upstream"]
    upd = e.update.to_dict()
    factors = [[f(c.values[i]) for i in shown] for c in e.columns]
    upstream = [f(up[0].values[i]) for i in shown] if up else None
    paths = None if e.paths is None or e.paths.listed is None else e.paths
    rec = {
        "value": f(e.value),
        "factors": factors,
        "products": [f(e.products[i]) for i in shown],
        "upstream": None if upstream is None or upstream in factors else upstream,
        "mean": f(e.mean), "engine": f(e.engine), "agrees": e.agrees,
        "numeric": [f(e.numeric.gradient), e.numeric.verdict],
        "update": {"t": upd["t"], "old": f(upd["old"]), "gradient": f(upd["gradient"]), "new": f(upd["new"]),
                   "terms": [[k, f(v)] for k, v in upd["terms"].items()]},
        "sums": [[f(s.total), [[f(r.delta), f(r.weight), f(r.product)] for r in s.rows]] for s in e.sums],
        "paths": None if paths is None else [
            f(paths.sample_sum), f(paths.total),
            [[[f(v) for v in p.values], f(p.sample_product), f(p.contribution)] for p in paths.listed]],
    }
    if upd["note"] != text["update"]["note"]:
        rec["update"]["note"] = upd["note"]
    return rec


def chain_text(e: Explanation) -> dict:
    """The parts of an Explanation's to_dict() that no epoch changes: location, steps, chain, factor symbols,
    the symbols of the upstream sums and of the paths, the optimiser and its settings."""
    d = {k: v for k, v in _light(e).items()}
    upd = d["update"]
    paths = e.paths
    return {"kind": d["kind"], "location": d["location"], "position": d["position"], "m": d["m"],
            "steps": [[s["label"], s["equation"], s["note"]] for s in d["steps"]],
            "chain": [d["chain"]["equation"], d["chain"]["note"]],
            "factors": [[c.symbol, c.rule] for c in e.columns],
            "upstream": next(([c.symbol, c.rule] for c in e.compact if c.kind == "upstream"), None),
            "sums": [[s.title, s.result_symbol, [[r.node, r.delta_symbol, r.weight_symbol] for r in s.rows]]
                     for s in e.sums],
            "paths": None if paths is None or paths.listed is None else
            [paths.count, [[" -> ".join(p.nodes), list(p.symbols)] for p in paths.listed]],
            "update": {"optimizer": upd["optimizer"], "lr": fmt(upd["lr"]), "trainable": upd["trainable"],
                       "note": upd["note"]},
            "detail_sample": d["detail_sample"]}


def _light(e: Explanation) -> dict:
    """Explanation.to_dict() of the same object with its per-sample rows left out (m dicts per parameter and
    epoch that the page does not read): the object with no samples, the rest as to_dict() writes it."""
    import dataclasses
    return dataclasses.replace(e, m=0, products=(), x=(), y=(), y_hat=()).to_dict() | {"m": e.m}


def epoch_record(st: EpochState, net: Network, class_names, shown: list[int], curve: dict,
                 known: dict) -> tuple[dict, dict]:
    """(the page's record of one epoch, the epoch-independent text of each parameter's explanation: `known`'s
    when an earlier epoch gave it)."""
    chains, texts = {}, {}
    for name, e in st.explanations.items():
        texts[name] = known.get(name) or chain_text(e)
        chains[name] = chain_record(e, shown, texts[name])
    values = st.weights
    acts = []
    for layer, a_out in zip(net.layers, st.acts):
        lo, hi = value_range(layer.activation.name, a_out)
        a_shown = a_out[shown]
        a_mean = a_out.mean(axis=0)
        acts.append({"levels": [levels(a_shown[:, j], lo, hi) for j in range(layer.n_out)],
                     "text": [[fmt(v) for v in a_shown[:, j]] for j in range(layer.n_out)],
                     "mean_level": levels(a_mean, lo, hi), "mean_text": [fmt(v) for v in a_mean]})
    rec = {"epoch": st.epoch, "step": st.step, "weights": values,
           "weights_text": {n: fmt(v) for n, v in values.items()},
           "scale": max([abs(v) for v in values.values() if np.isfinite(v)] + [1e-12]),
           "acts": acts, "chain": chains, "x": curve_x(st.epoch, curve) if curve["train"] else None}
    if st.plane_acts is not None:
        maps = []
        for layer, a_out in zip(net.layers, st.plane_acts):
            lo, hi = value_range(layer.activation.name, a_out)
            maps.append([levels(a_out[:, j], lo, hi) for j in range(layer.n_out)])
        out = st.plane_acts[-1]
        by_class = out.shape[1] > 1 and class_names is not None  # a classifier's plane: the predicted class
        plane = "".join(LEVELS[int(k) % len(LEVELS)] for k in np.argmax(out, axis=1)) if by_class else \
            levels(out[:, 0], *value_range(net.layers[-1].activation.name, out[:, :1]))
        rec["heat"] = {"nodes": maps, "plane": plane}
    return rec, texts


def plane_points(plane: Plane, x: Array) -> dict:
    """The plane's size and range (as text), and where each sample sits in its unit square (rows from the top)."""
    lo, hi = plane.lo, plane.hi
    pos = np.column_stack([(x[:, 0] - lo[0]) / (hi[0] - lo[0]), (hi[1] - x[:, 1]) / (hi[1] - lo[1])])
    return {"n": plane.n, "range": [[fmt(lo[0], 3), fmt(hi[0], 3)], [fmt(lo[1], 3), fmt(hi[1], 3)]],
            "points": [[round(float(a), 4), round(float(b), 4)] for a, b in pos]}


# --- the whole page -------------------------------------------------------------------------------


def build_view(learning: Learning, budget: int = BUDGET, cap: int = MAX_EPOCHS, progress=None) -> ViewPage:
    """The page's data for a run or a config (explain.learning's run_learning or config_learning).

    The last kept epoch is built first to measure an epoch's bytes; the rule epochs_to_embed picks the rest, and
    picks again among those built, by the largest, if the epochs turn out larger than the last.
    """
    import json
    from bpcli.data.labels import class_names_of

    cfg, net, prepared, kept = learning.cfg, learning.net, learning.prepared, learning.kept
    tr = prepared.train
    classes = class_names_of(tr, net.n_outputs, numbered=False)
    class_names = tr.class_names
    x, y = tr.x, tr.y
    shown = spread(tr.m)
    curve = curve_points(learning.history)
    grid = input_plane(net, x, GRID)
    plane = None
    if grid is not None:
        plane = plane_points(grid, np.asarray(x, dtype=np.float64))
        by_class = y.shape[1] > 1 and class_names is not None
        t_lo, t_hi = float(np.min(y[:, 0])), float(np.max(y[:, 0]))
        plane["targets"] = "".join(LEVELS[int(k) % len(LEVELS)] for k in np.argmax(y, axis=1)) if by_class else \
            levels(y[:, 0], t_lo, t_hi)
        plane["classes"] = by_class
        plane["inputs"] = list(net.input_names)
        plane["scaled"] = prepared.scaling is not None
    records: dict[int, dict] = {}
    texts: dict = {}

    def build(wanted: list[int]) -> None:
        for st in epoch_states(learning, [e for e in wanted if e not in records], grid):
            rec, t = epoch_record(st, net, class_names, shown, curve, texts)
            records[st.epoch] = rec
            texts.update(t)
            if progress is not None:
                progress(len(records), len(chosen) if chosen else len(wanted))

    chosen: list[int] = []
    build([kept[-1]])
    per_epoch = len(json.dumps(records[kept[-1]], separators=(",", ":")))
    fixed = PAGE_FIXED + len(json.dumps(texts, separators=(",", ":"))) + len(json.dumps(curve)) + \
        len(json.dumps(plane)) + 200 * tr.m
    chosen = epochs_to_embed(kept, per_epoch, fixed, budget, cap)
    build(chosen)
    chosen = fit_budget(chosen, [len(json.dumps(records[e], separators=(",", ":"))) for e in chosen], fixed,
                        budget, cap)
    epochs = tuple(records[e] for e in chosen)
    labels = [_sample_label(i, tr.x[i], tr.y[i], net.input_names, tr.target_names, prepared.scaling is not None)
              for i in shown]
    notes = []
    if len(chosen) < len(kept):
        why = "to keep the page under 3 MB" if len(chosen) < min(len(kept), cap) else f"at most {cap} on the slider"
        notes.append(f"{len(chosen)} of the {len(kept)} kept epochs, evenly spread ({why})")
    if len(shown) < tr.m:
        notes.append(f"{len(shown)} of the {tr.m} training samples to choose from; every mean is over all {tr.m}")
    samples = {"m": tr.m, "shown": [i + 1 for i in shown], "labels": labels,
               "x_text": [[fmt(v) for v in tr.x[i]] for i in shown],
               "scaled": prepared.scaling is not None, "plane": plane}
    network = network_shape(net, net.input_names, classes) | {"explain": texts}
    return ViewPage(cfg.name, learning.source, network, samples, curve, epochs, len(kept), per_epoch,
                    "; ".join(notes))


def view_run(run_dir: Path, progress=None) -> ViewPage:
    """The page's data for a run folder: every kept snapshot (or as many as fit) with its explanations."""
    return build_view(run_learning(run_dir), progress=progress)


def view_config(cfg, net: Network, prepared) -> ViewPage:
    """The page's data for a config: its network as initialised, trained for zero epochs."""
    return build_view(config_learning(cfg, net, prepared))
