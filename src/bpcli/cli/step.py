"""The step command: K optimiser steps from a config's initial weights or a run's, every parameter before and after."""

from __future__ import annotations

import dataclasses

from pathlib import Path
from typing import Annotated, Optional

import typer

from bpcli.cli.common import (ConfigOpt, EpochOpt, JsonOpt, RunOpt, TargetArg, WeightOpt, check_rows, emit_json,
                              handles_errors, load_target_state, out_console, resolve_weights, source_of,
                              weight_names)
from bpcli.errors import BpcliError


@handles_errors
def step(
    target: TargetArg = None,
    config: ConfigOpt = None,
    run: RunOpt = None,
    epoch: EpochOpt = None,
    steps: Annotated[int, typer.Option(
        "--steps", "-k", metavar="K", help="How many optimiser steps: each is one epoch with full-batch training, "
        "one mini-batch (in the config's seeded shuffle) otherwise.")] = 1,
    weight: WeightOpt = None,
    rows: Annotated[int, typer.Option(help="Parameters to list in the table (all of them are in --json).")] = 20,
    out: Annotated[Optional[Path], typer.Option(
        "--out", "-o", help="Save the state after the steps as a new run folder that `bpcli train --resume` continues (K must be a "
             "whole number of epochs); a run stepped is never rewritten.", show_default=False)] = None,
    force: Annotated[bool, typer.Option("--force", help="Let --out replace an existing run folder (only one bpcli wrote, "
                                        "holding nothing else).")] = False,
    overwrite: Annotated[bool, typer.Option("--overwrite", hidden=True, help="The old name of --force.")] = False,
    json_out: JsonOpt = False,
) -> None:
    """Take K steps of the configured optimiser and show every parameter: value, gradient, update, new value.

    From a config: its initial weights, so these are the first steps `bpcli train` takes. From a run folder: its weights and optimiser state (with --epoch N, those after epoch N), so these are the next steps `bpcli train --resume` would take. An early-stopped run whose weights are its best epoch's (restore_best) is refused as explain refuses it, naming the --epoch values that work. The cost before and after the steps comes last. Nothing is written unless --out is given.

    Exit 0, 1 when a value becomes infinite or NaN, 2 for bad input.
    """
    from bpcli.teach.step import check_one_state, check_steps, save_steps, steps_per_epoch, take_steps

    overwrite = overwrite or force
    check_rows(rows)
    names = weight_names(weight)
    cfg, net, prepared, run_dir, state = load_target_state(target, config, run, epoch)
    check_one_state(run_dir, state, "step")
    resolve_weights(net, names)
    m = prepared.train.m
    check_steps(steps, cfg, m, out)
    if out is not None:
        from bpcli.runs.claim import check_target
        if run_dir is not None and out.resolve() == Path(run_dir).resolve():
            raise BpcliError(f"--out: {out} is the run being stepped; choose another folder (`bpcli train --resume "
                             f"{out}` continues a run in place)")
        check_target(out, overwrite)
    where = source_of(run_dir, epoch, cfg.path)
    result = take_steps(cfg, net, prepared, state, steps, where, names)
    if out is not None and result.status == "ok":
        source = None if run_dir is not None else (str(config) if config is not None else target)
        save_steps(source, run_dir, epoch, result.steps, steps_per_epoch(cfg, m)[1], out, overwrite)
        result = dataclasses.replace(result, out=str(out))
    same = (f"{run_dir}" + (f" --epoch {epoch}" if epoch is not None else "")) if run_dir else \
        ("" if cfg.path.startswith("<") else cfg.path)
    result = dataclasses.replace(result, explain_with=same)
    if json_out:
        emit_json(result.to_dict())
    else:
        from bpcli.render.step import step_view
        out_console().print(step_view(result, max_rows=rows))
    if result.exit_code:
        from bpcli.cli.common import fail
        fail(f"{result.message}" + ("; nothing written" if out is not None else ""), result.exit_code)
