"""Rich view of `bpcli show` (ShowResult)."""

from __future__ import annotations

from rich import box
from rich.console import Group
from rich.table import Table
from rich.text import Text

from bpcli.render.runs import stepped_text
from bpcli.render.wrap import Prose


def _abbrev(names, limit: int = 4, max_chars: int = 28) -> str:
    names = list(names)
    text = ", ".join(names)
    if len(names) <= limit and len(text) <= max_chars:
        return text
    return f"{names[0]}, ..., {names[-1]} ({len(names)})"


def show_view(res, max_params: int = 60, compact: bool = False, max_equations: int = 6) -> Group:
    """Diagram, equations, layers table and the parameter list (ShowResult).

    compact: just the diagram, loss and layers (what `train` shows before training).
    With a sample (show --sample I): the diagram, then that sample's forward values and deltas.
    """
    at = f" after epoch {res.epoch}" if res.epoch is not None else ""
    head = Text.assemble((res.name, "bold"), "  ", Text(res.source + at), "  ", (f"{res.n_params} parameters", "dim"))
    stages = [_abbrev(res.inputs)] + [_abbrev(r.nodes) for r in res.layers]
    diagram = Text(" -> ".join(stages) + "  (output y')")
    if res.output_labels is not None:
        diagram = Group(diagram, Text.assemble(("outputs ", "bold"), Text(", ".join(
            f"{n} ({lab})" for n, lab in zip(res.layers[-1].nodes, res.output_labels)))))
    if res.sample is not None:
        return Group(head, diagram, sample_view(res.sample))
    loss = Prose(Text.assemble(("loss ", "bold"), res.loss, "  ", (res.loss_formula, "dim"),
                               ("   C = 1/m * sum_i L_i", "dim")))  # wrapped between formulas, never inside one
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
    # a grid, so a long weighted sum wraps under itself instead of losing its last term (the bias)
    eq_grid = Table.grid(padding=(0, 2))
    eq_grid.add_column(no_wrap=True, style="cyan")
    eq_grid.add_column(style="cyan")
    shown = list(res.equations)
    outs: list[str] = []
    if len(shown) > max_equations:  # the first hidden nodes, then the output layer's first (up to 3)
        outs = [e for e in shown if e.startswith("y'")][:3]
        shown = [e for e in shown if not e.startswith("y'")][:max_equations - len(outs)]
    more = sum(len(r.nodes) for r in res.layers) - len(shown) - len(outs)
    for e in shown + ([None] if more else []) + outs:
        if e is None:
            eq_grid.add_row(Text(f"... {more} more nodes", style="dim"), "")
            continue
        out, _, z = e.partition(",  ")
        eq_grid.add_row(Text(out + ("," if z else "")), Text(z))
    eqs = [eq_grid] if res.equations else []
    params = Table(box=box.SIMPLE_HEAD, title="Parameters", title_justify="left", pad_edge=False)
    for col in ("name", "layer", "to", "from", "value"):
        params.add_column(col, justify="right" if col == "value" else "left", no_wrap=True,
                          overflow="ellipsis", max_width=18 if col == "from" else None)
    for p in res.params[:max_params]:
        name = Text(p.name) if p.trainable else Text(p.name + " (frozen)", style="dim")
        params.add_row(name, p.layer, Text(p.to_node), Text(p.from_node), f"{p.value:.6g}")
    parts = [head, diagram, *eqs, loss, layers, params]
    if res.n_params > max_params:
        how = ("--all lists them; all are in --json" if len(res.params) == res.n_params
               else f"--all and --json list the first {len(res.params):,}")
        parts.append(Text(f"... and {res.n_params - max_params} more parameters ({how})", style="dim"))
    if res.status == "stepped":
        parts.append(Prose(Text.assemble(("run: ", "bold"), stepped_text(res.stepped, res.source))))
    if res.snapshots:
        parts.append(snapshots_line(res.snapshots, res.epoch))
    return Group(*parts)


def _v(v: float | None) -> str:
    return "-" if v is None else f"{v + 0.0:.4g}"  # + 0.0 prints -0.0 as 0


def sample_view(tr, max_nodes: int = 8) -> Group:
    """One sample forward and backward: per layer and node z, output, delta dL/dz (SampleTrace)."""
    inputs = ", ".join(f"{n} = {v:.6g}" for n, v in tr.inputs)
    lines = [Text.assemble((f"sample {tr.index} of {tr.of}", "bold"), " (training data): ", Text(inputs))]
    if tr.raw_inputs is not None:
        raw = ", ".join(f"{n} = {v:.6g}" for n, v in tr.raw_inputs)
        lines.append(Text.assemble(("  standardised from ", "dim"), Text(raw, style="dim")))
    t = Table(box=box.SIMPLE_HEAD, pad_edge=False)
    t.add_column("layer", no_wrap=True)
    t.add_column("node (output)", no_wrap=True)
    t.add_column("z", justify="right", no_wrap=True)
    t.add_column("f(z)", justify="right", no_wrap=True)
    t.add_column("delta dL/dz", justify="right", no_wrap=True)
    t.add_column("bias", justify="right", no_wrap=True)
    for la in tr.layers:
        shown = la.nodes if len(la.nodes) <= max_nodes else la.nodes[: max_nodes - 1]
        for i, n in enumerate(shown):
            t.add_row(Text(f"{la.letter} {la.activation}") if i == 0 else "", Text(f"{n.name} ({n.output_symbol})"),
                      _v(n.z), _v(n.output), _v(n.delta), _v(n.bias_value))
        if len(shown) < len(la.nodes):
            t.add_row("", Text(f"... {len(la.nodes) - len(shown)} more", style="dim"), "", "", "", "")
        t.add_section()
    target = ", ".join(f"{v:.6g}" for v in tr.target)
    loss = Text.assemble(("loss ", "bold"), f"L = {tr.loss:.6g}", f"   target y = {target}")
    if tr.dy_hat is not None:
        loss.append("   dL/dy' = " + ", ".join(f"{v:.6g}" for v in tr.dy_hat))
    else:
        loss.append("   output delta dL/dz = y' - y (fused)", style="dim")
    note = Text("delta: dL/dz of the node for this sample; the gradient of a weight into it is delta * the input "
                "it multiplies (every one in --json and in --dot).", style="dim")
    return Group(*lines, t, loss, note)


def snapshots_line(s: dict, epoch: int | None) -> Text | Group:
    """'snapshots: epochs 0-10000 every 10 (1,001 kept, 3.2 MB); look at one with --epoch N', and which epoch's
    weights the run itself holds when early stopping put back the best."""
    if not s["count"]:
        return Text(f"snapshots: none kept ({s['why']})", style="dim")
    from bpcli.runs.snapshot_store import size_text
    line = Text.assemble(("snapshots: ", "bold"), f"epochs {s['epochs']} ({s['count']:,} kept, "
                         f"{size_text(s['bytes'])})")
    if s["weights_epoch"] is not None and s["weights_epoch"] != s["epochs_trained"]:
        return Group(line, Text(f"the run holds epoch {s['weights_epoch']}'s weights (the best); "
                                f"--epoch {s['epochs_trained']} gives the last epoch's", style="dim"))
    if epoch is None:
        line.append("; look at one with --epoch N", style="dim")
    return line
