"""Rich view of `bpcli show` (ShowResult)."""

from __future__ import annotations

from rich import box
from rich.console import Group
from rich.table import Table
from rich.text import Text


def _abbrev(names, limit: int = 4, max_chars: int = 28) -> str:
    names = list(names)
    text = ", ".join(names)
    if len(names) <= limit and len(text) <= max_chars:
        return text
    return f"{names[0]}, ..., {names[-1]} ({len(names)})"


def show_view(res, max_params: int = 60, compact: bool = False, max_equations: int = 6) -> Group:
    """Diagram, equations, layers table and the parameter list (ShowResult).

    compact: just the diagram, loss and layers (what `train` shows before training).
    """
    head = Text.assemble((res.name, "bold"), "  ", Text(res.source), "  ", (f"{res.n_params} parameters", "dim"))
    stages = [_abbrev(res.inputs)] + [_abbrev(r.nodes) for r in res.layers]
    diagram = Text(" -> ".join(stages) + "  (output y')", no_wrap=True, overflow="ellipsis")
    loss = Text.assemble(("loss ", "bold"), res.loss, "  ", (res.loss_formula, "dim"),
                         ("   C = 1/m * sum_i L_i", "dim"))
    layers = Table(box=box.SIMPLE_HEAD, title="Layers", title_justify="left", pad_edge=False)
    for col in ("layer", "nodes", "in", "activation", "bias", "weights", "params"):
        layers.add_column(col, justify="right" if col in ("in", "params") else "left", no_wrap=True)
    inputs = _abbrev(res.inputs, max_chars=24)
    layers.add_row("input", Text(inputs if len(inputs) <= 24 else f"{len(res.inputs)} features"), "", "", "", "", "")
    for r in res.layers:
        layers.add_row(r.letter, Text(_abbrev(r.nodes, limit=6, max_chars=24)), str(r.n_in), r.activation, r.bias,
                       f"{r.symbol}..", str(r.n_params))
    if compact:
        return Group(head, diagram, loss, layers)
    eqs = [Text(e, style="cyan", no_wrap=True, overflow="ellipsis") for e in res.equations[:max_equations]]
    if len(res.equations) > max_equations:
        eqs.append(Text(f"... {len(res.equations) - max_equations} more nodes", style="dim"))
    params = Table(box=box.SIMPLE_HEAD, title="Parameters", title_justify="left", pad_edge=False)
    for col in ("name", "layer", "to", "from", "value"):
        params.add_column(col, justify="right" if col == "value" else "left", no_wrap=True,
                          overflow="ellipsis", max_width=18 if col == "from" else None)
    for p in res.params[:max_params]:
        name = Text(p.name) if p.trainable else Text(p.name + " (frozen)", style="dim")
        params.add_row(name, p.layer, Text(p.to_node), Text(p.from_node), f"{p.value:.6g}")
    parts = [head, diagram, *eqs, loss, layers, params]
    if len(res.params) > max_params:
        parts.append(Text(f"... and {len(res.params) - max_params} more parameters (all of them in --json)", style="dim"))
    return Group(*parts)
