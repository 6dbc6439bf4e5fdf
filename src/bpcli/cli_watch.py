"""The commands that watch learning over time: compare (runs side by side) and animate (a run's epochs)."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Annotated, Optional

import typer

from bpcli.cli_common import JsonOpt, emit_json, handles_errors, out_console
from bpcli.errors import BpcliError


@handles_errors
def compare(
    runs: Annotated[list[Path], typer.Argument(help="Two or more run folders made by `bpcli train`.",
                                               show_default=False, metavar="RUN RUN...")],
    out: Annotated[Optional[Path], typer.Option(
        help="Also draw every run's loss and metric curves, overlaid, into FILE (.png, .svg or .pdf).",
        show_default=False, metavar="FILE")] = None,
    dpi: Annotated[int, typer.Option(help="Resolution of a PNG picture.")] = 100,
    json_out: JsonOpt = False,
) -> None:
    """Set runs side by side: what differs in their configs (as dotted keys: train.lr), their final numbers and each run's `bpcli inspect` verdict.

    Runs are columns (the best final loss and metric in green); runs that do not fit the terminal's width are shown in groups. --out FILE.png overlays their curves.
    """
    from bpcli.compare import compare_runs

    fmt = None
    if out is not None:
        from bpcli.figures import check_out_file
        from bpcli.plot import require_matplotlib
        fmt = check_out_file(out)
        require_matplotlib()
    if not 10 <= dpi <= 600:
        raise BpcliError(f"--dpi: must be between 10 and 600, found {dpi}")
    res = compare_runs(runs)
    if fmt is not None:
        from bpcli.compare_plot import compare_figure
        from bpcli.figures import save_figure
        save_figure(compare_figure(res), out, dpi)
        res = dataclasses.replace(res, written=(str(out),))
    if json_out:
        emit_json(res.to_dict())
    else:
        from bpcli.render.compare import compare_view
        out_console().print(compare_view(res))
