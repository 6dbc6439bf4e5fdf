"""The commands that check a learner's own maths: diagnose (their gradients) and exercise (worksheets)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from bpcli.cli.common import ForceOpt, JsonOpt, emit_json, handles_errors, load_target, out_console
from bpcli.errors import BpcliError

FORMATS = {"markdown": "markdown", "md": "markdown", "latex": "latex", "tex": "latex"}


@handles_errors
def diagnose(
    paths: Annotated[list[str], typer.Argument(
        help="[CONFIG|RUN] ANSWERS: the network (default: the built-in seed, or the worksheet the answers file "
             "names) and a YAML/JSON/CSV file of parameter name -> gradient.", show_default=False,
        metavar="[CONFIG|RUN] ANSWERS")],
    sample: Annotated[Optional[int], typer.Option(
        help="Your answers are for sample I alone (1 = the first), not the mean over all samples.",
        show_default=False, metavar="I")] = None,
    tol: Annotated[float, typer.Option(help="An answer is right when its relative error is at most this; "
                                       "use 0.01 for answers rounded to 2-3 figures.")] = 1e-3,
    json_out: JsonOpt = False,
) -> None:
    """Check your own gradients (worked by hand or by your code) and name the classic mistake behind each wrong one.

    ANSWERS holds lines such as `v1: 0.0123` (or CSV rows `v1,0.0123`), the gradient of the mean cost over the config's samples. For each wrong value, bpcli redoes the backward pass with one classic mistake made at a time (activation derivative left out, f'(o) for f'(z), the sign of dL/dy' flipped, a sum instead of the mean, the 1/2 dropped, weight indices transposed, the upstream sum cut to one term, the bias input not 1, the weights after the update) and names the one that reproduces your number to the figures you wrote, when no other explanation comes close; otherwise it says which are possible.

    Exit 0 when every answer is right, 1 when some are wrong, 2 for bad input.
    """
    from bpcli.teach.diagnose import diagnose as run_diagnose
    from bpcli.teach.diagnose import read_answers

    if not 1 <= len(paths) <= 2:
        raise BpcliError("give the answers file, optionally after a config or run folder: "
                         "bpcli diagnose [CONFIG|RUN] ANSWERS")
    answers_path = paths[-1]
    answers, meta = read_answers(answers_path)
    if len(paths) == 1 and meta:
        from bpcli.teach.exercise import load_sheet, sheet_from_meta
        cfg, net, prepared = load_sheet(sheet_from_meta(meta, answers_path))
        source = cfg.path
    else:
        cfg, net, prepared, run_dir = load_target(paths[0] if len(paths) == 2 else None)
        source = str(run_dir) if run_dir else cfg.path
    data = prepared.train
    report = run_diagnose(net, data.x, data.y, answers, cfg.train.lr, tol=tol,
                          sample=None if sample is None else sample - 1, name=cfg.name, source=source,
                          answers_source=answers_path)
    if json_out:
        emit_json(report.to_dict())
    else:
        from bpcli.render.diagnose import diagnose_view
        out_console().print(diagnose_view(report))
    if report.exit_code:
        raise typer.Exit(report.exit_code)


@handles_errors
def exercise(
    seed: Annotated[int, typer.Option(help="Same seed, same sheet.")] = 0,
    size: Annotated[str, typer.Option(help="Inputs and nodes per layer, e.g. 2-2-1 or 2-3-2-1.")] = "2-2-1",
    activation: Annotated[str, typer.Option(help="sigmoid, tanh, relu or identity, for every layer.")] = "sigmoid",
    samples: Annotated[Optional[int], typer.Option("--n-samples", metavar="N", show_default=False,
                                                   help="1 to 4 samples (default: 1 or 2, from the seed).")] = None,
    format_: Annotated[str, typer.Option("--format", help="markdown or latex.")] = "markdown",
    answers: Annotated[bool, typer.Option("--answers", help="Add the key: explain's worked derivation of every "
                                          "question, with its numbers.")] = False,
    config_out: Annotated[Optional[Path], typer.Option(
        "--config-out", help="Also write the sheet's network as a config file (for train, explain, diagnose); "
        "an existing file only with --force.", show_default=False)] = None,
    force: ForceOpt = False,
    samples_old: Annotated[Optional[int], typer.Option("--samples", hidden=True, help="The old name of --n-samples.")
                           ] = None,
    json_out: JsonOpt = False,
) -> None:
    """Write a backprop worksheet: a small network with round-number weights, one or two samples, and questions such as "compute dC/dv1".

    Students check their answers with `bpcli diagnose answers.yaml` (the answers file names the sheet's seed).
    """
    from bpcli.teach.exercise import load_sheet, make_sheet

    samples = samples if samples_old is None else samples_old
    fmt = FORMATS.get(format_.lower())
    if fmt is None:
        raise BpcliError(f"--format: choose markdown or latex, found '{format_}'")
    if config_out is not None:
        from bpcli.files import check_output
        check_output(config_out, force, "--config-out", example="sheet.yaml")
    sheet = make_sheet(seed, size, activation, samples)
    cfg, net, prepared = load_sheet(sheet)  # the sheet goes through the config checker like any file
    if config_out is not None:
        from bpcli.files import write_output
        from bpcli.yamlsrc import dump_yaml
        write_output(config_out, f"# {sheet.config['description']}\n"
                     + dump_yaml(sheet.config, sort_keys=False, default_flow_style=None), force,
                     "--config-out", example="sheet.yaml")
    if json_out:
        emit_json(sheet.to_dict())
        return
    from bpcli.render.exercise import sheet_latex, sheet_markdown
    text = sheet_markdown(sheet) if fmt == "markdown" else sheet_latex(sheet)
    if answers:
        from bpcli.explain.chain import explain_many
        from bpcli.render.explain_doc import explain_latex, explain_markdown
        report = explain_many(net, prepared.train.x, prepared.train.y, list(sheet.questions), cfg.train.lr,
                              title=cfg.name, source=f"exercise --seed {seed}")
        key = explain_markdown(report) if fmt == "markdown" else explain_latex(report)
        text += ("\n## Answers\n\n" if fmt == "markdown" else "\n\\section*{Answers}\n") + key
    print(text, end="" if text.endswith("\n") else "\n")
