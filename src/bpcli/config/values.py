"""Config values checked beyond their type: explicit weights and init.values against the network, snapshots, schedule."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np

from bpcli.config.checker import Checker, kind_of, matrix, short_repr
from bpcli.errors import did_you_mean, is_finite_number
from bpcli.nn.model import build, parse_name
from bpcli.yamlsrc import as_bool
from bpcli.schema import NetConfig, ScheduleConfig


def check_values(ck: Checker, cfg: NetConfig) -> None:
    """Explicit weights, biases and init.values against the shapes and names of the network `cfg` builds."""
    n_in = len(cfg.inputs)
    top = float(np.finfo(np.float32).max) if cfg.train.dtype == "float32" else None
    for i, lc in enumerate(cfg.layers):
        for key, given in (("weights", lc.weights), ("biases", lc.biases)):
            big = _beyond(given, top)
            if big is not None:
                ck.problem(("layers", i, key), f"{big:g} is beyond float32's range (±{top:.3g}); use train.dtype: float64")
        if lc.weights is not None:
            W = matrix(ck, lc.weights, ("layers", i, "weights"))
            if W is not None and W.shape != (lc.size, n_in):
                ck.problem(("layers", i, "weights"), f"expected a {lc.size} x {n_in} matrix "
                           f"(one row per node of this layer, one column per input to it), "
                           f"found {W.shape[0]} x {W.shape[1]}")
        if lc.biases is not None:
            bv = np.atleast_1d(np.asarray(lc.biases, dtype=object))
            n_b = 1 if lc.bias in ("shared", "shared_frozen") else lc.size
            if lc.bias == "off":
                ck.problem(("layers", i, "biases"), "this layer has bias: off; remove 'biases' or turn bias on")
            elif bv.ndim != 1 or bv.shape[0] != n_b or not all(is_finite_number(v) for v in bv):
                ck.problem(("layers", i, "biases"), f"expected {n_b} finite number(s), found {short_repr(lc.biases)}")
        n_in = lc.size
    for pname, value in cfg.init.values.items():
        if top is not None and abs(value) > top:
            ck.problem(("init", "values", pname), f"{value:g} is beyond float32's range (±{top:.3g}); "
                       "use train.dtype: float64")
    if cfg.init.values:
        # the names are resolved on the bare network: explicit weights and values play no part in them
        bare = build(replace(cfg, layers=tuple(replace(lc, weights=None, biases=None) for lc in cfg.layers),
                             init=replace(cfg.init, values={})))
        for pname in cfg.init.values:
            if parse_name(bare, pname) is None:
                names = bare.param_names()
                ck.problem(("init", "values", pname), f"unknown parameter '{pname}'{did_you_mean(pname, names)}; "
                           f"valid names: {', '.join(names[:30])}{' ...' if len(names) > 30 else ''}")


def _beyond(v: Any, top: float | None) -> float | None:
    """The first number in a nested list whose size exceeds `top` (None when top is None or none does)."""
    if top is None or v is None:
        return None
    stack = [v]
    while stack:
        x = stack.pop()
        if isinstance(x, list):
            stack.extend(x)
        elif is_finite_number(x) and abs(x) > top:
            return float(x)
    return None


def parse_snapshots(ck: Checker, tr: dict, tp: tuple) -> dict:
    """train.snapshots: on (the default budget), off, {every: N} or {budget_mb: X}, as TrainConfig's fields."""
    v = tr.get("snapshots", "on")
    path = tp + ("snapshots",)
    if v is True or v is False or isinstance(v, str):
        choice = ck.choice(tr, "snapshots", tp, "on", ("on", "off"))
        return {"snapshots": choice != "off"}
    if not isinstance(v, dict):
        ck.problem(path, f"expected on, off, {{every: N}} or {{budget_mb: X}}, found {kind_of(v)}")
        return {}
    d = ck.mapping(v, path, ("every", "budget_mb"))
    if "every" in d and "budget_mb" in d:
        ck.problem(path, "give every or budget_mb, not both (every keeps every N-th epoch whatever the size)")
        return {}
    if "every" in d:
        return {"snapshot_every": ck.integer(d, "every", path, None, lo=1, hi=10_000_000)}
    if "budget_mb" in d:
        return {"snapshot_budget_mb": ck.number(d, "budget_mb", path, 50.0, lo=0, lo_open=True, hi=1e6)}
    if not d or not set(d) - {"every", "budget_mb"}:  # an unknown key is reported by mapping() already
        ck.problem(path, "expected every or budget_mb in the mapping, found neither")
    return {}


SCHEDULES = tuple(ScheduleConfig.KEYS)
MONITORS = ("val_loss", "loss", "val_metric", "metric")


def parse_schedule(ck: Checker, raw: Any, path: tuple, epochs: int) -> ScheduleConfig | None:
    """train.schedule: a name (step needs step_size, so {name: step, step_size: N}) or {name: ..., its keys}."""
    if raw is None or as_bool(raw) is False:
        return None
    if isinstance(raw, str):
        raw = {"name": raw}
    if not isinstance(raw, dict):
        ck.problem(path, f"expected {{name: {' | '.join(SCHEDULES)}, ...}}, found {kind_of(raw)}")
        return None
    name = ck.choice(raw, "name", path, "", SCHEDULES) if "name" in raw else None
    if name is None:
        ck.problem(path, f"missing key 'name' ({', '.join(SCHEDULES)})")
        return None
    if not name:
        return None
    keys = ScheduleConfig.KEYS[name]
    ck.mapping(raw, path, ("name",) + keys)
    d = ScheduleConfig(name)
    if name == "step":
        if "step_size" not in raw:
            ck.problem(path, "missing key 'step_size' (the epochs between two reductions of lr)")
        d = replace(d, step_size=ck.integer(raw, "step_size", path, 10, lo=1),
                    gamma=ck.number(raw, "gamma", path, 0.1, lo=0, lo_open=True, hi=1))
    elif name == "exponential":
        if "gamma" not in raw:
            ck.problem(path, "missing key 'gamma' (the factor lr is multiplied by after each epoch, e.g. 0.95)")
        d = replace(d, gamma=ck.number(raw, "gamma", path, 0.95, lo=0, lo_open=True, hi=1))
    elif name == "cosine":
        d = replace(d, t_max=ck.integer(raw, "t_max", path, epochs, lo=1),
                    eta_min=ck.number(raw, "eta_min", path, 0.0, lo=0))
    else:
        monitor = ck.choice(raw, "monitor", path, "val_loss", MONITORS)
        d = replace(d, monitor=monitor,
                    mode=ck.choice(raw, "mode", path, "max" if monitor.endswith("metric") else "min", ("min", "max")),
                    factor=ck.number(raw, "factor", path, 0.1, lo=0, lo_open=True, hi=1, hi_open=True),
                    patience=ck.integer(raw, "patience", path, 10, lo=0),
                    threshold=ck.number(raw, "threshold", path, 1e-4, lo=0),
                    threshold_mode=ck.choice(raw, "threshold_mode", path, "rel", ("rel", "abs")),
                    cooldown=ck.integer(raw, "cooldown", path, 0, lo=0),
                    min_lr=ck.number(raw, "min_lr", path, 0.0, lo=0))
    return d
