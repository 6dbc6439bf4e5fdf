"""Rich view of `bpcli train` (TrainResult)."""

from __future__ import annotations

import math

from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from bpcli.render.numbers import fmt, fmt_metric, metric_label, sparkline
from bpcli.render.wrap import Breakable, Prose


def optimiser_text(s: dict, n_train: int) -> tuple[str, str]:
    """('adam, lr 0.01, batches of 32', 'beta1 0.9, beta2 0.999, epsilon 1e-08'): the optimiser, and its own
    constants ('' for gd and sgd)."""
    bs = s["batch_size"]
    batches = "full batch" if bs is None or bs >= n_train else f"batches of {bs}"
    extra = ", ".join(f"{k} {s[k]:g}" for k in ("momentum", "alpha", "beta1", "beta2", "epsilon", "l1") if k in s)
    sched = s.get("schedule")
    if sched:  # the lr of each epoch: history.csv's lr column
        extra = ", ".join(p for p in (extra, "schedule " + " ".join(
            f"{v}" if k == "name" else f"{k} {v:g}" if isinstance(v, float) else f"{k} {v}"
            for k, v in sched.items())) if p)
    return f"{s['optimizer']}, lr {s['lr']:g}, {batches}", extra


def seeds_text(s: dict) -> str:
    """'init 0, train 0' and the data generator's and validation split's seeds where they apply."""
    return ", ".join(f"{k} {v}" for k, v in s["seeds"].items() if v is not None)


def early_stopping_text(s: dict) -> str:
    es = s["early_stopping"]
    if es is None:
        return "off"
    watch = "".join(f", {k} {es[k]}" for k in ("monitor", "mode", "start") if k in es)  # where not the default
    return (f"patience {es['patience']}" + (f", min_delta {es['min_delta']:g}" if es["min_delta"] else "")
            + watch + (", best weights kept" if es["restore_best"] else ""))


def weights_text(res) -> str:
    """Which weights the final numbers are at."""
    return ("at the final weights" if res.weights_epoch in (None, res.epochs)
            else f"at epoch {res.weights_epoch}'s weights")


def rose_text(res) -> str:
    """The one line that says the run made its loss worse."""
    return (f"the loss rose: {fmt(res.history[0].loss)} (epoch 1) -> {fmt(res.loss)} (final)"
            + (f"; lr {res.settings['lr']:g} may be too large" if res.settings else ""))


def train_view(res) -> Panel:
    """The final summary of a training run (TrainResult)."""
    t = Table.grid(padding=(0, 2))
    t.add_column(style="bold")
    t.add_column()
    status_style = {"completed": "green", "early_stopped": "green", "diverged": "red", "interrupted": "yellow"}
    status = Text(res.status.replace("_", " "), style=status_style.get(res.status, ""))
    if res.loss_rose and res.status in ("completed", "early_stopped"):
        status.append(", but the loss rose", style="bold yellow")
    t.add_row("status", status)
    if res.message:
        t.add_row("", Text(res.message))
    s = res.settings
    planned = f" of {s['epochs']}" if s and s["epochs"] != res.epochs else ""
    t.add_row("epochs", f"{res.epochs}{planned}  ({res.seconds:.2f} s)")
    if s:
        optimiser, constants = optimiser_text(s, res.n_train)
        t.add_row("optimiser", optimiser)
        if constants:
            t.add_row("", Text(constants, style="dim"))
        t.add_row("seeds", seeds_text(s))
        t.add_row("weight decay", f"{s['weight_decay']:g}")
        t.add_row("early stopping", early_stopping_text(s))
    t.add_row("samples", f"{res.n_train} train" + (f", {res.n_val} validation" if res.n_val else "")
              + (f", {res.n_test} test" if res.n_test else ""))
    if res.n_test:  # the numbers below are the training and validation parts' only
        t.add_row("", Text("the test part is held out: not trained, stopped or scaled on, and scored only by "
                           "bpcli evaluate RUN --part test", style="dim"))
    at = weights_text(res)
    t.add_row("final loss", f"{fmt(res.loss)} train" + (f", {fmt(res.val_loss)} validation" if res.val_loss is not None
                                                         else "") + f", {at}")
    if res.penalty is not None and res.l1_penalty is None:  # the objective is the data loss plus the L2 term
        t.add_row("", Text(f"data loss; + L2 penalty {fmt(res.penalty)} = objective {fmt(res.loss + res.penalty)}",
                           style="dim"))
    elif res.l1_penalty is not None:  # and the L1 term, each reported apart
        l2 = f" + L2 penalty {fmt(res.penalty)}" if res.penalty is not None else ""
        total = res.loss + (res.penalty or 0.0) + res.l1_penalty
        t.add_row("", Text(f"data loss;{l2} + L1 penalty {fmt(res.l1_penalty)} = objective {fmt(total)}",
                           style="dim"))
    label = metric_label(res.metric_name)
    t.add_row(f"final {label}", fmt_metric(res.metric_name, res.metric) + " train"
              + (f", {fmt_metric(res.metric_name, res.val_metric)} validation" if res.val_metric is not None else ""))
    if res.weights_epoch is not None and res.weights_epoch != res.epochs:
        watched = ((s or {}).get("early_stopping") or {}).get("monitor", "val_loss")
        t.add_row("weights", f"from epoch {res.weights_epoch} (best validation "
                             f"{'loss' if watched == 'val_loss' else metric_label(res.metric_name)})")
    losses = res.losses
    if losses:
        full = s is None or s["batch_size"] is None or s["batch_size"] >= res.n_train
        finite = [v for v in losses if v is not None and math.isfinite(v)]
        # the curve stretches from its lowest to its highest value: a log scale only past two decades, and the
        # lowest value printed, so a run that hardly moved does not look like a steep drop
        log = bool(finite) and min(finite) > 0 and max(finite) > 100 * min(finite)
        t.add_row("epoch loss", Text(sparkline(losses, log=log), style="cyan"))
        t.add_row("", Text(f"{fmt(losses[0])} in epoch 1 -> {fmt(losses[-1])} in epoch {res.history[-1].epoch}",
                           style="dim"))
        scale = "log scale" if log else "linear scale"
        t.add_row("", Text(f"each epoch's loss before its step, {scale}" if full else
                           f"each epoch's mean over its batches, {scale}", style="dim"))
        if finite:
            t.add_row("", Text(f"the curve spans {fmt(min(finite))} to {fmt(max(finite))}", style="dim"))
    if res.run_dir:
        t.add_row("run folder", Breakable(res.run_dir))  # wrapped after a '/', never inside a name
    return Panel(t, title=Text(f"trained {res.name}"), title_align="left", expand=False)


def examples_view(res) -> Table:
    """`bpcli init --list`: each shipped example's name and what it shows, wrapped to the terminal."""
    t = Table.grid(padding=(0, 2))
    t.add_column(no_wrap=True, style="bold")
    t.add_column()
    for name, description in res.examples:
        t.add_row(Text(name), Prose(description))
    return t
