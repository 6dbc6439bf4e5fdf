"""bpcli plot: loss, metric, per-layer gradient curves and the decision boundary of a run, as PNG/SVG files.

matplotlib is an optional extra (`pip install 'bpcli[plot]'`), imported only when a plot is drawn, and only the
Agg canvas is used (no pyplot, no window, no global backend switch). One builder per kind of plot (PLOTS) makes a
figure from a PlotContext; plot_run picks the kinds that fit the run, saves each with save_figure and reports.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from bpcli.errors import ArgumentError, BpcliError
from bpcli.plots.curves import (dynamics_figure, gradients_figure, loss_figure, lr_figure, metric_figure, no_history,
                               no_lr, no_metric)
from bpcli.plots.data_plots import boundary_figure, fit_figure, skip_data, surface_figure
from bpcli.plots.figure import PlotContext, save_figure

FORMATS = ("png", "svg")


class MissingExtraError(BpcliError):
    """An optional dependency is not installed."""


@dataclass(frozen=True)
class PlotKind:
    """One kind of plot: `skip` says why it does not fit a run (None: draw it; "": say nothing), `build`
    returns (figure, title)."""
    name: str
    skip: Callable[[PlotContext], str | None]
    build: Callable[[PlotContext], tuple]
    what: str  # how a skip message names it


PLOTS = (
    PlotKind("loss", no_history, loss_figure, "loss"),
    PlotKind("metric", no_metric, metric_figure, "metric"),
    PlotKind("lr", no_lr, lr_figure, "learning rate"),
    PlotKind("gradients", no_history, gradients_figure, "gradients"),
    PlotKind("dynamics", no_history, dynamics_figure, "dynamics"),
    PlotKind("boundary", skip_data("boundary"), boundary_figure, "decision boundary"),
    PlotKind("surface", skip_data("surface"), surface_figure, "regression surface"),
    PlotKind("fit", skip_data("fit"), fit_figure, "fitted curve"),
)
KINDS = tuple(p.name for p in PLOTS)


@dataclass(frozen=True)
class PlotFile:
    kind: str  # one of KINDS
    title: str
    paths: tuple[str, ...]


@dataclass(frozen=True)
class PlotResult:
    name: str
    run_dir: str
    out_dir: str
    files: tuple[PlotFile, ...]
    skipped: tuple[str, ...]  # plots not drawn, with the reason

    def to_dict(self) -> dict:
        return {
            "command": "plot", "name": self.name, "run_dir": self.run_dir, "out_dir": self.out_dir,
            "plots": [{"kind": f.kind, "title": f.title, "files": list(f.paths)} for f in self.files],
            "skipped": list(self.skipped),
        }


def require_matplotlib(load: bool = True):
    """The matplotlib module, or MissingExtraError with the one-line install hint; with load=False only
    whether it is installed is checked (cheap: the import itself takes about a second)."""
    import importlib.util

    hint = "plotting needs matplotlib: pip install 'bpcli[plot]'"
    try:
        found = importlib.util.find_spec("matplotlib") is not None
    except (ImportError, ValueError):
        found = False
    if not found:
        raise MissingExtraError(hint)
    if not load:
        return None
    try:
        import matplotlib
        from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: F401
    except ImportError:
        raise MissingExtraError(hint) from None
    return matplotlib


def check_kinds(only: tuple[str, ...] | None) -> None:
    """BpcliError for a name in --only that is no kind of plot."""
    from bpcli.errors import did_you_mean
    bad = [k for k in only or () if k not in KINDS]
    if bad:
        raise ArgumentError("only", f"unknown plot '{bad[0]}'{did_you_mean(bad[0], KINDS)}; choose from {', '.join(KINDS)}")


def context(loaded) -> PlotContext:
    history = loaded.history
    return PlotContext(name=loaded.cfg.name, net=loaded.net, prepared=loaded.prepared, history=history,
                       epochs=[int(h.get("epoch", i + 1)) for i, h in enumerate(history)],
                       best_epoch=loaded.state.best_epoch)


def make_folder(out: Path) -> None:
    """Create the output folder (and its parents) unless it exists; a file in the way is bad input."""
    if out.is_dir():
        return
    if out.exists():
        raise ArgumentError("out", f"{out} is a file, not a folder")
    try:
        out.mkdir(parents=True)
    except FileExistsError:  # a parent is a file, or a race with another process
        raise ArgumentError("out", f"cannot create the folder {out} (a file is in the way)") from None


def plot_run(loaded, out_dir: str | Path | None = None, formats: tuple[str, ...] = FORMATS, dpi: int = 100,
             only: tuple[str, ...] | None = None,
             progress: Callable[[str, int, int], None] | None = None) -> PlotResult:
    """Draw every plot that fits the run (or those in `only`) into `out_dir` (default: the run folder, created
    when missing). Files are written atomically, named <kind>.<format>; `progress(kind, i, n)` is called before
    the i-th of the n plots is drawn."""
    check_kinds(only)
    require_matplotlib()
    out = Path(out_dir) if out_dir is not None else Path(loaded.run_dir)
    make_folder(out)
    ctx = context(loaded)
    todo, skipped = [], []
    for p in PLOTS:
        if only is not None and p.name not in only:
            continue
        why = p.skip(ctx)
        if why is None:
            todo.append(p)
        elif why:
            skipped.append((p.what, why))
    files = []
    for i, p in enumerate(todo, 1):
        if progress is not None:
            progress(p.name, i, len(todo))
        fig, title = p.build(ctx)
        files.append(PlotFile(p.name, title, save_figure(fig, out, p.name, formats, dpi)))
    reasons = {why: [w for w, y in skipped if y == why] for _, why in skipped}  # one line per reason
    said = tuple(f"{', '.join(whats)}: {why}" for why, whats in reasons.items())
    return PlotResult(ctx.name, str(loaded.run_dir), str(out), tuple(files), said)
