"""The explain and gradcheck commands, and the other bpcli.cli modules' commands, in `bpcli --help`'s order."""

from __future__ import annotations

import contextlib
import math
from typing import Annotated, Optional

import typer

from bpcli.cli.bridge import export, gradcheck_against, import_
from bpcli.cli.common import (
    ConfigOpt, EpochOpt, JsonOpt, RunOpt, TargetArg, WeightOpt, app, emit_gradcheck, emit_json, emit_text, err_console,
    check_rows, fail, handles_errors, load_target, load_target_state, out_console, progress_bar, resolve_weights,
    source_of, split_names, weight_names,
)
from bpcli.cli.inspect import inspect, plot, show
from bpcli.cli.maths import diagnose, exercise
from bpcli.cli.step import step
from bpcli.cli.train import init, train
from bpcli.cli.use import evaluate, predict, runs
from bpcli.cli.view import view
from bpcli.cli.watch import animate, compare
from bpcli.errors import BpcliError

# --- explain ---------------------------------------------------------------------------------

EXPLAIN_FORMATS = {"text": "text", "markdown": "markdown", "md": "markdown", "latex": "latex", "tex": "latex"}


@handles_errors
def explain(
    target: TargetArg = None,
    weight: WeightOpt = None,
    config: ConfigOpt = None,
    run: RunOpt = None,
    epoch: EpochOpt = None,
    batch: Annotated[Optional[int], typer.Option(
        help="With --epoch N on a mini-batch run: explain over batch K (1-based) of epoch N+1, drawn as training "
             "drew it, instead of the whole training set.", show_default=False, metavar="K")] = None,
    sample: Annotated[Optional[int], typer.Option(
        help="Show sample I (1 = the first) in full: every factor's formula with its numbers, every layer's "
             "deltas.", show_default=False, metavar="I")] = None,
    paths: Annotated[bool, typer.Option("--paths", help="List every path from the parameter to the loss as a "
                                        "product of factors (at most 64 paths) and show that they add up.")] = False,
    json_out: JsonOpt = False,
    format_: Annotated[str, typer.Option("--format", help="text (tables), markdown (with $$ MathJax) or latex: "
                                         "the derivation with numbers, ready to paste.")] = "text",
    standalone: Annotated[bool, typer.Option("--standalone", help="With --format latex: a whole document "
                                             "(article, amsmath) that compiles with pdflatex.")] = False,
) -> None:
    """Show the chain rule for a weight or bias: each factor of dC/dw with its value, sample by sample.

    The mean of the per-sample products is the gradient, checked against the engine's backward pass and a central difference.
    Then comes the configured optimiser's next update (gd, momentum, Nesterov, RMSprop, AdaGrad, Adam or AdamW, with weight decay), every term with its number; a run's update continues its optimiser state (an early-stopped run holding its best epoch's weights with a later epoch's state is refused, naming the --epoch values that work). Without CONFIG or --run: the built-in seed network.
    Exit 0 when the checks agree, 1 when the numeric check disagrees or a value is not finite, 3 when it is only inconclusive (the step cannot move the cost), 2 for bad input such as an unknown name.
    """
    from bpcli.explain.chain import explain_many

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
    if standalone and fmt_name != "latex":
        raise BpcliError("--standalone makes a LaTeX document: give it with --format latex")
    if batch is not None and epoch is None:
        raise BpcliError("--batch: give --epoch N too (batch K of epoch N+1, drawn as training drew it)")
    cfg, net, prepared, run_dir, state = load_target_state(target, config, run, epoch)
    from bpcli.teach.step import check_one_state
    check_one_state(run_dir, state, "explain", f" -w {','.join(names)}")  # the update needs one epoch's state
    resolve_weights(net, names)
    x, y, source = prepared.train.x, prepared.train.y, source_of(run_dir, None, cfg.path)
    if epoch is not None:
        from bpcli.runs.snapshots import explain_data
        x, y, over = explain_data(run_dir, epoch, batch, prepared, cfg.train, state)  # the run as loaded
        source = f"{source_of(run_dir, epoch, cfg.path)}; {over}"
    later = (f"training reaches batch {batch} after {batch - 1} more step(s), at other weights; shown is the update "
             f"with this batch's gradient at the weights and optimiser state of epoch {epoch}") if batch and batch > 1 else ""
    from bpcli.training.schedules import in_force, schedule_note
    done, plateau = (state.epoch, state.plateau) if state else (0, None)
    later = "; ".join(n for n in (schedule_note(cfg.train, done, plateau), later) if n)
    report = explain_many(net, x, y, names, in_force(cfg.train, done, plateau), None if sample is None else sample - 1,
                          paths, buffers=state.buffers if state else None, step=state.step if state else 0,
                          class_names=prepared.train.class_names, update_note=later, title=cfg.name,
                          source=source, scaling=prepared.scaling)
    if json_out:
        emit_json(report.to_dict())
    elif fmt_name == "markdown":
        from bpcli.render.explain_doc import explain_markdown
        emit_text(explain_markdown(report))
    elif fmt_name == "latex":
        from bpcli.render.explain_doc import explain_latex
        emit_text(explain_latex(report, standalone))
    else:
        from bpcli.render.explain import explain_view
        out_console().print(explain_view(report))
    if report.exit_code:
        fail("\n".join(report.problems()), report.exit_code)



# --- gradcheck -------------------------------------------------------------------------------


@handles_errors
def gradcheck(
    target: TargetArg = None,
    config: ConfigOpt = None,
    run: RunOpt = None,
    epoch: EpochOpt = None,
    samples: Annotated[Optional[int], typer.Option(
        "--n-samples", metavar="N", help="Check on N samples of the training data (a seeded random subset). Default: all, at most 64.",
        show_default=False)] = None,
    eps: Annotated[float, typer.Option(help="Central-difference step: (C(w + eps) - C(w - eps)) / 2 eps; "
                                       "from 1e-9 to 1e-3.")] = 1e-5,
    tol: Annotated[Optional[float], typer.Option(
        help="Pass line: an entry passes when its relative error is at most this. Default: 1e-4 (1e-9 with --against "
             "torch).", show_default=False)] = None,
    all_: Annotated[bool, typer.Option("--all", help="Check every entry, however many (default: a sample above "
                                                     "5000 parameters, plus random directions).")] = False,
    directional: Annotated[Optional[bool], typer.Option(
        "--directional/--entries",
        help="Only random directions (a handful of passes whatever the size), or only entry by entry. "
             "Default: entries, plus directions above 5000 parameters.", show_default=False)] = None,
    directions: Annotated[int, typer.Option(help="Random unit directions per parameter array.")] = 4,
    budget: Annotated[float, typer.Option(
        help="Seconds the check may be estimated to take; a longer one is refused before it starts.")] = 600,
    units: Annotated[bool, typer.Option("--units", help="Also check every registered activation and loss on its "
                                                        "own, to pin a broken derivative to its function.")] = False,
    weight: WeightOpt = None,
    seed: Annotated[int, typer.Option("--subset-seed", help="Seed for the sample subset, sampled entries and "
                                                          "directions.")] = 0,
    rows: Annotated[int, typer.Option(help="Entries to list in the table (all of them are in --json).")] = 20,
    against: Annotated[Optional[str], typer.Option(
        help="torch: compare with PyTorch autograd of the same cost (the exported model.py, float64, every sample) "
             "instead of central differences. Needs torch: pip install 'bpcli[torch]'.", show_default=False)] = None,
    samples_old: Annotated[Optional[int], typer.Option("--samples", hidden=True, help="The old name of --n-samples.")
                           ] = None,
    seed_old: Annotated[Optional[int], typer.Option("--seed", hidden=True, help="The old name of --subset-seed.")
                        ] = None,
    json_out: JsonOpt = False,
) -> None:
    """Compare every backprop gradient with central differences (or PyTorch autograd), in float64.

    Per parameter: backprop's value a, the numeric one n with its error bound B (rounding and truncation of n, backprop's own rounding), and a verdict: fail when |a - n| > tol * max(|a|, |n|) + 4 B; pass when |a - n| and B are both within tol * max(|a|, |n|); inconclusive otherwise. A decided entry is named by its relative error: good below 1e-7, ok below 1e-4, suspicious below 1e-2, wrong above.

    An entry is "not finite" (fails) when either value is inf or NaN, "inconclusive" when no step can be taken at the weight or the difference lies between the pass and fail lines, and "kink" (inconclusive, never excused) when every step crosses a point where an activation or the loss has no derivative and backprop matches neither one-sided difference.

    Exit 0 when everything passes, 1 when something fails, 3 when nothing fails but something is inconclusive, 2 on bad input (eps outside 1e-9 to 1e-3, tol outside 1e-10 to 1e-2, samples outside 1 to 100000, directions outside 1 to 1000).
    """
    from bpcli.gradcheck.check import check

    samples = samples if samples_old is None else samples_old
    seed = seed if seed_old is None else seed_old

    check_rows(rows)
    if not (math.isfinite(budget) and budget > 0):
        raise BpcliError(f"--budget: give the seconds the check may take (above 0), found {budget:g}")
    if against is not None:
        refused = [o for o, given in (("--all", all_), ("--directional/--entries", directional is not None),
                                      ("--units", units), ("--eps", eps != 1e-5), ("--directions", directions != 4),
                                      ("--budget", budget != 600))
                   if given]
        return gradcheck_against(against, target, config, run, samples=samples, tol=tol, seed=seed, rows=rows,
                                 weights=tuple(weight_names(weight)), json_out=json_out, refused=refused,
                                 epoch=epoch)
    opts = _gradcheck_options(eps, tol, all_, directional, directions, weight, seed, samples)
    cfg, net, prepared, run_dir = load_target(target, config, run, epoch)
    resolve_weights(net, opts.weights)
    data = prepared.train
    checks, seconds = _within_budget(net, data.x.shape[0], opts, budget)
    with _gradcheck_progress(checks, seconds) as tick:
        where = source_of(run_dir, epoch, cfg.path)
        report = check(net, data.x, data.y, opts, cfg.name, where, units=units,
                       progress=tick)
    emit_gradcheck(report, json_out, rows)


def _gradcheck_options(eps: float, tol: float | None, all_: bool, directional: bool | None, directions: int,
                       weight: list[str] | None, seed: int, samples: int | None):
    """gradcheck's options from its flags, validated before anything is loaded: bad options are exit 2 whatever
    the target."""
    from bpcli.gradcheck.report import DEFAULT_TOL, GradcheckOptions

    tol = DEFAULT_TOL if tol is None else tol
    if all_ and directional:
        raise BpcliError("--all checks every entry; it cannot be combined with --directional")
    names = tuple(weight_names(weight))
    mode = "auto" if directional is None else ("directional" if directional else "entries")
    opts = GradcheckOptions(eps=eps, tol=tol, mode=mode, all_entries=all_, directions=directions, weights=names,
                            seed=seed, **({"samples": samples} if samples is not None else {}))
    opts.validate()
    return opts


def _within_budget(net, m: int, opts, budget: float) -> tuple[int, float]:
    """(checks, estimated seconds) of the check on m samples; refused when the estimate is over --budget."""
    from bpcli.gradcheck.check import budget_needed, duration_text, estimate_seconds

    checks, seconds = estimate_seconds(net, m, opts)
    need = budget_needed(seconds, budget)
    if need is not None:
        raise BpcliError(f"--budget: this check of {checks:,} entries and directions is estimated at "
                         f"{duration_text(seconds)} ({seconds:,.0f} s), more than --budget {budget:g}; give --budget "
                         f"{need} to run it anyway, or check fewer entries (without --all, or --weight NAME)")
    return checks, seconds


@contextlib.contextmanager
def _gradcheck_progress(checks: int, seconds: float):
    """A progress bar on stderr for a check estimated at 2 s or more; yields the core's progress callback."""
    if seconds < 2:
        yield None
        return
    err = err_console()
    err.print(f"gradcheck: {checks} entries and directions to difference, about {seconds:.0f} s", soft_wrap=True)
    with progress_bar("gradcheck", total=checks, console=err) as tick:
        yield tick


# The command list's one line per command (at most ~60 characters: whole at 80 columns); each -h has the rest.
SUMMARIES = {
    "train": "Train a network from a YAML config into a run folder.",
    "show": "List a network's layers, parameter names and values.",
    "init": "Write a starter config, copied from a shipped example.",
    "explain": "Show the chain rule behind one parameter's gradient.",
    "step": "Take K optimiser steps; every weight before and after.",
    "plot": "Draw a run's curves and decision boundary as PNG/SVG.",
    "inspect": "Say why a trained network learns or does not.",
    "gradcheck": "Check backprop's gradients against central differences.",
    "diagnose": "Check your own gradients; name the mistake behind each.",
    "exercise": "Write a backprop worksheet of questions to work by hand.",
    "export": "Write a trained run as PyTorch or plain-numpy code.",
    "import": "Turn a PyTorch MLP's weights into a bpcli config.",
    "predict": "Apply a trained run to new inputs, one prediction per row.",
    "evaluate": "Score a trained run on labelled data: loss and metrics.",
    "runs": "List the run folders in a folder, newest first.",
    "animate": "Animate a run: its network and loss over the epochs.",
    "view": "A run as one web page: each weight opens its chain rule.",
    "compare": "Set runs side by side: config changes, numbers, verdicts.",
}

for command in (train, show, init, explain, step, plot, inspect, animate, view, compare, gradcheck, diagnose, exercise, export):
    app.command(short_help=SUMMARIES[command.__name__])(command)
app.command("import", short_help=SUMMARIES["import"])(import_)
for command in (predict, evaluate, runs):
    app.command(short_help=SUMMARIES[command.__name__])(command)

