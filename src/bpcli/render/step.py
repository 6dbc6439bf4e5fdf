"""Rich view of `bpcli step` (StepResult): every parameter before and after the steps, and the cost."""

from __future__ import annotations

from rich import box
from rich.console import Group
from rich.table import Table
from rich.text import Text

from bpcli.render.numbers import digits_apart, fmt, fmt_metric, metric_label
from bpcli.render.explain_update import NAMES, settings_text
from bpcli.render.wrap import Prose

RULES = {  # the update each optimiser makes, for the line above the table
    "gd": "update = -lr * g", "sgd": "update = -lr * g",
    "momentum": "update = -lr * v with v = mu * v_prev + g",
    "nesterov": "update = -lr * (g + mu * v) with v = mu * v_prev + g",
    "rmsprop": "update = -lr * g / (sqrt(v) + eps) with v = alpha * v_prev + (1 - alpha) * g^2",
    "adagrad": "update = -lr * g / (sqrt(s) + eps) with s = s_prev + g^2",
    "adamw": "update = -lr * wd * p - lr * m_hat / (sqrt(v_hat) + eps) with m_hat = m / (1 - beta1^t), "
             "v_hat = v / (1 - beta2^t)",
    "adam": "update = -lr * m_hat / (sqrt(v_hat) + eps) with m_hat = m / (1 - beta1^t), v_hat = v / (1 - beta2^t)",
}


def _plural(n: int | float, word: str) -> str:
    return f"{n:g} {word}{'' if n == 1 else 's'}"


def _where(r) -> str:
    start = "the initial weights" if r.start_step == 0 else f"the end of epoch {r.start_epoch}"
    return f"from {start} (step {r.start_step}) to epoch {fmt(r.end_epoch)} (step {r.start_step + r.steps})"


def _batches(r) -> str:
    if r.steps_per_epoch == 1:
        return f"full batch: each step is one epoch, the gradient over all {r.samples} samples"
    return (f"mini-batches of {r.batch}: each step is one batch, in the config's seeded shuffle; "
            f"{r.steps_per_epoch} steps make an epoch of the {r.samples} samples")


def step_table(r, max_rows: int) -> Table:
    one = r.steps == 1
    t = Table(box=box.SIMPLE_HEAD, pad_edge=False)
    t.add_column("name", no_wrap=True)
    for head in ("value", "gradient", "update" if one else "change", "new value" if one else "after"):
        t.add_column(head, justify="right", no_wrap=True)
    for p in r.params[:max_rows]:
        d = digits_apart(p.value, p.new)
        upd = fmt(p.update) if p.trainable else Text("frozen", style="dim")
        t.add_row(Text(p.name), fmt(p.value, d), fmt(p.gradient), upd, Text(fmt(p.new, d), style="bold"))
    return t


def step_view(r, max_rows: int = 20) -> Group:
    """Header, the per-parameter table, the cost before and after, and what was written."""
    title = Text.assemble(("step ", "bold"), (r.name, "bold"), f"  ({r.source})", style="")
    what = f"{_plural(r.steps, 'step')} of {NAMES.get(r.optimizer, r.optimizer)} ({r.optimizer}), {settings_text(r.optimizer, r.lr, r.hyper, r.weight_decay)}"
    parts = [Prose(title), Prose(Text(what, style="bold")), Prose(Text(_where(r), style="dim")),
             Prose(Text(_batches(r), style="dim")), Text("")]
    rule = RULES.get(r.optimizer, "")
    g = ("g = dC/dp + wd * p for a weight, dC/dp for a bias" if r.weight_decay and r.optimizer != "adamw"
         else "g = dC/dp" + (", wd * p for a weight only" if r.weight_decay else ""))
    parts.append(Prose(Text(f"{rule}, {g}", style="cyan")))
    if r.steps > 1:
        parts.append(Prose(Text(f"gradient: step 1's; change: after - value, the {r.steps} steps together",
                                  style="dim")))
    total = r.n_params or len(r.params)
    where = "all of them" if total == len(r.params) else f"the first {len(r.params):,}"
    if max_rows <= 0:  # --rows 0: no empty table, no "more" after nothing
        parts.append(Prose(Text(f"{_plural(total, 'parameter')}, none listed (--rows 0; choose with --weight; "
                                f"{where} in --json)", style="dim")))
    else:
        parts.append(step_table(r, max_rows))
        if total > max_rows:
            parts.append(Prose(Text(f"... {total - min(max_rows, len(r.params))} more parameters (choose with "
                                    f"--weight; {where} in --json)", style="dim")))
    cost = Text(f"cost C = {fmt(r.cost_before)} -> {fmt(r.cost_after)}", style="bold")
    if r.metric_before is not None or r.metric_after is not None:
        cost.append(f"   {metric_label(r.metric)} {fmt_metric(r.metric, r.metric_before)} -> "
                    f"{fmt_metric(r.metric, r.metric_after)}")
    parts.append(Prose(cost))
    if r.message:
        parts.append(Prose(Text(r.message, style="bold red" if r.status == "diverged" else "yellow")))
    if r.out is not None:
        parts.append(Prose(f"wrote the run folder {r.out}: continue it with `bpcli train --resume {r.out}`"))
    else:
        parts.append(Prose(Text("nothing written; --out DIR saves the weights after the steps as a run folder",
                                  style="dim")))
    with_ = f"{r.explain_with} " if r.explain_with else ""
    parts.append(Prose(Text(f"every term of one parameter's update: `bpcli explain {with_}-w NAME`",
                            style="dim")))  # a `code span` wraps whole: the command stays on one line, to copy
    return Group(*parts)
