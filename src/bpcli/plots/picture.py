"""Figures for animate and compare --out: one Agg figure, saved whole or not at all to the file named."""

from __future__ import annotations

import io
from pathlib import Path

from bpcli.errors import BpcliError

PICTURE_SUFFIXES = (".png", ".svg", ".pdf")


def new_figure(w: float, h: float):
    """A matplotlib Figure on its own Agg canvas (no pyplot, no window, no global backend switch)."""
    from bpcli.plots.plot import require_matplotlib
    require_matplotlib()
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(w, h))
    FigureCanvasAgg(fig)
    return fig


def check_out_file(path: Path, option: str = "--out", suffixes: tuple[str, ...] = PICTURE_SUFFIXES,
                   replace: bool = False) -> str:
    """The picture format of `path` from its suffix; BpcliError when the suffix or the path will not do
    (files.check_output: an existing file only with `replace`)."""
    from bpcli.files import check_output

    fmt = path.suffix.lower()
    if fmt not in suffixes:
        raise BpcliError(f"{option}: give a file ending in {', '.join(suffixes)}; found '{path.name}'")
    check_output(path, replace, option, example="picture" + suffixes[0])
    return fmt[1:]


def save_picture(fig, path: Path, dpi: int = 100, replace: bool = False) -> None:
    """Write the figure to `path` in the format its suffix names, whole or not at all (files.write_output; an
    existing file only with `replace`), reproducible SVG and PDF."""
    import matplotlib

    from bpcli.files import write_output

    fmt = path.suffix.lower()[1:]
    buf = io.BytesIO()
    meta = {"Date": None} if fmt == "svg" else {"CreationDate": None} if fmt == "pdf" else {}
    with matplotlib.rc_context({"svg.hashsalt": "bpcli", "svg.fonttype": "none"}):
        fig.savefig(buf, format=fmt, dpi=dpi, metadata=meta)
    write_output(path, buf.getvalue(), replace)
