"""Rich view of `bpcli plot` (PlotResult)."""

from __future__ import annotations

from pathlib import Path

from rich import box
from rich.console import Group
from rich.table import Table
from rich.text import Text


def plot_view(res) -> Group:
    """Which files were written, one row per plot, and what was skipped (PlotResult)."""
    head = Text.assemble(("plots of ", "bold"), (res.name, "bold"), f"  written to {res.out_dir}")
    t = Table(box=box.SIMPLE_HEAD, pad_edge=False)
    t.add_column("plot", no_wrap=True)
    t.add_column("shows")
    t.add_column("files", no_wrap=True)
    for f in res.files:
        title = f.title.removeprefix(f"{res.name}: ")
        t.add_row(f.kind, Text(title), Text(", ".join(Path(p).name for p in f.paths)))
    parts = [head, t]
    for s in res.skipped:
        parts.append(Text(f"skipped {s}", style="dim"))
    return Group(*parts)
