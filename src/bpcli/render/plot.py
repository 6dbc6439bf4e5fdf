"""Rich view of `bpcli plot` (PlotResult)."""

from __future__ import annotations

from pathlib import Path

from rich.console import Group
from rich.text import Text


def plot_view(res) -> Group:
    """Which files were written, one line per plot with what it shows, and what was skipped (PlotResult)."""
    head = Text.assemble(("plots of ", "bold"), (res.name, "bold"), f", written to {res.out_dir}")
    names = [", ".join(Path(p).name for p in f.paths) for f in res.files]
    width = max((len(n) for n in names), default=0)
    rows = [Text.assemble("  ", (n.ljust(width), "bold"), "  ", f.title.removeprefix(f"{res.name}: "))
            for n, f in zip(names, res.files)]
    skipped = [Text(f"skipped {s}", style="dim") for s in res.skipped]
    return Group(head, *rows, *skipped)
