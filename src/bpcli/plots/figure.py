"""What every `bpcli plot` figure shares: the run's numbers, a blank figure, margins, legend placement, saving.

Layout is done by hand in inches (no tight_layout: it measures every tick label once more per figure), and
a legend either sits in a corner of the axes that no data reaches or moves outside the axes, never on a curve.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from bpcli.plots.figure_text import plain

# margins in inches: room for the y tick labels and label on the left, the x label below, the title above
LEFT, RIGHT, BOTTOM, TOP, GAP = 0.85, 0.2, 0.55, 0.4, 0.12


@dataclass(frozen=True)
class PlotContext:
    """The run as the figure builders need it; `epochs` numbers the history rows."""
    name: str
    net: object  # model.Network
    prepared: object  # data.Prepared
    history: list[dict]
    epochs: list[int]
    best_epoch: int | None
    _memo: dict = field(default_factory=dict, compare=False, repr=False)

    @property
    def letters(self) -> list[str]:
        """'A (sigmoid)' for each layer."""
        return [f"{la.letter} ({la.activation.name})" for la in self.net.layers]

    def series(self, key: str, layer: int | None = None) -> list[float | None]:
        """One number per history row (or per row and layer); None where missing or not finite."""
        if (key, layer) in self._memo:
            return self._memo[key, layer]
        out = []
        for h in self.history:
            v = h.get(key)
            if layer is not None:
                v = v[layer] if isinstance(v, list) and layer < len(v) else None
            out.append(float(v) if isinstance(v, (int, float)) and math.isfinite(v) else None)
        self._memo[key, layer] = out
        return out


def xy(epochs: list[int], vals: list[float | None], positive: bool = False) -> tuple[list[int], list[float]]:
    """The points of a series that can be drawn (on a log axis only the positive ones)."""
    pts = [(e, v) for e, v in zip(epochs, vals) if v is not None and (v > 0 or not positive)]
    return [p[0] for p in pts], [p[1] for p in pts]


def wants_log(*series: list[float | None]) -> bool:
    """A log axis when every value is positive and they span more than a factor of 10."""
    vals = [v for s in series for v in s if v is not None]
    return bool(vals) and min(vals) > 0 and max(vals) / min(vals) > 10


def new_figure(w: float, h: float, rows: int = 1, sharex: bool = False):
    """(figure, list of axes) on an Agg canvas (no pyplot, no window, no global backend)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(w, h))
    FigureCanvasAgg(fig)
    axes = fig.subplots(rows, 1, sharex=sharex, squeeze=False)[:, 0]
    arrange(fig, right=RIGHT, bottom=BOTTOM)
    return fig, list(axes)


def labels(ax, title: str, xlabel: str | None = None, ylabel: str | None = None) -> None:
    """Title and axis labels; the title sits at a fixed height (no ticks on top), which spares matplotlib a
    search for tick labels above the axes at every draw."""
    ax.set_title(plain(title), y=1.0, pad=6)
    if xlabel is not None:
        ax.set_xlabel(plain(xlabel))
    if ylabel is not None:
        ax.set_ylabel(plain(ylabel))


def log_axis(ax) -> None:
    """A log y axis labelled in plain text (0.001, 1e-5): matplotlib's default 10^-3 labels go through its
    mathtext parser, which costs more CPU than the rest of a figure. Within two decades the 2s and 5s are
    ticked and labelled too; beyond, the powers of ten alone (each tick is a handful of artists to draw)."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullLocator

    ax.set_yscale("log")
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, pos: plain_number(v)))
    lo, hi = ax.get_ylim()
    if hi / lo <= 100:
        ax.yaxis.set_minor_locator(LogLocator(subs=(2.0, 5.0)))
        ax.yaxis.set_minor_formatter(FuncFormatter(lambda v, pos: plain_number(v)))
    else:
        ax.yaxis.set_minor_locator(NullLocator())


def plain_number(v: float) -> str:
    """0.001, 250, 1e-5, 2e+6: %g, with the exponent written short."""
    s = f"{v:g}"
    if "e" in s:
        mant, ex = s.split("e")
        s = f"{mant}e{int(ex)}"
    return s


def arrange(fig, right: float | None = None, bottom: float | None = None, hspace: float = 0.35) -> None:
    """Margins in inches turned into the figure's fractions (cheap, unlike a layout engine); a side not given
    keeps its margin (the defaults on a new figure)."""
    w, h = fig.get_size_inches()
    now = fig.subplotpars
    fig.subplots_adjust(left=LEFT / w, right=1 - right / w if right is not None else now.right,
                        bottom=bottom / h if bottom is not None else now.bottom, top=1 - TOP / h, hspace=hspace)


def margin(fig, side: str) -> float:
    """The current right or bottom margin in inches."""
    w, h = fig.get_size_inches()
    return (1 - fig.subplotpars.right) * w if side == "right" else fig.subplotpars.bottom * h


def legend_outside(fig, ax, where: str = "right", **kw):
    """The legend to the right of `ax`, or centred at the foot of the figure under the x label; the figure grows
    on that side to hold it, so the axes keep their size."""
    w, h = fig.get_size_inches()
    right, bottom = margin(fig, "right"), margin(fig, "bottom")
    if where == "right":
        leg = ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0, **kw)
        grow = _size_inches(fig, leg)[0] + 0.1
        fig.set_size_inches(w + grow, h)
        arrange(fig, right=right + grow, bottom=bottom)
        return leg
    foot = 0.05  # inches between the legend and the figure's lower edge
    n = len(ax.get_legend_handles_labels()[1])
    for ncol in [c for c in range(min(n, 4), 0, -1) if n % c == 0]:  # full rows, as many columns as fit
        leg = ax.legend(loc="lower center", borderaxespad=0.0, ncol=ncol, **kw)
        if _size_inches(fig, leg)[0] <= w - 0.1 or ncol == 1:
            break
        leg.remove()
    grow = _size_inches(fig, leg)[1] + foot
    fig.set_size_inches(w, h + grow)
    arrange(fig, right=right, bottom=bottom + grow)
    leg.set_bbox_to_anchor((0.5, foot / (h + grow)), transform=fig.transFigure)
    return leg


def legend_in_free_corner(fig, ax, **kw):
    """The legend in the first corner of `ax` that no line or point reaches, else outside on the right."""
    corners = ("upper right", "upper left", "lower right", "lower left")
    lines, points = data_in_axes(ax)
    for loc in corners:
        leg = ax.legend(loc=loc, **kw)
        box = _axes_box(fig, ax, leg)
        if not points_in_box(points, box).any() and not any(line_hits_box(line, box) for line in lines):
            return leg
        leg.remove()
    return legend_outside(fig, ax, **kw)


def _size_inches(fig, leg) -> tuple[float, float]:
    bb = leg.get_window_extent(fig.canvas.get_renderer())
    return bb.width / fig.dpi, bb.height / fig.dpi


def _axes_box(fig, ax, leg) -> tuple[float, float, float, float]:
    """The legend's box in axes fractions, grown by a small margin."""
    bb = leg.get_window_extent(fig.canvas.get_renderer()).transformed(ax.transAxes.inverted())
    pad = 0.01
    return bb.x0 - pad, bb.y0 - pad, bb.x1 + pad, bb.y1 + pad


def data_in_axes(ax) -> tuple[list[np.ndarray], np.ndarray]:
    """(every drawn line's vertices, every scatter point), in axes fractions: (0, 0) is the lower left corner."""
    ax.get_xlim(), ax.get_ylim()  # settle the autoscaled limits first
    to_axes = ax.transAxes.inverted()
    lines = []
    for line in ax.get_lines():
        pts = to_axes.transform(line.get_transform().transform(np.asarray(line.get_xydata(), dtype=float)))
        lines.append(pts[np.all(np.isfinite(pts), axis=1)])
    points = [to_axes.transform(c.get_offset_transform().transform(np.asarray(c.get_offsets(), dtype=float)))
              for c in ax.collections if len(c.get_offsets())]
    return lines, np.concatenate(points) if points else np.empty((0, 2))


def points_in_box(pts: np.ndarray, box: tuple[float, float, float, float]) -> np.ndarray:
    """Which points (n, 2) lie in the box (x0, y0, x1, y1)."""
    x0, y0, x1, y1 = box
    return (pts[:, 0] >= x0) & (pts[:, 0] <= x1) & (pts[:, 1] >= y0) & (pts[:, 1] <= y1)


def line_hits_box(pts: np.ndarray, box: tuple[float, float, float, float]) -> bool:
    """Whether the polyline through `pts` (n, 2) touches the box (x0, y0, x1, y1): a vertex inside, or a
    segment crossing it (Liang-Barsky clipping of all segments at once)."""
    if len(pts) == 0:
        return False
    if points_in_box(pts, box).any():
        return True
    x0, y0, x1, y1 = box
    p, d = pts[:-1], pts[1:] - pts[:-1]
    t0, t1 = np.zeros(len(p)), np.ones(len(p))
    for dk, lo, hi, pk in ((d[:, 0], x0, x1, p[:, 0]), (d[:, 1], y0, y1, p[:, 1])):
        with np.errstate(divide="ignore", invalid="ignore"):
            ta, tb = (lo - pk) / dk, (hi - pk) / dk
        flat, within = dk == 0, (pk >= lo) & (pk <= hi)  # a segment parallel to this side: in the slab or not
        t0 = np.where(flat, np.where(within, t0, 2.0), np.maximum(t0, np.minimum(ta, tb)))
        t1 = np.where(flat, np.where(within, t1, -1.0), np.minimum(t1, np.maximum(ta, tb)))
    return bool(np.any(t0 <= t1))


def save_figure(fig, out: Path, kind: str, formats: tuple[str, ...], dpi: int) -> tuple[str, ...]:
    """Write `fig` as out/<kind>.<format> for each format, atomically; returns the paths written."""
    import matplotlib

    from bpcli.files import write_output

    paths = []
    with matplotlib.rc_context({"svg.hashsalt": "bpcli", "svg.fonttype": "none"}):
        for fmt in formats:
            buf = io.BytesIO()
            fig.savefig(buf, format=fmt, dpi=dpi, metadata={"Date": None} if fmt == "svg" else {})
            path = out / f"{kind}.{fmt}"
            write_output(path, buf.getvalue(), True, "--out", example=f"{kind}.{fmt}")  # plot's own names: redrawn
            paths.append(str(path))
    return tuple(paths)
