"""Rich view of `bpcli train` (TrainResult)."""

from __future__ import annotations

from rich import box
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from bpcli.render import fmt_metric, metric_label, sparkline, fmt


def train_view(res) -> Panel:
    """The final summary of a training run (TrainResult)."""
    t = Table.grid(padding=(0, 2))
    t.add_column(style="bold")
    t.add_column()
    status_style = {"completed": "green", "early_stopped": "green", "diverged": "red", "interrupted": "yellow"}
    t.add_row("status", Text(res.status.replace("_", " "), style=status_style.get(res.status, "")))
    if res.message:
        t.add_row("", Text(res.message))
    t.add_row("epochs", f"{res.epochs}  ({res.seconds:.2f} s)")
    t.add_row("samples", f"{res.n_train} train" + (f", {res.n_val} validation" if res.n_val else ""))
    t.add_row("final loss", f"{fmt(res.loss)} train" + (f", {fmt(res.val_loss)} validation" if res.val_loss is not None else ""))
    if res.penalty is not None:  # the objective minimised is the data loss plus the L2 term
        t.add_row("", Text(f"data loss; + L2 penalty {fmt(res.penalty)} = objective {fmt(res.loss + res.penalty)}",
                           style="dim"))
    label = metric_label(res.metric_name)
    t.add_row(f"final {label}", fmt_metric(res.metric_name, res.metric) + " train"
              + (f", {fmt_metric(res.metric_name, res.val_metric)} validation" if res.val_metric is not None else ""))
    if res.weights_epoch is not None and res.weights_epoch != res.epochs:
        t.add_row("weights", f"from epoch {res.weights_epoch} (best validation loss)")
    losses = res.losses
    if losses:
        t.add_row("loss curve", Text(sparkline(losses), style="cyan"))
        t.add_row("", Text(f"{fmt(losses[0])} -> {fmt(losses[-1])} (mean over each epoch, log scale)",
                                style="dim"))
    if res.run_dir:
        t.add_row("run folder", Text(res.run_dir))
    return Panel(t, title=Text(f"trained {res.name}"), title_align="left", expand=False)
