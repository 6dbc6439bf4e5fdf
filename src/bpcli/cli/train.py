"""The commands that make and train configs: train and init."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from bpcli.cli.common import JsonOpt, emit_json, err_console, fail, handles_errors, out_console
from bpcli.errors import EXIT_FAILED, EXIT_INTERRUPTED, BpcliError, Interrupted


# --- train -----------------------------------------------------------------------------------


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
    out: Annotated[Optional[Path], typer.Option("--out", "-o", help="Run folder to write (default: runs/<name>, never reused).",
                                                show_default=False)] = None,
    force: Annotated[bool, typer.Option("--force", help="Let --out replace an existing run folder (only one bpcli wrote, "
                                        "holding nothing else).")] = False,
    overwrite: Annotated[bool, typer.Option("--overwrite", hidden=True, help="The old name of --force.")] = False,
    resume: Annotated[Optional[Path], typer.Option(help="Continue an interrupted run folder to its epoch count.",
                                                   show_default=False)] = None,
    from_epoch: Annotated[Optional[int], typer.Option(
        "--from-epoch", metavar="N", show_default=False,
        help="With --resume RUN and --out NEW: a new run branched from RUN's snapshot of epoch N, trained on to "
             "the epoch count (bit for bit what RUN did); RUN is left as it is.")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No network table and no progress bar.")] = False,
    json_out: JsonOpt = False,
    history: Annotated[bool, typer.Option("--history", help="With --json: add every epoch's row of history.csv "
                                          "(by default the JSON is the summary with the first and last epochs).")
                       ] = False,
    target_column: Annotated[Optional[str], typer.Option(
        "--target", metavar="COLUMN", show_default=False,
        help="CONFIG is a CSV file: predict this column from the others, with a config made to fit it (classes "
             "or numbers, read from the column).")] = None,
    hidden: Annotated[Optional[str], typer.Option(
        metavar="SIZES", show_default=False, help="With --target: the hidden layers' sizes, e.g. 8,8 (default 8).")
    ] = None,
    activation: Annotated[Optional[str], typer.Option(
        metavar="NAME", show_default=False, help="With --target: the hidden layers' activation (default tanh).")
    ] = None,
    print_config: Annotated[bool, typer.Option("--print-config", help="With --target: print the config made for "
                                               "the CSV file and exit (save it to edit and train it).")] = False,
) -> None:
    """Train a network from a YAML config and write a run folder (weights, history, metrics).

    Shows the network, a progress bar on stderr, then a summary: the settings used (optimiser, learning rate, batches, epochs, seeds, weight decay, early stopping; the run folder's config.yaml holds them too), the loss at the final weights and the curve of each epoch's loss.
    A warning on stderr when the loss ended higher than it started.
    With a CSV file and --target COLUMN, the config is made for it: classes (text labels, or few whole
    numbers) get softmax + cross_entropy (one sigmoid + binary_cross_entropy for two classes), numbers an
    identity output + squared_error; the run folder's config.yaml records it like any other run.
    Exit 0 when trained, 1 when the loss diverged, 130 when interrupted (the run is saved).
    """
    from bpcli.runs import session
    from bpcli.runs.latest import resolve_run

    overwrite = overwrite or force
    if history and not json_out:
        raise BpcliError("--history adds every epoch to the JSON document; give --json with it "
                         "(the table's history is in the run folder's history.csv)")
    text = _config_text(target, target_column, hidden, activation, epochs, lr, print_config)
    if text is not None:
        if print_config:
            print(text, end="")
            return
        epochs = lr = None  # in the config already
    s = session.open_session(target, epochs=epochs, lr=lr, batch_size=batch_size, seed=seed, out=out,
                             overwrite=overwrite, resume=resolve_run(resume), from_epoch=from_epoch,
                             config_text=text)
    err = err_console()
    _show_network(s, err, quiet, json_out)
    result = session.train(s) if quiet else _train_with_progress(s, err)
    _report_saved(result, s, json_out, err, history)


def _config_text(target: str | None, target_column: str | None, hidden: str | None, activation: str | None,
                 epochs: int | None, lr: float | None, print_config: bool) -> str | None:
    """The config made for a CSV file with --target COLUMN; None without --target (whose own flags are then
    refused)."""
    if target_column is not None:
        return _csv_config(target, target_column, hidden, activation, epochs, lr)
    given = [flag for flag, v in (("--hidden", hidden), ("--activation", activation),
                                  ("--print-config", print_config or None)) if v is not None]
    if given:
        raise BpcliError(f"{given[0]}: makes a config for a CSV file; give the column to predict with "
                         "--target COLUMN")
    return None


def _show_network(s, err, quiet: bool, json_out: bool) -> None:
    """Before training: the data's note on stderr and the network table on stdout (neither with --quiet; no
    table with --json)."""
    if s.data is not None and s.data.note and not quiet:
        from rich.markup import escape
        err.print(f"data: {escape(s.data.note)}", soft_wrap=True)
    if not quiet and not json_out:
        from bpcli.nn.model import build
        from bpcli.render.show import show_view
        from bpcli.analysis.show import describe
        out_console().print(show_view(describe(build(s.cfg), s.cfg.name, s.cfg.path), compact=True))


def _train_with_progress(s, err):
    """session.train with a progress bar on stderr: the epoch count and each epoch's loss."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from bpcli.render.numbers import fmt
    from bpcli.runs import session
    cols = [TextColumn("epoch"), MofNCompleteColumn(), BarColumn(bar_width=20),
            TextColumn("{task.fields[info]}"), TimeRemainingColumn()]
    with Progress(*cols, console=err, transient=False) as progress:
        task = progress.add_task("train", total=s.cfg.train.epochs, info="", completed=s.start_epoch)

        def on_epoch(rec):  # the epoch's loss, as the summary's curve shows it
            info = f"epoch loss {fmt(rec.loss, 4)}"
            if rec.val_loss is not None:
                info += f"  val {fmt(rec.val_loss, 4)}"
            progress.update(task, completed=rec.epoch, info=info)

        return session.train(s, on_epoch)


def _report_saved(result, s, json_out: bool, err, history: bool) -> None:
    """The report, printed once the run is saved: a signal while printing says where the run is."""
    import signal

    def saved(signum, frame):  # the run is saved: a signal while printing says so
        raise Interrupted(signum, f"the run is saved in {result.run_dir}")

    old = {sig: signal.signal(sig, saved) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        _report(result, s, json_out, err, history)
    finally:
        for sig, handler in old.items():
            signal.signal(sig, handler)


def _csv_config(path: str | None, target: str, hidden: str | None, activation: str | None,
                epochs: int | None, lr: float | None) -> str:
    """The YAML text of the config made for CSV file `path` predicting column `target` (config_csv)."""
    from bpcli.config.from_csv import DEFAULTS, csv_config, csv_config_text, parse_hidden

    from bpcli.nn.activations import get_activation
    from bpcli.config.loader import load_config, with_overrides
    from bpcli.errors import ConfigError

    if path is None:
        raise BpcliError("--target: give the CSV file to train on (bpcli train data.csv --target COLUMN)")
    with_overrides(load_config()[0], epochs=epochs, lr=lr)  # the ranges a config has, named by option
    act = DEFAULTS["activation"]
    if activation is not None:
        try:
            act = get_activation(activation, where="--activation").name
        except ConfigError as err:
            raise BpcliError(err.problems[0]) from None
        if act == "softmax":
            raise BpcliError("--activation: softmax is for the output layer only (bpcli picks the output layer)")
    sizes = DEFAULTS["hidden"] if hidden is None else parse_hidden(hidden)
    doc, kind = csv_config(path, target, hidden=sizes, activation=act,
                           epochs=epochs, lr=lr)
    return csv_config_text(doc, kind)


def _report(result, s, json_out: bool, err, history: bool = False) -> None:
    """The summary (or JSON), a warning when the loss rose, then the exit code of a diverged or interrupted run."""
    import signal

    if json_out:
        rows = None
        if history:  # every epoch the checkpoint vouches for, its bytes checked against run.json's SHA-256
            from bpcli.runs.history import read_prefix
            from bpcli.runs.store import read_manifest
            recorded = read_manifest(Path(result.run_dir))["history"]
            _, records = read_prefix(Path(result.run_dir) / recorded["file"], recorded,
                                     [layer.letter for layer in s.cfg.layers], recorded["rows"])
            rows = [r.to_dict() for r in records]
        emit_json(result.to_dict(rows))
    else:
        from bpcli.render.train import train_view
        out_console().print(train_view(result))
    if result.loss_rose and result.status in ("completed", "early_stopped"):  # a finished run that made things worse
        from bpcli.render.train import rose_text
        from bpcli.render.wrap import Prose
        err.print(Prose(f"warning: {rose_text(result)}", hang=4))  # wrapped between terms at the terminal's width
    if not json_out and result.status in ("completed", "early_stopped"):
        import shlex
        out_console().print(f"saved to {result.run_dir} (bpcli show {shlex.quote(str(result.run_dir))})",
                            markup=False, soft_wrap=True)
    if result.status == "diverged":
        fail(f"{result.message}; last finite weights saved in {result.run_dir}", EXIT_FAILED)
    if result.status == "interrupted":
        err.print(f"interrupted: state after epoch {result.epochs} saved in {result.run_dir}; "
                  f"continue with `bpcli train --resume {result.run_dir}`", soft_wrap=True, markup=False)
        raise typer.Exit(EXIT_INTERRUPTED if s.signal == signal.SIGINT else 128 + int(s.signal or signal.SIGINT))


# --- init ------------------------------------------------------------------------------------


@handles_errors
def init(
    path: Annotated[Path, typer.Argument(help="Where to write the starter config.",
                                         metavar="PATH")] = Path("bpcli.yaml"),
    example: Annotated[str, typer.Option(help="Which shipped example to start from (see `bpcli init --list`).")] = "seed",
    list_: Annotated[bool, typer.Option("--list", help="List the shipped examples and exit.")] = False,
    force: Annotated[bool, typer.Option("--force", help="Replace an existing file.")] = False,
    json_out: JsonOpt = False,
) -> None:
    """Write a commented starter config, copied from one of the shipped examples.

    A config that reads a CSV file gets the file copied beside it. The shipped examples are also the
    repository's configs/ folder (a link to src/bpcli/configs): `bpcli init --example NAME PATH` is the way
    to get one anywhere.
    """
    from bpcli.config.loader import builtin_config_dir
    from bpcli.errors import did_you_mean
    import os

    from bpcli.files import write_output
    from bpcli.training.results import InitResult, example_summary

    shipped = {p.stem: p for p in sorted(builtin_config_dir().glob("*.yaml"))}
    if list_:
        res = InitResult(examples=tuple((name, example_summary(p.read_text())) for name, p in shipped.items()))
        if json_out:
            emit_json(res.to_dict())
        else:
            from bpcli.render.train import examples_view
            out_console().print(examples_view(res))
        return
    if example not in shipped:
        raise BpcliError(f"--example: no example '{example}'{did_you_mean(example, shipped)}; "
                         f"choose one of: {', '.join(shipped)}")
    text = shipped[example].read_text()
    try:
        write_output(path, text, force, "", example="bpcli.yaml")
    except OSError as err:
        raise BpcliError(f"{path}: cannot write ({err.strerror})") from None
    copied = []
    from bpcli.config.loader import load_config
    csv = load_config(shipped[example])[0].data.csv  # the data file as the config parser resolves it
    for rel in [Path(csv).relative_to(shipped[example].resolve().parent)] if csv else []:
        src = builtin_config_dir() / rel
        dst = path.parent / rel
        if src.exists() and not os.path.lexists(dst):  # a data file already there is the user's: kept
            try:
                write_output(dst, src.read_text(), False, "")
            except OSError as err:
                raise BpcliError(f"{dst}: cannot write ({err.strerror})") from None
            copied.append(str(dst))
    res = InitResult(example, str(path), tuple(copied))
    if json_out:
        emit_json(res.to_dict())
        return
    err = err_console()
    err.print(f"wrote {path}" + (f" and {', '.join(copied)}" if copied else ""), soft_wrap=True, markup=False)
    err.print(f"next: bpcli train {path}", soft_wrap=True, markup=False)
