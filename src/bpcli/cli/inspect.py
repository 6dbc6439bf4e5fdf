"""The commands that look at a network or a run: show, plot and inspect."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from bpcli.cli.common import (
    LATEST, EpochOpt, ForceOpt, JsonOpt, RunArg, TargetArg, check_dpi, emit_json, emit_text, err_console,
    handles_errors, load_target, out_console, resolve_weights, source_of, split_names,
)
from bpcli.errors import EXIT_FAILED, BpcliError


# --- show ------------------------------------------------------------------------------------


@handles_errors
def show(
    target: TargetArg = None,
    epoch: EpochOpt = None,
    sample: Annotated[Optional[int], typer.Option(
        help="Follow training sample I (1-based) forward and backward: z, output and delta dL/dz per node.",
        show_default=False, metavar="I")] = None,
    format_: Annotated[str, typer.Option("--format", help="text (tables) or dot (Graphviz graph on stdout).")] = "text",
    dot: Annotated[bool, typer.Option("--dot", help="Same as --format dot.")] = False,
    out: Annotated[Optional[Path], typer.Option(
        "--out", "-o", help="Write the graph to FILE: .dot/.gv as text, .svg/.png/.pdf rendered with Graphviz (implies --dot).",
        show_default=False, metavar="FILE")] = None,
    render: Annotated[bool, typer.Option(
        "--render", help="Render the graph to network.svg (in the run folder, else here) with Graphviz.")] = False,
    force: ForceOpt = False,
    all_: Annotated[bool, typer.Option("--all", help="List every parameter (the table stops at 60 otherwise).")
                    ] = False,
    json_out: JsonOpt = False,
) -> None:
    """List the layers, every parameter name with its value, and the network diagram.

    This is how to learn which names `bpcli explain --weight NAME` accepts.

    --sample I follows one training sample: z, output and delta dL/dz of every node. --dot prints a Graphviz graph whose edges carry the weight names and values (with --sample, also each weight's gradient for that sample); --out FILE.svg or --render draws it with Graphviz.
    """
    from bpcli.render.show import show_view
    from bpcli.analysis.show import describe, trace_sample

    if format_ not in ("text", "dot"):
        raise BpcliError(f"--format: expected text or dot, found '{format_}'")
    as_dot = dot or format_ == "dot" or out is not None or render
    if out is not None and render:
        raise BpcliError("give --out FILE or --render, not both")
    cfg, net, prepared, run_dir = load_target(target, epoch=epoch)
    from bpcli.data.labels import class_names_of
    res = describe(net, cfg.name, str(run_dir) if run_dir else cfg.path,
                   classes=class_names_of(prepared.train, net.n_outputs, numbered=False))
    import dataclasses
    if run_dir is not None:
        from bpcli.runs.snapshots import kept_summary
        from bpcli.runs.store import run_status
        status, stepped = run_status(run_dir)  # the run's, whatever --epoch shows
        res = dataclasses.replace(res, snapshots=kept_summary(run_dir, cfg, net), epoch=epoch, status=status,
                                  stepped=stepped)
    if sample is not None:
        tr = prepared.train
        res = dataclasses.replace(res, sample=trace_sample(net, tr.x, tr.y, sample, prepared.scaling))
    if not as_dot:
        if json_out:
            emit_json(res.to_dict())
        else:
            out_console().print(show_view(res, max_params=len(res.params) if all_ else 60))
        return
    from bpcli.analysis.dot import TEXT_SUFFIXES, network_dot, render_dot

    text = network_dot(net, cfg.name, res.sample)
    if out is None and not render:
        if json_out:
            emit_json(res.to_dict() | {"dot": text})
        else:
            emit_text(text)
        return
    if render:
        stem = "network" if sample is None else f"network-sample-{sample}"
        out = (run_dir or Path(".")) / f"{stem}.svg"
    option = "--out" if not render else "--render"
    reads = tuple(p for p in (target,) if p is not None and not Path(p).is_dir())  # a config file shown
    if out.suffix.lower() in TEXT_SUFFIXES:
        from bpcli.files import write_output
        try:
            write_output(out, text, force, option, reads=reads, example="network.dot")
        except OSError as err:
            raise BpcliError(f"--out: cannot write {out} ({err.strerror})") from None
        how = "DOT text"
    else:
        how = f"{render_dot(text, out, force, option, reads).upper()} rendered with Graphviz dot"
    if json_out:
        emit_json(res.to_dict() | {"written": str(out), "dot": text})
    else:
        err_console().print(f"wrote {out} ({how})", soft_wrap=True, markup=False)


# --- plot and inspect --------------------------------------------------------------


@handles_errors
def plot(
    run: RunArg = LATEST,
    format_: Annotated[str, typer.Option("--format", help="png, svg or both.")] = "png",
    out: Annotated[Optional[Path], typer.Option(
        "--out", "-o", help="Folder for the images, created when missing (default: the run folder).", show_default=False)] = None,
    dpi: Annotated[int, typer.Option(help="Resolution of the PNG files.")] = 100,
    only: Annotated[Optional[str], typer.Option(
        help="Comma-separated plots to draw: loss, metric, gradients, dynamics, boundary, surface, fit.",
        show_default=False)] = None,
    weights: Annotated[Optional[list[str]], typer.Option(
        "--weight", "-w", metavar="NAMES", show_default=False,
        help="Draw these parameters (v1,w11 ...) and their gradients over the kept epochs (weights.png), and "
             "their layers' histograms (histograms.png); other plots only with --only.")] = None,
    layer: Annotated[Optional[list[str]], typer.Option(
        "--layer", metavar="A", show_default=False,
        help="The same for every parameter of layer A (its histograms only, above 24 parameters).")] = None,
    weights_old: Annotated[Optional[list[str]], typer.Option("--weights", hidden=True, help="The old name of --weight.")
                           ] = None,
    json_out: JsonOpt = False,
) -> None:
    """Draw a run as PNG files (or SVG) in its folder: loss and metric curves, gradient norm per layer, update speed and saturated units per layer, and the decision boundary (two inputs), regression surface or fitted curve.

    Needs matplotlib: pip install 'bpcli[plot]'.
    """
    from bpcli.plots.plot import check_kinds, plot_run, require_matplotlib
    from bpcli.runs.store import load_run

    weights = [*(weights or []), *(weights_old or [])] or None
    formats = {"png": ("png",), "svg": ("svg",), "both": ("png", "svg")}.get(format_.lower())
    if formats is None:
        raise BpcliError(f"--format: expected png, svg or both, found '{format_}'")
    check_dpi(dpi)
    kinds = tuple(k.strip() for k in only.split(",") if k.strip()) if only is not None else None
    check_kinds(kinds)
    require_matplotlib(load=False)
    say = (lambda text: None) if json_out else _progress_line(err_console())
    from bpcli.runs.latest import resolve_run
    run = resolve_run(run)
    say(f"plot: reading {run} and loading matplotlib")
    loaded = load_run(run)
    names, layers = split_names(weights or []), split_names(layer or [])
    resolve_weights(loaded.net, names)  # every name checked before anything is read or drawn
    ext = "/".join(formats)

    def progress(kind: str, i: int, n: int) -> None:
        say(f"plot: drawing {kind}.{ext} ({i} of {n})")

    try:
        if weights or layer:
            from bpcli.plots.weights import plot_weights
            res = plot_weights(loaded, names, layers, out, formats, dpi, kinds, progress)
        else:
            res = plot_run(loaded, out, formats, dpi, kinds, progress)
    except OSError as err:
        where = err.filename or (out if out is not None else loaded.run_dir)
        raise BpcliError(f"{'--out' if out is not None else 'plot'}: cannot write {where} ({err.strerror})") from None
    if json_out:
        emit_json(res.to_dict())
    else:
        from bpcli.render.plot import plot_view
        out_console().print(plot_view(res))


def _progress_line(console):
    """One plain line on stderr per step (user text unescaped as markup, never wrapped)."""
    return lambda text: console.print(text, markup=False, highlight=False, soft_wrap=True)


@handles_errors
def inspect(
    run: RunArg = LATEST,
    epoch: EpochOpt = None,
    check: Annotated[bool, typer.Option("--check", help="Exit 1 when anything is flagged.")] = False,
    json_out: JsonOpt = False,
) -> None:
    """Say why a trained network learns or does not: vanishing or exploding gradients, saturated or dead units, layers that hardly move, each with the epoch where it started.

    Reads the run's history (a sample of at most ~2,000 epochs; per layer and epoch: gradient norm, update-to-weight ratio, share of saturated or dead units). Try it on the shipped deep_sigmoid and deep_relu examples. Exit 0, or 1 with --check when anything is flagged.
    """
    from bpcli.analysis.inspect import inspect_run
    from bpcli.runs.latest import resolve_run
    from bpcli.runs.store import load_run, run_status, status_of

    loaded = load_run(resolve_run(run), epoch)
    where = source_of(loaded.run_dir, epoch, "")
    status, stepped = status_of(loaded.state, loaded.run_dir), loaded.state.stepped
    if epoch is not None:
        status, stepped = run_status(loaded.run_dir)  # the run's, whatever --epoch shows (as show says it)
        total = loaded.metrics.get("epochs")
        if isinstance(total, int) and epoch < total:  # a snapshot: the run went on
            status = f"a snapshot; the run {status.replace('_', ' ')} at epoch {total}"
    res = inspect_run(loaded.net, loaded.history, loaded.cfg.name, where, status, stepped, str(loaded.run_dir))
    if json_out:
        emit_json(res.to_dict())
    else:
        from bpcli.render.inspect import inspect_view
        out_console().print(inspect_view(res))
    if check and not res.healthy:
        raise typer.Exit(EXIT_FAILED)
