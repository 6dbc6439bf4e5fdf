"""bpcli compare: what differs between runs' configs, their final numbers and inspect verdicts, side by side."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from bpcli.errors import BpcliError

@dataclass(frozen=True)
class Difference:
    """One dotted config key (train.lr, layers[0].activation) whose values are not all equal."""

    key: str
    values: tuple  # one per run, in the order given (None where a run's config lacks the key)
    present: tuple[bool, ...]  # False where a run's config lacks the key
    applies: tuple[bool, ...] = ()  # False where the key means nothing for that run (data.noise of a CSV run)

    def to_dict(self) -> dict:
        applies = self.applies or (True,) * len(self.values)
        return {"key": self.key, "values": list(self.values), "present": list(self.present),
                "applies": list(applies)}


@dataclass(frozen=True)
class RunSummary:
    """One run's final numbers (from its metrics.json and run.json), inspect verdict and curves."""

    label: str  # the column heading: the folder's name, or its number when names clash or are long
    run_dir: str
    name: str  # the config's name
    status: str
    epochs: int
    metric: str  # accuracy | r2
    loss: float | None
    val_loss: float | None
    train_metric: float | None
    val_metric: float | None
    best_epoch: int | None
    weights_epoch: int | None
    seconds: float | None
    healthy: bool
    verdict: str  # inspect's summary line
    findings: tuple[str, ...]  # inspect's findings, one message each
    curves: dict  # epoch, loss, val_loss, metric, val_metric: lists over the run's history sample
    stepped: int | None = None  # status "stepped": the steps of `bpcli step --out` that made the run

    def to_dict(self) -> dict:
        return {
            "label": self.label, "run_dir": self.run_dir, "name": self.name, "status": self.status,
            "stepped": self.stepped, "epochs": self.epochs, "metric": self.metric, "loss": self.loss, "val_loss": self.val_loss,
            "train_metric": self.train_metric, "val_metric": self.val_metric, "best_epoch": self.best_epoch,
            "weights_epoch": self.weights_epoch, "seconds": self.seconds,
            "inspect": {"healthy": self.healthy, "summary": self.verdict, "findings": list(self.findings)},
        }


@dataclass(frozen=True)
class CompareResult:
    runs: tuple[RunSummary, ...]
    differences: tuple[Difference, ...]
    notes: tuple[str, ...]  # what a reader must know: different metrics, identical configs
    written: tuple[str, ...] = ()  # the curve picture(s), with --out

    def to_dict(self) -> dict:
        return {"command": "compare", "runs": [r.to_dict() for r in self.runs],
                "differences": [d.to_dict() for d in self.differences], "notes": list(self.notes),
                "written": list(self.written)}


def _activation_text(a) -> str:
    """A layer's activation as one value: 'tanh', or 'elu(alpha=0.5)' when it has constants."""
    if isinstance(a, dict):
        params = ", ".join(f"{k}={v}" for k, v in a.items() if k != "name")
        return f"{a.get('name')}({params})" if params else str(a.get("name"))
    return str(a)


def flatten(cfg: dict, prefix: str = "") -> dict:
    """A config's plain data as {dotted key: value}: nested mappings by '.', the layers list by [i].

    Lists of plain values (inputs, inline data, given weights) stay whole: one value each.
    """
    out: dict = {}
    for k, v in cfg.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(flatten(v, key + "."))
        elif isinstance(v, list) and v and all(isinstance(x, dict) for x in v):
            for i, item in enumerate(v):
                item = dict(item)
                if "activation" in item:
                    item["activation"] = _activation_text(item["activation"])
                out.update(flatten(item, f"{key}[{i}]."))
        else:
            out[key] = v
    return out


# the data keys each source reads; the others' (kept in a resolved config at their defaults) mean nothing for it
SOURCE_KEYS = {"inline": ("data.x", "data.y"), "csv": ("data.csv", "data.features", "data.target", "data.max_rows"),
               "generator": ("data.generator", "data.samples", "data.noise", "data.seed")}


def _source(flat: dict) -> str | None:
    """Which data source a flattened config reads: the source whose naming key it holds."""
    for source, key in (("csv", "data.csv"), ("generator", "data.generator"), ("inline", "data.x")):
        if key in flat:
            return source
    return None


def applies(key: str, flat: dict) -> bool:
    """False for a data key that only another data source reads (data.noise in a CSV run's config)."""
    source = _source(flat)
    return source is None or not any(key in keys for s, keys in SOURCE_KEYS.items() if s != source)


def differences(configs: list[dict]) -> list[Difference]:
    """Every dotted key whose value is not the same in all configs, in the order the keys first appear.

    A key a run's data source does not read is not applicable there: it differs only from a run it applies to.
    """
    flat = [flatten(c) for c in configs]
    keys: list[str] = []
    for f in flat:
        keys += [k for k in f if k not in keys]
    found = []
    for k in keys:
        vals = tuple(f.get(k) for f in flat)
        present = tuple(k in f for f in flat)
        used = tuple(applies(k, f) for f in flat)
        seen = [(p, v) for p, v, u in zip(present, vals, used) if u]
        if len(set(used)) > 1 or len({p for p, _ in seen}) > 1 or any(_differ(seen[0][1], v) for _, v in seen[1:]):
            found.append(Difference(k, vals, present, used))
    return found


def _differ(a, b) -> bool:
    """Values differ unless equal and of the same kind (1 and 1.0 are equal; True and 1 are not)."""
    return a != b or isinstance(a, bool) != isinstance(b, bool)


def _number(v) -> float | None:
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) else None


def _labels(dirs: list[Path], width: int = 14) -> list[str]:
    """Column headings: each folder's name when they are all different and short, else 1, 2, 3 ..."""
    names = [d.resolve().name or str(d) for d in dirs]
    if len(set(names)) == len(names) and all(0 < len(n) <= width for n in names):
        return names
    return [str(i + 1) for i in range(len(dirs))]


def _curves(history: list[dict]) -> dict:
    keys = ("loss", "val_loss", "metric", "val_metric")
    out: dict = {"epoch": [int(h.get("epoch", i + 1)) for i, h in enumerate(history)]}
    for k in keys:
        out[k] = [_number(h.get(k)) for h in history]
    return out


def summarize(loaded, label: str) -> RunSummary:
    """A loaded run (runs.load_run) as its summary column: metrics.json, the state, and inspect's verdict."""
    from bpcli.analysis.inspect import inspect_run

    m, state = loaded.metrics, loaded.state
    from bpcli.runs.store import status_of
    status = status_of(state, loaded.run_dir)
    verdict = inspect_run(loaded.net, loaded.history, loaded.cfg.name, str(loaded.run_dir), status, state.stepped)
    metric = m.get("metric") if m.get("metric") in ("accuracy", "r2") else (
        "accuracy" if loaded.prepared.train.task == "classification" else "r2")
    best = state.best_epoch or None
    return RunSummary(
        label, str(loaded.run_dir), loaded.cfg.name, status, state.epoch, metric, _number(m.get("loss")),
        _number(m.get("val_loss")), _number(m.get("train_metric")), _number(m.get("val_metric")), best,
        state.weights_epoch, _number(m.get("seconds")), verdict.healthy, verdict.summary,
        tuple(f.message for f in verdict.findings), _curves(loaded.history), state.stepped)


def compare_runs(run_dirs: list[str | Path]) -> CompareResult:
    """Load every run (each checked as `bpcli show` checks it) and set them side by side.

    BpcliError for fewer than two runs, or for a run that cannot be read (naming it and what is wrong).
    """
    from bpcli.errors import RunFolderError
    from bpcli.runs.store import load_run

    if len(run_dirs) < 2:
        raise BpcliError(f"compare needs at least two run folders, found {len(run_dirs)}")
    dirs = [Path(d) for d in run_dirs]
    loaded = []
    for d in dirs:
        try:
            loaded.append(load_run(d))
        except RunFolderError as err:  # the loader's line names the folder or file at fault
            raise RunFolderError(f"cannot compare: {err}") from None
    labels = _labels(dirs)  # after loading: resolving a symlink loop raises
    runs = tuple(summarize(r, lab) for r, lab in zip(loaded, labels))
    diffs = tuple(differences([r.cfg.to_dict() for r in loaded]))
    notes = []
    if not diffs:
        notes.append("the configs are identical")
    kinds = sorted({r.metric for r in runs})
    if len(kinds) > 1:
        named = {"accuracy": "accuracy", "r2": "R^2"}
        by = "; ".join(f"{named[k]}: " + ", ".join(r.label for r in runs if r.metric == k) for k in kinds)
        notes.append(f"the runs measure different metrics ({by}): each metric has its own row and plot")
    where = [d.resolve() for d in dirs]
    same = [r.label for r, w in zip(runs, where) if where.count(w) > 1]
    if same:
        notes.append(f"the same run folder is given more than once ({', '.join(dict.fromkeys(same))})")
    return CompareResult(runs, diffs, tuple(notes))
