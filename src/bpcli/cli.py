"""The Typer app: parse options, call the core, print a view or JSON, pick the exit code.

Heavy imports (numpy and the engine) happen inside the commands, so `bpcli --help` stays quick.
"""

from __future__ import annotations

import contextlib
import functools
import json
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from bpcli import __version__
from bpcli.errors import EXIT_BAD_INPUT, EXIT_FAILED, EXIT_INTERRUPTED, BpcliError

app = typer.Typer(
    name="bpcli",
    help="Train small feed-forward networks and see the chain rule behind every gradient.\n\n"
    "Start with `bpcli train` (the built-in 2-2-1 seed network), then `bpcli show` for the "
    "parameter names and `bpcli explain --weight v1` for one weight's chain rule.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
    rich_markup_mode=None,  # plain Click help: Rich's help formatter costs ~0.2 s of imports at every start
)

# --- options defined once -------------------------------------------------------------------

TargetArg = Annotated[
    Optional[str],
    typer.Argument(help="A config file (.yaml) or a run folder. Default: the built-in seed network.",
                   show_default=False, metavar="CONFIG|RUN"),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON document on stdout instead of tables.")]
RunOpt = Annotated[Optional[Path], typer.Option("--run", help="A run folder made by `bpcli train`.",
                                                show_default=False)]
ConfigOpt = Annotated[Optional[Path], typer.Option("--config", help="A config file (same as the positional).",
                                                   show_default=False)]


def _stdout():
    from rich.console import Console
    return Console(highlight=False)


def _stderr():
    from rich.console import Console
    return Console(stderr=True, highlight=False)


def emit_json(obj: dict) -> None:
    """JSON on stdout, never through Rich (which wraps lines and eats [markup])."""
    from bpcli.results import finite_or_none
    print(json.dumps(finite_or_none(obj), indent=2, allow_nan=False))


def fail(message: str, code: int = EXIT_BAD_INPUT) -> None:
    """Print each line of `message` as an error on stderr and exit."""
    from rich.markup import escape

    from bpcli.errors import printable
    err = _stderr()
    for line in str(message).split("\n"):  # one problem per line; other line breaks are shown escaped
        err.print(f"[bold red]error:[/] {escape(printable(line))}", soft_wrap=True)
    raise typer.Exit(code)


def handles_errors(fn):
    """Turn BpcliError into one clear line per problem and its exit code; tracebacks stay for bugs."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except BpcliError as err:
            fail(str(err), err.exit_code)
        except KeyboardInterrupt:
            _stderr().print("interrupted")
            raise typer.Exit(EXIT_INTERRUPTED) from None

    return wrapper


def _version(value: bool) -> None:
    if value:
        print(f"bpcli {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    version: Annotated[bool, typer.Option("--version", help="Show the version and exit.", callback=_version,
                                          is_eager=True)] = False,
) -> None:
    """bpcli: backprop you can read."""


# --- loading what a command works on ---------------------------------------------------------


def load_target(target: Optional[str], config: Optional[Path] = None, run: Optional[Path] = None):
    """(cfg, net, prepared, run_dir) from a positional config-or-run, --config, --run, or the built-in seed."""
    from bpcli.config import build, load_config
    from bpcli.runs import load_run, prepare

    if sum(x is not None for x in (target, config, run)) > 1:
        raise BpcliError("give one of a positional CONFIG|RUN, --config or --run, not several")
    if target is not None:
        p = Path(target)
        if p.is_dir():
            run = p
        else:
            config = p
    if run is not None:
        loaded = load_run(run)
        return loaded.cfg, loaded.net, loaded.prepared, loaded.run_dir
    if config is not None and Path(config).name == "config.yaml" and (Path(config).parent / "weights.npz").exists():
        _stderr().print(f"note: {config} is a run's config, read at its initial weights; give the folder "
                        f"{Path(config).parent} for the trained ones", markup=False, soft_wrap=True)
    cfg, data = load_config(config)
    return cfg, build(cfg), prepare(cfg, data), None


# --- train -----------------------------------------------------------------------------------


@app.command()
@handles_errors
def train(
    target: Annotated[Optional[str], typer.Argument(
        help="Config file. Default: the built-in seed network (2-2-1 sigmoid learning XOR).",
        show_default=False, metavar="CONFIG")] = None,
    epochs: Annotated[Optional[int], typer.Option(help="Override train.epochs.", show_default=False)] = None,
    lr: Annotated[Optional[float], typer.Option(help="Override train.lr (learning rate).", show_default=False)] = None,
    batch_size: Annotated[Optional[int], typer.Option(help="Override train.batch_size (0 = full batch).",
                                                      show_default=False)] = None,
    seed: Annotated[Optional[int], typer.Option(help="Override both init.seed and train.seed.",
                                                show_default=False)] = None,
    out: Annotated[Optional[Path], typer.Option(help="Run folder to write (default: runs/<name>, never reused).",
                                                show_default=False)] = None,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Allow --out to replace an existing run folder.")] = False,
    resume: Annotated[Optional[Path], typer.Option(help="Continue an interrupted run folder to its epoch count.",
                                                   show_default=False)] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No network table and no progress bar.")] = False,
    json_out: JsonOpt = False,
) -> None:
    """Train a network from a YAML config and write a run folder (weights, history, metrics).

    Shows the network, a progress bar on stderr, then a summary with a loss sparkline.
    Exit 0 when trained, 1 when the loss diverged, 130 when interrupted (the run is saved).
    """
    import dataclasses
    import math
    import signal

    from bpcli.config import load_config
    from bpcli.runs import load_run, new_run_dir, run_training

    if resume is not None:
        if target is not None:
            raise BpcliError("--resume continues a run folder; give no CONFIG with it")
        loaded = load_run(resume)
        if loaded.state.status in ("completed", "early_stopped", "diverged"):
            raise BpcliError(f"{resume}: the run is already {loaded.state.status.replace('_', ' ')}; nothing to resume")
        cfg, run_dir = loaded.cfg, loaded.run_dir
        data = None
    else:
        loaded = None
        if target is not None and (Path(target) / "config.yaml").is_file():
            raise BpcliError(f"{target}: is a run folder, not a config; continue it with `bpcli train --resume "
                             f"{target}` or train its config afresh with `bpcli train {Path(target) / 'config.yaml'}`")
        cfg, data = load_config(target)
    tr = cfg.train
    changes: dict = {}
    if epochs is not None:
        if not 1 <= epochs <= 10_000_000:
            raise BpcliError(f"--epochs: must be between 1 and 10000000, found {epochs}")
        if loaded is not None and epochs <= loaded.state.epoch:
            raise BpcliError(f"--epochs: the run has already trained {loaded.state.epoch} epochs; "
                             f"give more than that to continue it, found {epochs}")
        changes["epochs"] = epochs
    if lr is not None:
        if not math.isfinite(lr) or lr <= 0 or lr > 1e6:
            raise BpcliError(f"--lr: must be a number above 0 and at most 1e6, found {lr}")
        changes["lr"] = lr
    if batch_size is not None:
        if batch_size < 0:
            raise BpcliError(f"--batch-size: must be 0 (full batch) or more, found {batch_size}")
        m = data.m if data is not None else loaded.prepared.train.m
        if batch_size > m:
            raise BpcliError(f"--batch-size: {batch_size} is larger than the {m} samples; use at most {m}")
        changes["batch_size"] = batch_size or None
    if seed is not None:
        if seed < 0:
            raise BpcliError(f"--seed: must be 0 or more, found {seed}")
        if loaded is not None:
            raise BpcliError("--seed cannot change a run being resumed")
        changes["seed"] = seed
        cfg = dataclasses.replace(cfg, init=dataclasses.replace(cfg.init, seed=seed))
    if changes:
        cfg = dataclasses.replace(cfg, train=dataclasses.replace(tr, **changes))
    fresh_dir = False  # a folder this command creates, removed again if training fails before any checkpoint
    if loaded is None:
        if out is not None:
            fresh_dir = not out.exists()
            if out.exists() and (not out.is_dir() or any(out.iterdir())) and not overwrite:
                raise BpcliError(f"--out: {out} already exists; choose another folder or add --overwrite")
            if out.exists() and out.is_dir() and overwrite and not (out / "config.yaml").exists() and any(out.iterdir()):
                raise BpcliError(f"--out: {out} is not a run folder; refusing to overwrite it")
            try:
                out.mkdir(parents=True, exist_ok=True)
            except OSError as e:
                raise BpcliError(f"--out: cannot create {out}: {e.strerror}") from None
            run_dir = out
        else:
            run_dir = new_run_dir(Path("runs"), cfg.name)
            fresh_dir = True

    err = _stderr()
    if data is not None and data.note and not quiet:
        from rich.markup import escape
        err.print(f"data: {escape(data.note)}", soft_wrap=True)
    show_progress = not quiet
    if not quiet and not json_out:
        from bpcli.render.show import show_view
        from bpcli.show import describe
        from bpcli.config import build
        _stdout().print(show_view(describe(build(cfg), cfg.name, cfg.path), compact=True))

    stop = {"signal": None}

    def on_signal(signum, frame):
        stop["signal"] = signum

    old = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        if show_progress:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            from bpcli.render import fmt
            cols = [TextColumn("epoch"), MofNCompleteColumn(), BarColumn(bar_width=24),
                    TextColumn("{task.fields[info]}"), TimeRemainingColumn()]
            with Progress(*cols, console=err, transient=False) as progress:
                task = progress.add_task("train", total=cfg.train.epochs, info="",
                                         completed=loaded.state.epoch if loaded else 0)

                import time
                last = [0.0]

                def on_epoch(rec):
                    # Rich redraws ~10 times a second: format and update no more often than that
                    now = time.perf_counter()
                    if now - last[0] < 0.05 and rec.epoch < cfg.train.epochs:
                        return
                    last[0] = now
                    info = f"loss {fmt(rec.loss, 4)}"
                    if rec.val_loss is not None:
                        info += f"  val {fmt(rec.val_loss, 4)}"
                    progress.update(task, completed=rec.epoch, info=info)

                result = run_training(cfg, data, run_dir, on_epoch, lambda: stop["signal"] is not None, loaded)
                if result.history:  # the last epoch may have fallen between two updates
                    progress.update(task, completed=result.epochs, info=f"loss {fmt(result.history[-1].loss, 4)}")
        else:
            result = run_training(cfg, data, run_dir, None, lambda: stop["signal"] is not None, loaded)
    except BaseException:
        if fresh_dir and run_dir.is_dir() and not any(run_dir.iterdir()):
            run_dir.rmdir()  # failed before the first checkpoint: leave no empty run folder behind
        raise
    finally:
        for s, h in old.items():
            signal.signal(s, h)

    if json_out:
        emit_json(result.to_dict())
    else:
        from bpcli.render.train import train_view
        _stdout().print(train_view(result))
    if result.status == "diverged":
        fail(f"{result.message}; last finite weights saved in {result.run_dir}", EXIT_FAILED)
    if result.status == "interrupted":
        err.print(f"interrupted: state after epoch {result.epochs} saved in {result.run_dir}; "
                  f"continue with `bpcli train --resume {result.run_dir}`", soft_wrap=True, markup=False)
        raise typer.Exit(EXIT_INTERRUPTED if stop["signal"] == signal.SIGINT else 128 + int(stop["signal"]))


# --- show ------------------------------------------------------------------------------------


@app.command()
@handles_errors
def show(
    target: TargetArg = None,
    sample: Annotated[Optional[int], typer.Option(
        help="Follow training sample I (1-based) forward and backward: z, output and delta dL/dz per node.",
        show_default=False, metavar="I")] = None,
    format_: Annotated[str, typer.Option("--format", help="text (tables) or dot (Graphviz graph on stdout).")] = "text",
    dot: Annotated[bool, typer.Option("--dot", help="Same as --format dot.")] = False,
    out: Annotated[Optional[Path], typer.Option(
        help="Write the graph to FILE: .dot/.gv as text, .svg/.png/.pdf rendered with Graphviz (implies --dot).",
        show_default=False, metavar="FILE")] = None,
    render: Annotated[bool, typer.Option(
        "--render", help="Render the graph to network.svg (in the run folder, else here) with Graphviz.")] = False,
    json_out: JsonOpt = False,
) -> None:
    """List the layers, every parameter name with its value, and the network diagram.

    This is how to learn which names `bpcli explain --weight NAME` accepts.

    --sample I follows one training sample: z, output and delta dL/dz of every node. --dot prints a Graphviz graph whose edges carry the weight names and values (with --sample, also each weight's gradient for that sample); --out FILE.svg or --render draws it with Graphviz.
    """
    from bpcli.render.show import show_view
    from bpcli.show import describe, trace_sample

    if format_ not in ("text", "dot"):
        raise BpcliError(f"--format: expected text or dot, found '{format_}'")
    as_dot = dot or format_ == "dot" or out is not None or render
    if out is not None and render:
        raise BpcliError("give --out FILE or --render, not both")
    cfg, net, prepared, run_dir = load_target(target)
    res = describe(net, cfg.name, str(run_dir) if run_dir else cfg.path)
    if sample is not None:
        tr = prepared.train
        import dataclasses
        res = dataclasses.replace(res, sample=trace_sample(net, tr.x, tr.y, sample, prepared.scaling))
    if not as_dot:
        if json_out:
            emit_json(res.to_dict())
        else:
            _stdout().print(show_view(res))
        return
    from bpcli.dot import TEXT_SUFFIXES, network_dot, render_dot

    text = network_dot(net, cfg.name, res.sample)
    if out is None and not render:
        if json_out:
            emit_json(res.to_dict() | {"dot": text})
        else:
            sys.stdout.write(text)
        return
    if render:
        stem = "network" if sample is None else f"network-sample-{sample}"
        out = (run_dir or Path(".")) / f"{stem}.svg"
    if out.suffix.lower() in TEXT_SUFFIXES:
        from bpcli.runs import atomic_write_text
        if not out.parent.is_dir():
            raise BpcliError(f"--out: folder {out.parent} does not exist")
        atomic_write_text(out, text)
        how = "DOT text"
    else:
        how = f"{render_dot(text, out).upper()} rendered with Graphviz dot"
    if json_out:
        emit_json(res.to_dict() | {"written": str(out), "dot": text})
    else:
        _stderr().print(f"wrote {out} ({how})", soft_wrap=True, markup=False)


# --- init ------------------------------------------------------------------------------------


@app.command()
@handles_errors
def init(
    path: Annotated[Path, typer.Argument(help="Where to write the starter config.")] = Path("bpcli.yaml"),
    example: Annotated[str, typer.Option(help="Which shipped example to start from (see `bpcli init --list`).")] = "seed",
    list_: Annotated[bool, typer.Option("--list", help="List the shipped examples and exit.")] = False,
    force: Annotated[bool, typer.Option("--force", help="Replace an existing file.")] = False,
) -> None:
    """Write a commented starter config, copied from one of the shipped examples."""
    from bpcli.config import builtin_config_dir
    from bpcli.errors import did_you_mean
    from bpcli.runs import atomic_write_text

    shipped = {p.stem: p for p in sorted(builtin_config_dir().glob("*.yaml"))}
    if list_:
        for name, p in shipped.items():
            first = next((ln[2:].strip() for ln in p.read_text().splitlines() if ln.startswith("# ")), "")
            print(f"{name:<16} {first}")
        return
    if example not in shipped:
        raise BpcliError(f"--example: no example '{example}'{did_you_mean(example, shipped)}; "
                         f"choose one of: {', '.join(shipped)}")
    if path.exists() and not force:
        raise BpcliError(f"{path} already exists; choose another path or add --force")
    if path.parent and not path.parent.exists():
        raise BpcliError(f"{path.parent}: folder does not exist")
    text = shipped[example].read_text()
    atomic_write_text(path, text)
    copied = []
    import re
    for m in re.finditer(r"^\s*csv:\s*(\S+)", text, re.M):
        src = builtin_config_dir() / m.group(1)
        dst = path.parent / m.group(1)
        if src.exists() and not dst.exists():
            atomic_write_text(dst, src.read_text())
            copied.append(str(dst))
    err = _stderr()
    err.print(f"wrote {path}" + (f" and {', '.join(copied)}" if copied else ""), soft_wrap=True, markup=False)
    err.print(f"next: bpcli train {path}", soft_wrap=True, markup=False)


# --- explain ---------------------------------------------------------------------------------

EXPLAIN_FORMATS = {"text": "text", "markdown": "markdown", "md": "markdown", "latex": "latex", "tex": "latex"}


def split_names(values: list[str]) -> list[str]:
    """'v1,w11' and repeated options -> ['v1', 'w11']; a comma inside brackets (w[1,2]) stays."""
    import re
    names: list[str] = []
    for v in values:
        for part in re.split(r",(?![^\[]*\])", v):
            part = part.strip()
            if part and part not in names:
                names.append(part)
    return names


# --- plot and inspect --------------------------------------------------------------

RunArg = Annotated[Path, typer.Argument(help="A run folder made by `bpcli train`.", show_default=False,
                                        metavar="RUN")]


@app.command()
@handles_errors
def explain(
    target: TargetArg = None,
    weight: Annotated[list[str], typer.Option(
        "--weight", "-w", show_default=False, metavar="NAME",
        help="Required. The parameter to explain: v1, w11, w[1,2], b_A1 ... (see `bpcli show`). Repeat it or separate with commas.")] = None,
    config: ConfigOpt = None,
    run: RunOpt = None,
    sample: Annotated[Optional[int], typer.Option(
        help="Show sample I (1 = the first) in full: every factor's formula with its numbers, every layer's "
             "deltas.", show_default=False, metavar="I")] = None,
    paths: Annotated[bool, typer.Option("--paths", help="List every path from the parameter to the loss as a "
                                        "product of factors (at most 64 paths) and show that they add up.")] = False,
    json_out: JsonOpt = False,
    format_: Annotated[str, typer.Option("--format", help="text (tables), markdown (with $$ MathJax) or latex: "
                                         "the derivation with numbers, ready to paste.")] = "text",
) -> None:
    """Show the chain rule for a weight or bias: each factor of dC/dw with its value, sample by sample.

    The mean of the per-sample products is the gradient, checked against the engine's backward pass and a central difference.
    Then comes the gradient-descent step. Without CONFIG or --run: the built-in seed network.
    Exit 0 when the checks agree, 1 when the numeric check disagrees or a value is not finite, 3 when it is only inconclusive (the step cannot move the cost), 2 for bad input such as an unknown name.
    """
    from bpcli.explain import explain_many

    names = split_names(weight or [])
    if not names:
        raise BpcliError("--weight: give the parameter to explain, e.g. --weight v1 (`bpcli show` lists the names)")
    fmt_name = EXPLAIN_FORMATS.get(format_.lower())
    if fmt_name is None:
        from bpcli.errors import did_you_mean
        raise BpcliError(f"--format: unknown format '{format_}'{did_you_mean(format_, EXPLAIN_FORMATS)}; "
                         "choose text, markdown or latex")
    if json_out and fmt_name != "text":
        raise BpcliError("--json and --format are alternatives; give one of them")
    if sample is not None and sample < 1:
        raise BpcliError(f"--sample: samples are numbered from 1, found {sample}")
    cfg, net, prepared, run_dir = load_target(target, config, run)
    data = prepared.train
    report = explain_many(net, data.x, data.y, names, cfg.train.lr, None if sample is None else sample - 1, paths,
                          optimizer=cfg.train.optimizer, weight_decay=cfg.train.weight_decay, title=cfg.name,
                          source=str(run_dir) if run_dir else cfg.path, scaled=prepared.scaling is not None)
    if json_out:
        emit_json(report.to_dict())
    elif fmt_name == "markdown":
        from bpcli.render.explain_doc import explain_markdown
        print(explain_markdown(report), end="")
    elif fmt_name == "latex":
        from bpcli.render.explain_doc import explain_latex
        print(explain_latex(report), end="")
    else:
        from bpcli.render.explain import explain_view
        _stdout().print(explain_view(report))
    if report.exit_code:
        fail("\n".join(report.problems()), report.exit_code)


@app.command()
@handles_errors
def plot(
    run: RunArg,
    format_: Annotated[str, typer.Option("--format", help="png, svg or both.")] = "both",
    out: Annotated[Optional[Path], typer.Option(help="Folder for the images (default: the run folder).",
                                                show_default=False)] = None,
    dpi: Annotated[int, typer.Option(help="Resolution of the PNG files.")] = 100,
    only: Annotated[Optional[str], typer.Option(
        help="Comma-separated plots to draw: loss, metric, gradients, dynamics, boundary, surface, fit.",
        show_default=False)] = None,
    json_out: JsonOpt = False,
) -> None:
    """Draw a run as PNG/SVG files in its folder: loss and metric curves, gradient norm per layer, update speed and saturated units per layer, and the decision boundary (two inputs), regression surface or fitted curve.

    Needs matplotlib: pip install 'bpcli[plot]'.
    """
    from bpcli.plot import plot_run, require_matplotlib
    from bpcli.runs import load_run

    formats = {"png": ("png",), "svg": ("svg",), "both": ("png", "svg")}.get(format_.lower())
    if formats is None:
        raise BpcliError(f"--format: expected png, svg or both, found '{format_}'")
    if not 10 <= dpi <= 600:
        raise BpcliError(f"--dpi: must be between 10 and 600, found {dpi}")
    require_matplotlib()
    kinds = tuple(k.strip() for k in only.split(",") if k.strip()) if only is not None else None
    res = plot_run(load_run(run), out, formats, dpi, kinds)
    if json_out:
        emit_json(res.to_dict())
    else:
        from bpcli.render.plot import plot_view
        _stdout().print(plot_view(res))


@app.command()
@handles_errors
def inspect(
    run: RunArg,
    check: Annotated[bool, typer.Option("--check", help="Exit 1 when anything is flagged.")] = False,
    json_out: JsonOpt = False,
) -> None:
    """Say why a trained network learns or does not: vanishing or exploding gradients, saturated or dead units, layers that hardly move, each with the epoch where it started.

    Reads the run's history.json (per layer and epoch: gradient norm, update-to-weight ratio, share of saturated or dead units). Try it on the shipped deep_sigmoid and deep_relu examples. Exit 0, or 1 with --check when anything is flagged.
    """
    from bpcli.dynamics import inspect_run
    from bpcli.runs import load_run

    loaded = load_run(run)
    res = inspect_run(loaded.net, loaded.history, loaded.cfg.name, str(loaded.run_dir), loaded.state.status)
    if json_out:
        emit_json(res.to_dict())
    else:
        from bpcli.render.inspect import inspect_view
        _stdout().print(inspect_view(res))
    if check and not res.healthy:
        raise typer.Exit(EXIT_FAILED)


# --- gradcheck -------------------------------------------------------------------------------


@app.command()
@handles_errors
def gradcheck(
    target: TargetArg = None,
    config: ConfigOpt = None,
    run: RunOpt = None,
    samples: Annotated[Optional[int], typer.Option(
        help="Check on N samples of the training data (a seeded random subset). Default: all, at most 64.",
        show_default=False)] = None,
    eps: Annotated[float, typer.Option(help="Central-difference step: (C(w + eps) - C(w - eps)) / 2 eps; "
                                       "from 1e-9 to 1e-3.")] = 1e-5,
    tol: Annotated[float, typer.Option(help="Pass line: an entry passes when its relative error is at most this.")]
    = 1e-4,
    all_: Annotated[bool, typer.Option("--all", help="Check every entry, however many (default: a sample above "
                                                     "5000 parameters, plus random directions).")] = False,
    directional: Annotated[Optional[bool], typer.Option(
        "--directional/--entries",
        help="Only random directions (a handful of passes whatever the size), or only entry by entry. "
             "Default: entries, plus directions above 5000 parameters.", show_default=False)] = None,
    directions: Annotated[int, typer.Option(help="Random unit directions per parameter array.")] = 4,
    units: Annotated[bool, typer.Option("--units", help="Also check every registered activation and loss on its "
                                                        "own, to pin a broken derivative to its function.")] = False,
    weight: Annotated[Optional[list[str]], typer.Option(
        "--weight", "-w", metavar="NAME", help="Only these parameters (repeat or separate with commas; names as in `bpcli show`).",
        show_default=False)] = None,
    seed: Annotated[int, typer.Option(help="Seed for the sample subset, sampled entries and directions.")] = 0,
    rows: Annotated[int, typer.Option(help="Entries to list in the table (all of them are in --json).")] = 20,
    json_out: JsonOpt = False,
) -> None:
    """Compare every backprop gradient with central differences, in float64.

    Per parameter: backprop's value, the numeric one, the relative error |a - n| / max(|a|, |n|, floor) and a verdict: good below 1e-7, ok below 1e-4, suspicious below 1e-2, wrong above, or kink when the step crosses a point where an activation or the loss has no derivative (not a failure).

    An entry is "not finite" (fails) when either value is inf or NaN, and "inconclusive" when the check cannot say: the step does not change the cost, eps is below what float64 resolves at the weight, or both values are within the rounding noise while they differ.

    Exit 0 when everything passes, 1 when something fails, 3 when nothing fails but something is inconclusive, 2 on bad input (eps outside 1e-9 to 1e-3, tol outside 1e-10 to 1e-2, samples outside 1 to 100000, directions outside 1 to 1000).
    """
    from bpcli.gradcheck import GradcheckOptions, check, estimate_seconds

    if all_ and directional:
        raise BpcliError("--all checks every entry; it cannot be combined with --directional")
    if rows < 0:
        raise BpcliError(f"--rows: must be 0 or more, found {rows}")
    names = tuple(split_names(weight or []))
    if weight and not names:
        raise BpcliError("--weight: give at least one parameter name (see `bpcli show`)")
    mode = "auto" if directional is None else ("directional" if directional else "entries")
    opts = GradcheckOptions(eps=eps, tol=tol, mode=mode, all_entries=all_, directions=directions, weights=names,
                            seed=seed, **({"samples": samples} if samples is not None else {}))
    opts.validate()  # before loading anything: bad options are exit 2 whatever the target
    cfg, net, prepared, run_dir = load_target(target, config, run)
    data = prepared.train
    checks, seconds = estimate_seconds(net, data.x.shape[0], opts)
    with _gradcheck_progress(checks, seconds) as tick:
        report = check(net, data.x, data.y, opts, cfg.name, str(run_dir) if run_dir else cfg.path, units=units,
                       progress=tick)
    if json_out:
        emit_json(report.to_dict())
    else:
        from bpcli.render.gradcheck import gradcheck_view
        _stdout().print(gradcheck_view(report, max_rows=rows))
    if report.exit_code:
        raise typer.Exit(report.exit_code)


@contextlib.contextmanager
def _gradcheck_progress(checks: int, seconds: float):
    """A progress bar on stderr for a check estimated at 2 s or more; yields the core's progress callback."""
    if seconds < 2:
        yield None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    err = _stderr()
    err.print(f"gradcheck: {checks} entries and directions to difference, about {seconds:.0f} s", soft_wrap=True)
    with Progress(TextColumn("gradcheck"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                  console=err, transient=True) as bar:
        task = bar.add_task("gradcheck", total=checks)
        yield lambda done, total: bar.update(task, completed=done, total=total)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
