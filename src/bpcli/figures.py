"""Figures for animate and compare --out: one Agg figure, saved whole or not at all to the file named."""

from __future__ import annotations

import io
from pathlib import Path

from bpcli.errors import BpcliError

PICTURE_SUFFIXES = (".png", ".svg", ".pdf")


def new_figure(w: float, h: float):
    """A matplotlib Figure on its own Agg canvas (no pyplot, no window, no global backend switch)."""
    from bpcli.plot import require_matplotlib
    require_matplotlib()
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(w, h))
    FigureCanvasAgg(fig)
    return fig


def check_out_file(path: Path, option: str = "--out", suffixes: tuple[str, ...] = PICTURE_SUFFIXES) -> str:
    """The picture format of `path` from its suffix; BpcliError when the suffix or the folder will not do."""
    fmt = path.suffix.lower()
    if fmt not in suffixes:
        raise BpcliError(f"{option}: give a file ending in {', '.join(suffixes)}; found '{path.name}'")
    if path.is_dir():
        raise BpcliError(f"{option}: {path} is a folder; give a file name such as {path / ('picture' + suffixes[0])}")
    if not path.parent.is_dir():
        raise BpcliError(f"{option}: folder {path.parent} does not exist")
    return fmt[1:]


def save_picture(fig, path: Path, dpi: int = 100) -> None:
    """Write the figure to `path` in the format its suffix names, atomically (reproducible SVG and PDF)."""
    import matplotlib

    from bpcli.files import atomic_write_bytes

    fmt = path.suffix.lower()[1:]
    buf = io.BytesIO()
    meta = {"Date": None} if fmt == "svg" else {"CreationDate": None} if fmt == "pdf" else {}
    with matplotlib.rc_context({"svg.hashsalt": "bpcli", "svg.fonttype": "none"}):
        fig.savefig(buf, format=fmt, dpi=dpi, metadata=meta)
    atomic_write_bytes(path, buf.getvalue())
