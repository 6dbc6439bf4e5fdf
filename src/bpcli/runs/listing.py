"""bpcli runs: the run folders in a folder, newest first, from run.json and metrics.json alone.

No weights, data or history are read, so listing stays quick however large the runs are. A folder that is not
a run, or whose files do not check out, gets a short status instead ("damaged: ...").
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from bpcli.errors import BpcliError
from bpcli.runs.latest import created_at, newest_first, quick_manifest, run_folders


@dataclass(frozen=True)
class RunRow:
    name: str  # the folder's name
    path: str
    created: str  # ISO 8601, UTC
    status: str  # completed, early_stopped, ..., or "damaged: ..." / "not a run folder" / "format 1 ..."
    ok: bool  # a bpcli run whose run.json and metrics.json check out
    epochs: int | None = None
    metric: str | None = None  # accuracy or r2
    loss: float | None = None
    val_loss: float | None = None
    train_metric: float | None = None
    val_metric: float | None = None
    config: str | None = None  # the config it was trained from (None for runs from before it was recorded)
    problem: str | None = None  # what is wrong with a folder that is not ok, in full
    steps: int | None = None  # status "stepped": the steps `bpcli step --out` took to make it

    def to_dict(self) -> dict:
        return {"name": self.name, "path": self.path, "created": self.created, "status": self.status, "ok": self.ok,
                "epochs": self.epochs, "metric": self.metric, "loss": self.loss, "val_loss": self.val_loss,
                "train_metric": self.train_metric, "val_metric": self.val_metric, "config": self.config,
                "problem": self.problem, "steps": self.steps}


@dataclass(frozen=True)
class RunsList:
    folder: str
    runs: tuple[RunRow, ...]  # newest first

    def to_dict(self) -> dict:
        return {"command": "runs", "folder": self.folder, "runs": [r.to_dict() for r in self.runs]}


def list_runs(folder: str | Path = "runs") -> RunsList:
    """Every folder in `folder` as a RunRow, the newest run first; BpcliError when `folder` is no folder."""
    base = Path(folder)
    if not base.exists():
        raise BpcliError(f"{base}: no such folder; runs are saved in runs/ by `bpcli train` (or give the folder)")
    if not base.is_dir():
        raise BpcliError(f"{base}: is a file, not a folder of runs")
    rows = [read_row(d) for d in run_folders(base)]
    order = newest_first([(Path(r.path), r.created) for r in rows])
    by_path = {r.path: r for r in rows}
    return RunsList(str(base), tuple(by_path[str(p)] for p, _ in order))


def read_row(d: Path) -> RunRow:
    """One folder's row: run.json (its own checksum and fields) and the checkpoint's metrics.json (its SHA-256)."""
    from bpcli.files import read_regular, sha256
    from bpcli.runs.values import metrics_from_json
    from bpcli.runs.store import (MAX_JSON, METRICS, checkpoint_dir, parse_json, read_manifest, state_from_meta,
                                  status_of)

    quick = quick_manifest(d)
    created = created_at(d, quick)

    def bad(status: str, problem: str | None = None) -> RunRow:
        return RunRow(d.name, str(d), created, status, False, problem=problem or status)

    if quick is None:
        if (d / "train_state.json").is_file():
            return bad("format 1 (an older bpcli)")
        if not (d / "run.json").exists() and not (d / "run.json").is_symlink():
            return bad("not a run folder")
        return bad("damaged: run.json unreadable", _unreadable(d / "run.json"))
    try:
        m = read_manifest(d)
        state = state_from_meta(m, d / "run.json")  # epoch, status and the rest by type and range, as loading does
        metrics_path = checkpoint_dir(d) / METRICS
        blob = read_regular(metrics_path, MAX_JSON, METRICS)
        if sha256(blob) != m["files"][METRICS]:
            return bad(f"damaged: {METRICS} does not match run.json")
        metrics = metrics_from_json(parse_json(metrics_path, blob), metrics_path)
    except BpcliError as err:
        return bad("damaged: " + _short(str(err), d), str(err))
    num = lambda k: metrics.get(k) if isinstance(metrics.get(k), (int, float)) and not isinstance(
        metrics.get(k), bool) else None
    epochs = m.get("epoch") if isinstance(m.get("epoch"), int) else None
    status = status_of(state, d)  # "stepped" (as `bpcli step --out` left it), "killed" (no process trains into it)
    steps = state.stepped
    return RunRow(d.name, str(d), created, status, True, epochs,
                  metrics.get("metric") if isinstance(metrics.get("metric"), str) else None, num("loss"),
                  num("val_loss"), num("train_metric"), num("val_metric"),
                  m.get("config") if isinstance(m.get("config"), str) else None,
                  steps=steps if status == "stepped" else None)


def _unreadable(path: Path) -> str | None:
    """Why run.json could not be read (a FIFO, a device, a folder, too large), when it is a matter of the file."""
    from bpcli.runs.latest import MAX_MANIFEST
    from bpcli.files import NotReadable, read_capped
    try:
        read_capped(path, MAX_MANIFEST, "run manifest", follow=False)
    except NotReadable as err:
        return str(err)
    return None


def _short(message: str, d: Path) -> str:
    """The file a RunFolderError names, for a short status: 'run.json', 'metrics.json' (the message in full is
    the row's problem)."""
    first = message.splitlines()[0] if message else ""
    path = first.split(": ")[0]
    return Path(path).name if path.startswith(str(d)) and path != str(d) else "unreadable"
