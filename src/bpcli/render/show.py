"""Rich view of `bpcli show` (ShowResult)."""

from __future__ import annotations

from rich import box
from rich.console import Group
from rich.table import Table
from rich.text import Text



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


