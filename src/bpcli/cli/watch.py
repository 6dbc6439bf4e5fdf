"""The commands that watch learning over time: compare (runs side by side) and animate (a run's epochs)."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Annotated, Optional

import typer

from bpcli.cli.common import (
    LATEST, ForceOpt, JsonOpt, RunArg, check_dpi, check_range, emit_json, handles_errors, out_console, progress_bar,
)


@handles_errors
def compare(
    runs: Annotated[list[Path], typer.Argument(help="Two or more run folders made by `bpcli train`.",
                                               show_default=False, metavar="RUN RUN...")],
    out: Annotated[Optional[Path], typer.Option(
        "--out", "-o", help="Also draw every run's loss and metric curves, overlaid, into FILE (.png, .svg or .pdf).",
        show_default=False, metavar="FILE")] = None,
    dpi: Annotated[int, typer.Option(help="Resolution of a PNG picture.")] = 100,
    force: ForceOpt = False,
    json_out: JsonOpt = False,
) -> None:
    """Set runs side by side: what differs in their configs (as dotted keys: train.lr), their final numbers and each run's `bpcli inspect` verdict.

    Runs are columns (the best final loss and metric in green); runs that do not fit the terminal's width are shown in groups. --out FILE.png overlays their curves.
    """
    from bpcli.analysis.compare import compare_runs

    fmt = None
    if out is not None:
        from bpcli.plots.picture import check_out_file
        from bpcli.plots.plot import require_matplotlib
        fmt = check_out_file(out, replace=force)
        require_matplotlib()
    check_dpi(dpi)
    from bpcli.runs.latest import resolve_run
    res = compare_runs([resolve_run(r) for r in runs])
    if fmt is not None:
        from bpcli.plots.compare import compare_figure
        from bpcli.plots.picture import save_picture
        save_picture(compare_figure(res), out, dpi, force)
        res = dataclasses.replace(res, written=(str(out),))
    if json_out:
        emit_json(res.to_dict())
    else:
        from bpcli.render.compare import compare_view
        out_console().print(compare_view(res))


@handles_errors
def animate(
    run: RunArg = LATEST,
    out: Annotated[Optional[Path], typer.Option(
        "--out", "-o", help="The file to write: .gif (Pillow), .svg (animated with SMIL, plays in a browser) or .mp4 (needs "
             "ffmpeg). Default: learn.gif in the run folder.", show_default=False, metavar="FILE")] = None,
    frames: Annotated[int, typer.Option(help="At most this many frames, evenly spread over the run's kept "
                                             "snapshots (the first and the last always among them).")] = 100,
    fps: Annotated[int, typer.Option(help="Frames per second.")] = 10,
    dpi: Annotated[int, typer.Option(help="Resolution of GIF and MP4 frames (80: 720 x 336 pixels).")] = 80,
    force: ForceOpt = False,
    json_out: JsonOpt = False,
) -> None:
    """Animate a run: the network diagram epoch by epoch (edge width = |weight|, dashed when negative; colour = the gradient dC/dw, red positive, blue negative) beside the loss curve.

    The frames come from the weight snapshots `bpcli train` keeps; each frame's gradients are computed again at its weights on the training data. Needs matplotlib: pip install 'bpcli[plot]'.
    """
    from bpcli.plots.animate import animate_run, check_out
    from bpcli.plots.plot import require_matplotlib

    for option, value, lo, hi in (("--frames", frames, 1, 1000), ("--fps", fps, 1, 60), ("--dpi", dpi, 20, 300)):
        check_range(option, value, lo, hi)
    require_matplotlib()
    if out is not None:
        check_out(out, force)  # before loading anything: a .mp4 without ffmpeg is one line at once
    loaded, traj = _run_and_trajectory(run)
    target = out if out is not None else loaded.run_dir / "learn.gif"
    with progress_bar("animate", "frames") as tick:
        res = animate_run(loaded.net, loaded.cfg.name, loaded.prepared.train, loaded.history, traj, target,
                          frames, fps, dpi, str(loaded.run_dir), tick, replace=force)
    if json_out:
        emit_json(res.to_dict())
    else:
        from bpcli.render.animate import animate_view
        out_console().print(animate_view(res))


def _run_and_trajectory(run: Path):
    """The run (`latest` resolved, checked as every command checks it) and its kept weight snapshots; BpcliError
    when it keeps none."""
    from bpcli.runs.latest import resolve_run
    from bpcli.runs.snapshots import trajectory
    from bpcli.runs.store import load_run

    loaded = load_run(resolve_run(run))
    return loaded, trajectory(loaded)  # the run as loaded: not read a second time

