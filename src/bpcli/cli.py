"""The Typer app: parse options, call the core, print a view or JSON, pick the exit code.

Heavy imports (numpy and the engine) happen inside the commands, so `bpcli --help` stays quick.
"""

from __future__ import annotations

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
    rich_markup_mode="rich",
)

# --- options defined once -------------------------------------------------------------------

TargetArg = Annotated[
    Optional[str],
    typer.Argument(help="A config file (.yaml) or a run folder. Default: the built-in seed network.",
                   show_default=False, metavar="[CONFIG|RUN]"),
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
    cfg, data = load_config(config)
    return cfg, build(cfg), prepare(cfg, data), None


# --- train -----------------------------------------------------------------------------------


@app.command()
@handles_errors
def train(
    target: Annotated[Optional[str], typer.Argument(
        help="Config file. Default: the built-in seed network (2-2-1 sigmoid learning XOR).",
        show_default=False, metavar="[CONFIG]")] = None,
    epochs: Annotated[Optional[int], typer.Option(help="Override train.epochs.", show_default=False)] = None,
    lr: Annotated[Optional[float], typer.Option(help="Override train.lr (learning rate).", show_default=False)] = None,
    batch_size: Annotated[Optional[int], typer.Option(help="Override train.batch_size (0 = full batch).",
                                                      show_default=False)] = None,
    seed: Annotated[Optional[int], typer.Option(help="Override both init.seed and train.seed.",
                                                show_default=False)] = None,
    out: Annotated[Optional[Path], typer.Option(help="Run folder to write (default: runs/<name>, never reused).",
                                                show_default=False)] = None,
    overwrite: Annotated[bool, typer.Option(help="Allow --out to replace an existing run folder.")] = False,
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
        _stdout().print(show_view(describe(build(cfg), cfg.name, cfg.path), max_params=12))

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

                def on_epoch(rec):
                    info = f"loss {fmt(rec.loss, 4)}"
                    if rec.val_loss is not None:
                        info += f"  val {fmt(rec.val_loss, 4)}"
                    progress.update(task, completed=rec.epoch, info=info)

                result = run_training(cfg, data, run_dir, on_epoch, lambda: stop["signal"] is not None, loaded)
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
        from rich.markup import escape
        err.print(escape(f"interrupted: state after epoch {result.epochs} saved in {result.run_dir}; "
                         f"continue with `bpcli train --resume {result.run_dir}`"), soft_wrap=True)
        raise typer.Exit(EXIT_INTERRUPTED if stop["signal"] == signal.SIGINT else 128 + int(stop["signal"]))


# --- show ------------------------------------------------------------------------------------


@app.command()
@handles_errors
def show(target: TargetArg = None, json_out: JsonOpt = False) -> None:
    """List the layers, every parameter name with its value, and the network diagram.

    This is how to learn which names `bpcli explain --weight NAME` accepts.
    """
    from bpcli.render.show import show_view
    from bpcli.show import describe

    cfg, net, _, run_dir = load_target(target)
    res = describe(net, cfg.name, str(run_dir) if run_dir else cfg.path)
    if json_out:
        emit_json(res.to_dict())
    else:
        _stdout().print(show_view(res))


# --- init ------------------------------------------------------------------------------------


@app.command()
@handles_errors
def init(
    path: Annotated[Path, typer.Argument(help="Where to write the starter config.")] = Path("bpcli.yaml"),
    example: Annotated[str, typer.Option(help="Which shipped example to start from (see `bpcli init --list`).")] = "seed",
    list_: Annotated[bool, typer.Option("--list", help="List the shipped examples and exit.")] = False,
    force: Annotated[bool, typer.Option(help="Replace an existing file.")] = False,
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
    err.print(f"wrote {path}" + (f" and {', '.join(copied)}" if copied else ""))
    err.print(f"next: bpcli train {path}")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
