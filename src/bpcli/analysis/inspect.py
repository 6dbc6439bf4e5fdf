"""bpcli inspect: read a run's per-epoch history and say why a network learns or does not.

Works only from the per-layer numbers `train` records (the run's history sample): gradient norms, update-to-weight
ratios and the share of saturated or dead units. Every flag names its layer, the epoch it started and
how often it held since, with a plain-words hint.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass

from bpcli.nn.model import Network

# thresholds (also reported in --json so a reader knows what "vanishing" meant here)
VANISHING = 1e-2  # a layer's gradient below 1/100 of the output layer's
EXPLODING = 1e2  # ... or above 100 times it
SATURATED = 0.5  # at least half of a sigmoid/tanh layer's units flat on most samples
DEAD = 0.5  # more than half of a ReLU layer's units never active on the training data
SLOW = 1 / 30  # a layer's weights change less than 1/30 as fast as the fastest layer's
JUMPY = 1.0  # weights change by more than their own size in one epoch
STUCK = 0.95  # final training loss above 95% of the first epoch's
PERSIST = 0.5  # a condition is flagged when it holds in at least half the epochs since it first did
TRACE_POINTS = 40  # epochs kept per series in the result (for sparklines and --json)


@dataclass(frozen=True)
class LayerDynamics:
    """One layer over the run. Ratios compare gradient norms ||dC/dW||; None where undefined."""

    letter: str
    activation: str
    units: int
    kind: str | None  # "saturating" (sigmoid/tanh), "relu" or None: what `saturation` measures
    grad_first: float
    grad_last: float
    vs_output: float | None  # grad_last / output layer's grad_last: at the last epoch, not a median
    vs_next: float | None  # grad_last / the next layer's (last epoch): below 1, it shrank through that layer
    saturation_last: float | None
    saturation_max: float | None
    update_median: float | None  # ||W_end - W_start|| / ||W_start|| per epoch, median over epochs
    update_last: float | None
    grad_trace: tuple[float, ...]  # at InspectResult.trace_epochs
    update_trace: tuple[float | None, ...]
    saturation_trace: tuple[float | None, ...]

    def to_dict(self) -> dict:
        return {
            "layer": self.letter, "activation": self.activation, "units": self.units, "measures": self.kind,
            "grad_norm": {"first": self.grad_first, "last": self.grad_last, "vs_output": self.vs_output,
                          "vs_next": self.vs_next, "trace": list(self.grad_trace)},
            "saturation": {"last": self.saturation_last, "max": self.saturation_max,
                           "trace": list(self.saturation_trace)},
            "update_ratio": {"median": self.update_median, "last": self.update_last,
                             "trace": list(self.update_trace)},
        }


@dataclass(frozen=True)
class Finding:
    """One problem: what, where, since when, and what to try."""

    kind: str  # vanishing | exploding | saturated | dead | slow | jumpy | stuck | diverged
    layer: str | None
    epoch: int  # the epoch it started
    epochs: int  # in how many epochs it held from then on
    message: str
    hint: str
    value: float | None = None  # the ratio the message quotes (None: it quotes none)
    measure: str | None = None  # what that ratio is, as the message labels it

    def to_dict(self) -> dict:
        return {"kind": self.kind, "layer": self.layer, "epoch": self.epoch, "epochs": self.epochs,
                "message": self.message, "hint": self.hint, "value": self.value, "measure": self.measure}


@dataclass(frozen=True)
class InspectResult:
    name: str
    run_dir: str
    status: str
    epochs: int
    loss_first: float | None
    loss_last: float | None
    output_layer: str
    layers: tuple[LayerDynamics, ...]
    findings: tuple[Finding, ...]
    trace_epochs: tuple[int, ...]
    summary: str
    stats_every: int | None = None  # update ratios and saturation measured every this many epochs (None: each)
    stats_last: int | None = None  # the last epoch they were measured at
    stepped: int | None = None  # status "stepped": the steps of `bpcli step --out` that made the run
    folder: str | None = None  # the run folder itself, which `train --resume` takes (run_dir may add "after epoch N")

    @property
    def healthy(self) -> bool:
        return not self.findings

    def to_dict(self) -> dict:
        return {
            "command": "inspect", "name": self.name, "run_dir": self.run_dir, "status": self.status,
            "stepped": self.stepped, "epochs": self.epochs, "loss": {"first": self.loss_first, "last": self.loss_last},
            "output_layer": self.output_layer, "healthy": self.healthy, "summary": self.summary,
            "findings": [f.to_dict() for f in self.findings],
            "layers": [la.to_dict() for la in self.layers],
            "trace_epochs": list(self.trace_epochs),
            "stats_every": self.stats_every, "stats_last": self.stats_last,
            "thresholds": {"vanishing": VANISHING, "exploding": EXPLODING, "saturated": SATURATED, "dead": DEAD,
                           "slow": SLOW, "jumpy": JUMPY, "stuck": STUCK, "persist": PERSIST},
        }


def _num(v) -> float | None:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def _series(history: list[dict], key: str, l: int) -> list[float | None]:
    out = []
    for h in history:
        vals = h.get(key) or []
        out.append(_num(vals[l]) if l < len(vals) else None)
    return out


def _persistent(cond: list[bool], ep: list[int], w: list[int]) -> tuple[int, int, int] | None:
    """(index, first epoch, epochs it held since) when it held in at least PERSIST of the epochs since it began.

    ep are the epochs of the (maybe thinned) series, w how many epochs each point stands for.
    """
    if True not in cond:
        return None
    i = cond.index(True)
    held = sum(wi for c, wi in zip(cond[i:], w[i:]) if c)
    if held < PERSIST * sum(w[i:]):
        return None
    return i, ep[i] - w[i] + 1, held


def _median(vals: list[float | None]) -> float | None:
    v = sorted(x for x in vals if x is not None)
    if not v:
        return None
    n = len(v)
    return v[n // 2] if n % 2 else 0.5 * (v[n // 2 - 1] + v[n // 2])


def _ratio(a: float | None, b: float | None) -> float | None:
    if a is None or b is None or b <= 0:
        return None
    return a / b


def fraction(r: float) -> str:
    """0.0012 -> '1/830', 0.4 -> '0.4', 250 -> '250x': how people say a ratio."""
    if r <= 0:
        return "0"
    if r < 0.1:
        inv = 1 / r
        digits = max(0, int(math.floor(math.log10(inv))) - 1)
        return f"1/{int(round(inv, -digits)):d}"
    if r >= 10:
        return f"{r:.0f}x"
    return f"{r:.2g}"


def _trace_idx(n: int) -> list[int]:
    if n <= TRACE_POINTS:
        return list(range(n))
    return sorted({round(i * (n - 1) / (TRACE_POINTS - 1)) for i in range(TRACE_POINTS)})


def inspect_run(net: Network, history: list[dict], name: str, run_dir: str, status: str = "completed",
                stepped: int | None = None, folder: str | None = None) -> InspectResult:
    """Diagnose a run from its history (EpochRecord dicts: every epoch, or the run's thinned sample) and its layers;
    run_dir: what the result says it read (the folder, maybe "after epoch N"), folder: the run folder itself."""
    n = len(history)
    ep = [int(h.get("epoch", i + 1)) for i, h in enumerate(history)]
    w = [b - a for a, b in zip([0] + ep, ep)]  # epochs each point of a thinned series stands for
    E = ep[-1] if ep else 0
    L = len(net.layers)
    out = L - 1
    out_letter = net.layers[out].letter
    g = [_series(history, "grad_norm", l) for l in range(L)]
    idx = _trace_idx(n)
    # update ratios and saturation exist at the measured epochs only (a stride, history's stats_every): their
    # series, epochs and weights are those epochs'
    hm = [h for h in history if any(_num(v) is not None for v in h.get("update_ratio") or [])] or history[-1:]
    every = _num(history[-1].get("stats_every")) if history else None
    ep_m = [int(h.get("epoch", 0)) for h in hm] if len(hm) < n else ep
    w_m = [b - a for a, b in zip([0] + ep_m, ep_m)]
    u = [_series(hm, "update_ratio", l) for l in range(L)]
    s = [_series(hm, "saturation", l) for l in range(L)]
    # a strided series' trace holds, at each trace epoch, its latest measurement (at or before that epoch)
    last_at = [max(bisect.bisect_right(ep_m, ep[i]) - 1, 0) for i in idx]

    def trace(series: list) -> tuple:
        return tuple(series[j] for j in last_at) if series else ()

    layers = []
    for l, layer in enumerate(net.layers):
        g_last = g[l][-1] if E else None
        sat = [x for x in s[l] if x is not None]
        layers.append(LayerDynamics(
            layer.letter, layer.activation.name, layer.n_out, _kind(layer),
            g[l][0] if E else None, g_last,
            _ratio(g_last, g[out][-1] if E else None) if l != out else 1.0,
            _ratio(g_last, g[l + 1][-1]) if l < out and E else None,
            s[l][-1] if E else None, max(sat) if sat else None,
            _median(u[l]), u[l][-1] if E else None,
            tuple(g[l][i] for i in idx), trace(u[l]), trace(s[l]),
        ))

    findings: list[Finding] = []
    vanishing = _gradient_flags(net, g, u, ep, w, ep_m, findings)
    _unit_flags(net, s, ep_m, w_m, E, findings)
    _speed_flags(net, g, u, ep, ep_m, w_m, vanishing, findings)
    losses = [_num(h.get("loss")) for h in history]
    first = losses[0] if losses else None
    last = losses[-1] if losses else None
    if E >= 10 and first is not None and last is not None and last > STUCK * first:
        findings.append(Finding("stuck", None, 1, E, f"the training loss hardly fell: {first:.4g} -> {last:.4g} "
                                f"over {E} epochs", "read the layer flags above for the cause"))
    if status == "diverged":
        findings.append(Finding("diverged", None, E + 1, 1, f"the loss became NaN or infinite after epoch {E}",
                                "lower the learning rate"))
    findings.sort(key=lambda f: (f.kind in ("stuck", "diverged"), f.epoch, f.layer or ""))
    return InspectResult(name, run_dir, status, E, first, last, out_letter, tuple(layers), tuple(findings),
                         tuple(ep[i] for i in idx), _summary(layers, findings, E),
                         int(every) if every else None, ep_m[-1] if ep_m else None, stepped,
                         folder if folder is not None else run_dir)


def _kind(layer) -> str | None:
    """'saturating' (sigmoid-like), 'relu' (relu-like) or None: which unit flags a layer's activation can raise."""
    return {"sigmoid-like": "saturating", "relu-like": "relu"}.get(layer.activation.saturates)


def _gradient_flags(net: Network, g: list, u: list, ep: list[int], w: list[int], ep_m: list[int],
                    findings: list[Finding]) -> set[int]:
    """Vanishing or exploding gradients, each hidden layer's against the output layer's; the vanishing layers.
    g is per history epoch (ep, w); u per measured epoch (ep_m)."""
    n, E, L = len(ep), (ep[-1] if ep else 0), len(net.layers)
    out = L - 1
    out_letter = net.layers[out].letter
    vanishing: set[int] = set()
    for l in range(out):
        ratios = [_ratio(g[l][e], g[out][e]) for e in range(n)]
        for kind, test in (("vanishing", lambda r: r is not None and r < VANISHING),
                           ("exploding", lambda r: r is not None and r > EXPLODING)):
            hit = _persistent([test(r) for r in ratios], ep, w)
            if hit is None:
                continue
            i, start, held = hit
            typical = _median([r for r in ratios[i:] if test(r)])
            letter = net.layers[l].letter
            measure = _held_measure(held, E - start + 1)
            msg = (f"layer {letter}: gradient {fraction(typical)} of output layer {out_letter}'s from epoch {start}"
                   f" ({measure})")
            if kind == "vanishing":
                vanishing.add(l)
                since = [e >= ep[i] for e in ep_m]
                upd = _ratio(_median([x for x, c in zip(u[l], since) if c]),
                             _median([x for x, c in zip(u[out], since) if c]))
                if upd is not None:
                    msg += f"; its weights change {fraction(upd)} as fast as {out_letter}'s (median since epoch {start})"
                hint = _shrink_hint(net, l, out)
            else:
                hint = "exploding gradients: lower the learning rate, use Xavier/He initialisation or fewer layers"
            findings.append(Finding(kind, letter, start, held, msg, hint, typical, measure))

    return vanishing


def _unit_flags(net: Network, s: list, ep: list[int], w: list[int], E: int, findings: list[Finding]) -> None:
    """Saturated (sigmoid-like) or dead (relu-like) units that stay so (s, ep, w: at the measured epochs; E: the
    run's last epoch)."""
    out = len(net.layers) - 1
    for l, layer in enumerate(net.layers):
        k = _kind(layer)
        if k is None or (l == out and net.fused_output):
            continue  # a confident sigmoid/softmax output under cross-entropy still passes y' - y back
        limit = SATURATED if k == "saturating" else DEAD
        cond = [x is not None and (x >= limit if k == "saturating" else x > limit) for x in s[l]]
        hit = _persistent(cond, ep, w)
        if hit is None:
            continue
        i, start, held = hit
        share = _median([x for x, c in zip(s[l][i:], cond[i:]) if c])
        count = int(round(share * layer.n_out))
        act = layer.activation.name
        if k == "saturating":
            msg = (f"layer {layer.letter}: {count} of {layer.n_out} {act} units saturated from epoch {start} "
                   f"({held} of {E - start + 1} epochs): f'(z) is near 0 on most samples")
            hint = ("consider tanh or ReLU, Xavier/He initialisation with smaller weights, "
                    "or standardized inputs (data.standardize: true)")
            findings.append(Finding("saturated", layer.letter, start, held, msg, hint))
        else:
            msg = (f"layer {layer.letter}: {count} of {layer.n_out} {act} units dead from epoch {start} "
                   f"({held} of {E - start + 1} epochs): never active on the training data, so they never learn")
            hint = "consider a smaller learning rate, leaky_relu, or a small positive init.bias"
            findings.append(Finding("dead", layer.letter, start, held, msg, hint))



def _speed_flags(net: Network, g: list, u: list, ep: list[int], ep_m: list[int], w_m: list[int], vanishing: set[int],
                 findings: list[Finding]) -> None:
    """Layers whose weights change far slower than the fastest layer's, or by more than their own size (g per
    history epoch ep; u per measured epoch ep_m, w_m)."""
    n, E, L = len(ep), (ep[-1] if ep else 0), len(net.layers)
    out = L - 1
    out_letter = net.layers[out].letter
    for l, layer in enumerate(net.layers):
        if l in vanishing:
            continue  # already said, with its update speed
        rel = []
        for e in range(len(ep_m)):
            fastest = max((u[k][e] for k in range(L) if u[k][e] is not None), default=None)
            rel.append(_ratio(u[l][e], fastest))
        hit = _persistent([r is not None and r < SLOW for r in rel], ep_m, w_m)
        if hit is not None:
            i, start, held = hit
            typical = _median([r for r in rel[i:] if r is not None and r < SLOW])
            measure = _held_measure(held, E - start + 1)
            msg = (f"layer {layer.letter}: weights change {fraction(typical)} as fast as the fastest layer's "
                   f"from epoch {start} ({measure})")
            grad = _median([_ratio(g[l][e], g[out][e]) for e in range(n) if ep[e] >= ep_m[i]])
            if l < out and grad is not None and grad < 1:
                msg += f"; its gradient is {fraction(grad)} of output layer {out_letter}'s (median since epoch {start})"
                hint = _shrink_hint(net, l, out)
            else:
                hint = "this layer hardly learns: check its initial weights' scale, or try Adam"
            findings.append(Finding("slow", layer.letter, start, held, msg, hint, typical, measure))
        hit = _persistent([x is not None and x > JUMPY for x in u[l]], ep_m, w_m)
        if hit is not None:
            i, start, held = hit
            msg = (f"layer {layer.letter}: weights change by more than their own size per epoch from epoch {start} "
                   f"({held} of {E - start + 1} epochs)")
            findings.append(Finding("jumpy", layer.letter, start, held, msg,
                                    "updates this large bounce around: lower the learning rate"))


def _held_measure(held: int, since: int) -> str:
    """How a finding's quoted ratio was measured: the median over the epochs the condition held."""
    return f"median over the {held} of {since} epochs it held"


def _shrink_hint(net: Network, l: int, out: int) -> str:
    """Why the gradient shrinks between layer l and the output, and what to try."""
    acts = {net.layers[k].activation.name: net.layers[k].activation for k in range(l, out)}
    squash = sorted(name for name, act in acts.items() if act.saturates == "sigmoid-like")
    if "sigmoid" in squash:
        return (f"sigmoid's derivative is at most {acts['sigmoid'].grad_peak:g}, so every sigmoid layer shrinks the "
                "gradient on its way down: consider ReLU with He initialisation, fewer layers, or Adam")
    if squash:
        return (f"{' and '.join(squash)} units in their flat range shrink the gradient: consider ReLU with He "
                "initialisation or smaller initial weights")
    return "the weights shrink the gradient layer by layer: consider He initialisation or Adam"


def _summary(layers: list[LayerDynamics], findings: list[Finding], E: int) -> str:
    if E == 0:
        return "no epochs recorded: nothing to inspect"
    if findings:
        n = len(findings)
        return f"{n} problem{'s' if n != 1 else ''} found"
    parts = []
    ratios = [la.vs_output for la in layers[:-1] if la.vs_output is not None]
    if ratios:
        worst = min(ratios)
        which = next(la.letter for la in layers if la.vs_output == worst)
        parts.append(f"the gradient reaches every layer (the weakest, layer {which}, gets {fraction(worst)} of "
                     f"output layer {layers[-1].letter}'s)")
    ups = [la.update_median for la in layers if la.update_median is not None]
    if ups:
        parts.append(f"every layer's weights move ({min(ups):.1e} to {max(ups):.1e} of their size per epoch)")
    parts.append("no layer is mostly saturated or dead")
    return "healthy: " + "; ".join(parts)
