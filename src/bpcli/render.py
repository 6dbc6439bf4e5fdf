"""Rich renderables for each result object. Builds things to print; never prints."""

from __future__ import annotations

import math

from rich import box
from rich.console import Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

SPARK = "▁▂▃▄▅▆▇█"


def fmt(v: float | None, digits: int = 6) -> str:
    """A number for a table cell: fixed width-ish, scientific when tiny or huge."""
    if v is None:
        return "-"
    if isinstance(v, float) and not math.isfinite(v):
        return str(v)
    if v == 0:
        return "0"
    a = abs(v)
    if a < 1e-4 or a >= 1e6:
        return f"{v:.{max(digits - 2, 1)}e}"
    return f"{v:.{digits}g}" if a >= 1 else f"{v:.{digits}f}".rstrip("0").rstrip(".") if a >= 1e-2 else f"{v:.{digits + 2}f}".rstrip("0")


def sparkline(values: list[float], width: int = 40, log: bool = True) -> str:
    """A one-line curve of `values`, downsampled to `width` characters (log scale for losses)."""
    vals = [v for v in values if v is not None and math.isfinite(v)]
    if not vals:
        return ""
    if len(vals) > width:
        step = len(vals) / width
        vals = [vals[min(int(i * step), len(vals) - 1)] for i in range(width)] + [vals[-1]]
        vals = vals[:width]
    if log and min(vals) > 0:
        vals = [math.log10(v) for v in vals]
    lo, hi = min(vals), max(vals)
    if hi - lo < 1e-12:
        return SPARK[3] * len(vals)
    return "".join(SPARK[min(int((v - lo) / (hi - lo) * (len(SPARK) - 1) + 0.5), len(SPARK) - 1)] for v in vals)


def metric_label(name: str) -> str:
    return {"accuracy": "accuracy", "r2": "R^2"}.get(name, name)


def fmt_metric(name: str, v: float | None) -> str:
    if v is None:
        return "-"
    if name == "accuracy":
        return f"{100 * v:.1f}%"
    return f"{v:.4f}"


# --- show ---------------------------------------------------------------------------------


def show_view(res, max_params: int = 60) -> Group:
    """Layers table, the diagram and equations, and the parameter list (ShowResult)."""
    head = Text.assemble((res.name, "bold"), f"  ({res.source})  ", (f"{res.n_params} parameters", "dim"))
    layers = Table(box=box.SIMPLE_HEAD, title="Layers", title_justify="left")
    for col in ("layer", "nodes", "in", "activation", "bias", "weights", "params"):
        layers.add_column(col, justify="right" if col in ("in", "params") else "left", no_wrap=col != "nodes")
    layers.add_row("input", Text(", ".join(res.inputs) if len(res.inputs) <= 6 else f"{res.inputs[0]} ... {res.inputs[-1]}"),
                   "", "", "", "", "")
    for r in res.layers:
        nodes = ", ".join(r.nodes) if len(r.nodes) <= 6 else f"{r.nodes[0]} ... {r.nodes[-1]} ({len(r.nodes)})"
        layers.add_row(r.letter, Text(nodes), str(r.n_in), r.activation, r.bias, f"{r.symbol}..", str(r.n_params))
    diagram = Text(res.diagram)
    eqs = Text("\n".join(res.equations), style="cyan")
    loss = Text.assemble(("loss: ", "bold"), res.loss, "   ", (res.loss_formula, "dim"),
                         ("   cost C = 1/m * sum_i L_i", "dim"))
    params = Table(box=box.SIMPLE_HEAD, title="Parameters", title_justify="left")
    for col in ("name", "layer", "to", "from", "value"):
        params.add_column(col, justify="right" if col == "value" else "left", no_wrap=True)
    for p in res.params[:max_params]:
        name = Text(p.name) if p.trainable else Text(p.name + " (frozen)", style="dim")
        params.add_row(name, p.layer, Text(p.to_node), Text(p.from_node), f"{p.value:.6g}")
    parts = [head, Text(""), diagram, eqs, loss, layers, params]
    if len(res.params) > max_params:
        parts.append(Text(f"... and {len(res.params) - max_params} more parameters (all of them in --json)", style="dim"))
    return Group(*parts)


# --- train --------------------------------------------------------------------------------


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
    t.add_row("loss", f"{fmt(res.loss)} train" + (f", {fmt(res.val_loss)} validation" if res.val_loss is not None else ""))
    label = metric_label(res.metric_name)
    t.add_row(label, fmt_metric(res.metric_name, res.metric) + " train"
              + (f", {fmt_metric(res.metric_name, res.val_metric)} validation" if res.val_metric is not None else ""))
    losses = res.losses
    if losses:
        t.add_row("loss curve", Text(sparkline(losses), style="cyan"))
        t.add_row("", Text(f"{fmt(losses[0])} -> {fmt(losses[-1])} (log scale)", style="dim"))
    if res.run_dir:
        t.add_row("run folder", Text(res.run_dir))
    return Panel(t, title=f"trained {res.name}", title_align="left", expand=False)
