"""The commands that use what was trained: predict, evaluate and runs."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from bpcli.cli.common import ForceOpt, JsonOpt, emit_json, err_console, handles_errors, out_console
from bpcli.errors import BpcliError

UseRunArg = Annotated[Path, typer.Argument(
    help="A run folder made by `bpcli train`, or latest (the newest in runs/; FOLDER/latest: the newest in FOLDER).",
    show_default=False, metavar="RUN")]
DataArg = Annotated[Optional[str], typer.Argument(
    help="A CSV file with a header row naming the run's input columns (other columns are carried through), or - "
         "for stdin. Default: the run's own data.", show_default=False, metavar="DATA")]


EvalDataArg = Annotated[Optional[str], typer.Argument(
    help="A CSV file with the run's input columns and its target column(s), named as in the training data, or - for "
         "stdin. Default: the run's own data (see --part).", show_default=False, metavar="DATA")]


def _load(run: Path):
    from bpcli.runs.latest import resolve_run
    from bpcli.runs.store import load_run
    return load_run(resolve_run(run))


def _table(data: str):
    from bpcli.analysis.newdata import read_table
    stdin = getattr(sys.stdin, "buffer", sys.stdin)
    return read_table(data, stdin)


def _write_out(out: Path, text: str, force: bool, reads: tuple) -> None:
    """--out FILE, written whole or not at all, under files.write_output's rules."""
    from bpcli.files import write_output
    try:
        write_output(out, text, force, reads=reads, example="predictions.csv")
    except OSError as err:
        raise BpcliError(f"--out: cannot write {out} ({err.strerror})") from None


@handles_errors
def predict(
    run: UseRunArg,
    data: DataArg = None,
    out: Annotated[Optional[Path], typer.Option(
        "--out", "-o", help="Write the CSV (the JSON with --json) to FILE instead of stdout, whole or not at all; never over "
             "DATA, an existing file (without --force), a device or a symbolic link.",
        show_default=False, metavar="FILE")] = None,
    force: ForceOpt = False,
    json_out: JsonOpt = False,
) -> None:
    """Apply a trained run to new inputs: its saved scaling, then the network; one prediction per row.

    DATA names the run's input columns in its header (in any order; other columns are carried through to the output). Classification gives each row's class and each class's probability (p_CLASS), regression the predicted values.
    Prints CSV when stdout is a file or a pipe, a table on a terminal, or JSON with --json. Exit 2 on bad data: a missing column, a value that is not a number, NaN, a row with the wrong number of fields.
    """
    from bpcli.runs.latest import resolve_run
    from bpcli.analysis.predict import predict_own, predict_table

    run = resolve_run(run)
    reads = (run,) + (() if data is None or data == "-" else (Path(data),))  # never written over, even with --force
    if out is not None:
        from bpcli.files import check_output
        check_output(out, force, reads=reads, example="predictions.csv")  # before the work, and again when writing
    loaded = _load(run)
    res = predict_table(loaded, _table(data)) if data is not None else predict_own(loaded)
    if out is not None:
        import json
        from bpcli.training.results import finite_or_none
        text = json.dumps(finite_or_none(res.to_dict()), indent=2, allow_nan=False) + "\n" if json_out else res.to_csv()
        _write_out(out, text, force, reads)
        err_console().print(f"wrote {out} ({res.m} rows)", markup=False, soft_wrap=True)
    elif json_out:
        emit_json(res.to_dict())
    elif sys.stdout.isatty():
        from bpcli.render.predict import predict_view
        console = out_console()
        console.print(predict_view(res, console.width))
    else:
        sys.stdout.write(res.to_csv())


@handles_errors
def evaluate(
    run: UseRunArg,
    data: EvalDataArg = None,
    part: Annotated[Optional[str], typer.Option(
        help="Without DATA: which of the run's data, train, validation, test (data.test's held-out rows) or all "
             "(train and validation). Default: validation when the run holds some out, else train.",
        show_default=False, metavar="PART")] = None,
    all_classes: Annotated[bool, typer.Option(
        "--all-classes", help="Average over every class of the run, also those neither in the data nor "
                              "predicted (default: the classes present, as scikit-learn).")] = False,
    threshold: Annotated[Optional[float], typer.Option(
        help="One sigmoid output: the class is the second where y' >= this (default 0.5); the confusion matrix, "
             "accuracy and per-class scores follow it.", show_default=False, metavar="T")] = None,
    json_out: JsonOpt = False,
) -> None:
    """Score a trained run on labelled data: loss, accuracy, balanced accuracy and ROC-AUC with a confusion matrix and per-class precision, recall and F1 (classification), or R^2 and mean absolute error (regression).

    The numbers equal scikit-learn's: confusion_matrix (rows: true class), classification_report (0 where a ratio is 0/0; the macro and weighted averages over the classes present in the truth or the predictions, or every class with --all-classes), balanced_accuracy_score, roc_auc_score (one-vs-rest macro for 3+ classes; none when a class is missing from the truth), r2_score (variance-weighted over several outputs), mean_absolute_error. Exit 2 on bad data: a missing column, a value that is not a number, NaN, a label that is not one of the run's classes.
    """
    from bpcli.analysis.evaluate import evaluate_part, evaluate_table

    if part is not None and part not in ("train", "validation", "test", "all"):
        from bpcli.errors import did_you_mean
        raise BpcliError(f"--part: expected train, validation, test or all, found '{part}'"
                         f"{did_you_mean(part, ('train', 'validation', 'test', 'all'))}")
    if part is not None and data is not None:
        raise BpcliError("--part chooses among the run's own data; give no DATA with it")
    if threshold is not None and not 0 <= threshold <= 1:  # NaN fails too
        raise BpcliError(f"--threshold: expected a number from 0 to 1 (a sigmoid output's cut), found {threshold:g}")
    loaded = _load(run)
    res = (evaluate_table(loaded, _table(data), all_classes, threshold) if data is not None
           else evaluate_part(loaded, part, all_classes, threshold))
    if json_out:
        emit_json(res.to_dict())
    else:
        from bpcli.render.evaluate import evaluate_view
        out_console().print(evaluate_view(res))  # piped: no trailing spaces (SafeConsole)


@handles_errors
def runs(
    folder: Annotated[Path, typer.Argument(help="The folder holding run folders.", metavar="FOLDER")] = Path("runs"),
    json_out: JsonOpt = False,
) -> None:
    """List the run folders in FOLDER, newest first: created, status, epochs, final losses and metrics, config.

    Reads only each run's run.json and metrics.json. A folder that is not a run, or is damaged, is listed with a short status. `latest` in place of a RUN (bpcli show latest) is the newest run of this list.
    """
    from bpcli.runs.listing import list_runs

    res = list_runs(folder)
    if json_out:
        emit_json(res.to_dict())
    else:
        from bpcli.render.runs import runs_view
        console = out_console()
        console.print(runs_view(res, console.width))
