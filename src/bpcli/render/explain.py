"""Rich view of `bpcli explain` (ExplainReport), fitted to the terminal; Markdown and LaTeX are in explain_doc."""

from __future__ import annotations

from rich import box
from rich.console import Console, ConsoleOptions, Group, RenderResult
from rich.measure import Measurement
from rich.table import Table
from rich.text import Text

from bpcli.render.numbers import fmt, fmt_error
from bpcli.render.explain_update import num, update_header, update_lines
from bpcli.render.wrap import Prose

MAX_ROWS = 10  # per-sample rows shown before the summary line (all of them are in --json)
MAX_NODE_ROWS = 12  # rows of a sum or delta table


def product_text(values) -> str:
    return " * ".join(num(v) for v in values)


def plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def label(e, node: str) -> str:
    """A node's name with the class it stands for beside it: B1 (class "setosa")."""
    c = dict(e.classes).get(node)
    return node if c is None else f'{node} (class "{c}")'


def where_text(e) -> str:
    if e.kind == "weight":
        return f"the weight of layer {e.layer} from {e.from_node} into node {label(e, e.to_node)}"
    if e.to_node.startswith("all of"):
        return f"the bias shared by all nodes of layer {e.layer}"
    return f"the bias of node {label(e, e.to_node)} (layer {e.layer})"


# --- the Rich view -------------------------------------------------------------------------------


class _Fitted:
    """Renders the first of several candidate tables that fits the available width."""

    def __init__(self, candidates):
        self.candidates = candidates  # callables returning a Table, widest first

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        table = None
        unbounded = options.update(max_width=1_000_000)  # Measurement.get clamps to max_width otherwise
        for build in self.candidates:
            table = build()
            if Measurement.get(console, unbounded, table).maximum <= options.max_width:
                break
        yield table

    def __rich_measure__(self, console: Console, options: ConsoleOptions) -> Measurement:
        return Measurement.get(console, options, self.candidates[-1]())


def sample_rows(e, max_rows: int = MAX_ROWS) -> list[int | None]:
    """Which samples the table shows: the first max_rows, plus the detail sample; None marks a gap."""
    rows: list[int | None] = list(range(min(e.m, max_rows)))
    if e.sample_given and e.sample >= max_rows:
        rows += [None, e.sample]
    elif e.m > max_rows:
        rows.append(None)
    return rows


def sample_table(e, columns, inputs: bool, outputs: bool, factors: bool = True) -> Table:
    """One row per sample: inputs, target and output (the context), each factor and the product, the mean below;
    factors=False gives the context alone."""
    t = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, padding=(0, 0, 0, 1))  # columns 2 apart
    t.add_column("i", justify="right", no_wrap=True, style="dim")
    ctx: list[tuple[str, list[float]]] = []
    if inputs:
        ctx += [(nm, [r[k] for r in e.x]) for k, nm in enumerate(e.input_names)]
    if outputs:
        for q in e.focus_outputs:
            ctx.append((e.target_names[q], [r[q] for r in e.y]))
            ctx.append((e.output_names[q], [r[q] for r in e.y_hat]))
    cols = list(columns) if factors else []
    for nm, _ in ctx:
        t.add_column(Text(nm), justify="right", no_wrap=True, style="dim")
    for f in cols:
        t.add_column(Text(f.symbol), justify="right", no_wrap=True)
    if factors:
        t.add_column(Text(f"dL_i/d{e.name}"), justify="right", no_wrap=True, style="bold")
    tail = 1 if factors else 0
    for i in sample_rows(e):
        if i is None:
            t.add_row("...", *[""] * (len(ctx) + len(cols) + tail))
            continue
        style = "reverse" if e.sample_given and i == e.sample else None
        t.add_row(str(i + 1), *[fmt(vals[i]) for _, vals in ctx], *[fmt(f.values[i]) for f in cols],
                  *([fmt(e.products[i])] if factors else []), style=style)
    if factors:
        t.add_section()
        t.add_row("mean", *[""] * (len(ctx) + len(cols)), Text(fmt(e.mean), style="bold green"))
    return t


def _fitted_sample_table(e) -> _Fitted:
    """The widest layout that fits: the context columns that define the factors (target and output) stay;
    inputs that are not factors go first; then the samples and the factors become two tables."""
    many_inputs = len(e.input_names) > 4
    has_out = bool(e.focus_outputs)
    levels = []
    sets = [e.columns] if e.compact == e.columns else [e.columns, e.compact]
    for cols in sets:
        levels += [lambda c=cols: sample_table(e, c, not many_inputs, True),
                   lambda c=cols: sample_table(e, c, False, True)]
        if has_out or not many_inputs:  # two tables: the samples, then the factors
            levels += [lambda c=cols: Group(sample_table(e, c, not many_inputs, True, factors=False), Text(""),
                                            sample_table(e, c, False, False)),
                       lambda c=cols: Group(sample_table(e, c, False, True, factors=False), Text(""),
                                            sample_table(e, c, False, False))]
        else:
            levels.append(lambda c=cols: sample_table(e, c, False, False))
    return _Fitted(levels)


def _steps_grid(e) -> Table:
    g = Table.grid(padding=(0, 2))
    g.add_column(no_wrap=True, style="bold")
    g.add_column()
    for s in list(e.steps) + [e.chain]:
        bold = "bold " if s is e.chain else ""
        cell = [Prose(Text(s.text, style=bold + "cyan"), hang=4)]
        if s.note:
            cell.append(Prose(Text(s.note, style="dim")))
        g.add_row(s.label, Group(*cell))
    return g


def _sum_table(s, e) -> Group:
    t = Table(box=box.SIMPLE_HEAD, pad_edge=False, title=Text(s.title), title_justify="left", title_style="bold")
    t.add_column("node", no_wrap=True)
    t.add_column(Text(s.delta_header), justify="right", no_wrap=True)
    t.add_column(Text(s.weight_header), no_wrap=True)
    t.add_column("value", justify="right", no_wrap=True)
    t.add_column("product", justify="right", no_wrap=True)
    rows = s.rows if len(s.rows) <= MAX_NODE_ROWS else s.rows[:MAX_NODE_ROWS]
    for r in rows:
        t.add_row(Text(label(e, r.node)), fmt(r.delta), Text(r.weight_symbol), fmt(r.weight), fmt(r.product))
    if len(s.rows) > MAX_NODE_ROWS:
        t.add_row("...", "", Text(f"{len(s.rows) - MAX_NODE_ROWS} more in --json"), "", "")
    t.add_section()
    t.add_row(Text("sum"), "", Text(f"= {s.result_symbol}"), "", Text(fmt(s.total), style="bold"))
    parts = [t]
    if s.result is not None and len(s.combine) == 3:  # an upstream sum: times f'(z) gives the delta, times the input
        fp, delta, inp = s.combine
        node_delta = delta.symbol
        parts.append(Prose(f"{node_delta} = {fp.symbol} * {s.result_symbol} = {num(fp.value)} * {num(s.total)} "
                             f"= {fmt(delta.value)}", style="cyan", hang=4))
        parts.append(Prose(f"{s.result.symbol} = {node_delta} * {inp.symbol} = {num(delta.value)} * "
                             f"{num(inp.value)} = {fmt(s.result.value)}", style="cyan", hang=4))
    elif s.result is not None and len(s.combine) == 1:  # the softmax Jacobian: times the input
        inp = s.combine[0]
        parts.append(Prose(f"{s.result.symbol} = {s.result_symbol} * {inp.symbol} = {num(s.total)} * "
                             f"{num(inp.value)} = {fmt(s.result.value)}", style="cyan", hang=4))
    return Group(*parts)


def _detail(e) -> Group:
    i = e.sample
    head = Text(f"Sample {i + 1} in full: ", style="bold")
    head.append(", ".join(f"{nm} = {fmt(v)}" for nm, v in list(zip(e.input_names, e.x[i]))[:8]))
    if len(e.input_names) > 8:
        head.append(f", ... ({len(e.input_names)} inputs)")
    head.append("; " + ", ".join(f"{nm} = {fmt(v)}" for nm, v in zip(e.target_names, e.y[i])))
    head.append(", " + ", ".join(f"{nm} = {fmt(v)}" for nm, v in zip(e.output_names, e.y_hat[i])))
    g = Table.grid(padding=(0, 1))
    g.add_column(no_wrap=True)
    g.add_column(no_wrap=True)
    g.add_column(justify="right", no_wrap=True)
    g.add_column(width=1)
    g.add_column()
    for d in e.detail:
        why = Text(d.rule, style="dim")
        if d.operands:
            why.append(" with " + ", ".join(f"{o.symbol} = {fmt(o.value)}" for o in d.operands), style="dim")
        g.add_row(Text(d.symbol), "=", fmt(d.value), "", Prose(why))
    prod = Text(f"dL_{i + 1}/d{e.name} = {product_text([d.value for d in e.detail])} = {fmt(e.products[i])}",
                style="bold cyan")
    parts = [Prose(head), g, Prose(prod), Text(""),
             Prose(f"The deltas at sample {i + 1}, from the output back to layer {e.layer}:")]
    for ld in e.layers:
        parts.append(_delta_table(ld, e))
    return Group(*parts)


def _delta_table(ld, e) -> Group:
    t = Table(box=box.SIMPLE_HEAD, pad_edge=False)
    t.add_column("node", no_wrap=True)
    t.add_column("dL/da", justify="right", no_wrap=True)
    t.add_column("f'(z)", justify="right", no_wrap=True)
    t.add_column("dL/dz", justify="right", no_wrap=True)
    for nd in ld.nodes[:MAX_NODE_ROWS]:
        t.add_row(Text(label(e, nd.node)), fmt(nd.upstream), fmt(nd.fprime), fmt(nd.delta))
    if len(ld.nodes) > MAX_NODE_ROWS:
        t.add_row("...", Text(f"{len(ld.nodes) - MAX_NODE_ROWS} more"), "", "")
    return Group(Prose(Text(f"layer {ld.letter}: {ld.rule}", style="bold")), t)


def _paths_view(e) -> Group:
    p = e.paths
    if p.listed is None:
        return Group(Prose(Text(f"{plural(p.count, 'path')} lead from {e.name} to the loss, more than {p.limit}: "
                                  "not listed (the sums above add them up layer by layer)", style="dim")))
    i = e.sample + 1
    t = Table(box=box.SIMPLE_HEAD, pad_edge=False, title=Text(f"{plural(p.count, 'path')} from {e.name} to the loss"),
              title_justify="left", title_style="bold")
    t.add_column("#", justify="right", no_wrap=True, style="dim")
    t.add_column("path")
    t.add_column(Text(f"factors, values at sample {i}"), ratio=1)
    t.add_column(Text(f"sample {i}"), justify="right", no_wrap=True)
    t.add_column("mean", justify="right", no_wrap=True)
    for n, term in enumerate(p.listed, 1):
        cell = Text(" * ".join(term.symbols), style="cyan")
        cell.append("\n= " + product_text(term.values), style="dim")
        t.add_row(str(n), Prose(" -> ".join(term.nodes)), Prose(cell), fmt(term.sample_product),
                  fmt(term.contribution))
    t.add_section()
    t.add_row("", Text("sum"), Prose(f"= dL_{i}/d{e.name} and dC/d{e.name}"), Text(fmt(p.sample_sum), style="bold"),
              Text(fmt(p.total), style="bold green"))
    ok = abs(p.total - e.engine) <= 1e-9 * max(abs(e.engine), 1e-300) + 1e-15
    verdict = Text("the paths add up to the engine's gradient" if ok else "the paths do NOT add up to the engine's gradient",
                   style="green" if ok else "bold red")
    return Group(t, Prose(verdict))


def _totals(e) -> Table:
    g = Table.grid(padding=(0, 2))
    g.add_column(no_wrap=True, style="bold")
    g.add_column()
    P = e.name
    eng = Text(f"dC/d{P} = {fmt(e.engine)}", style="bold")
    if e.agrees:
        eng.append("  backward pass; the mean above agrees", style="green")
    else:
        eng.append(f"  differs from the mean above by {fmt(abs(e.engine - e.mean), 3)}", style="bold red")
    g.add_row("engine gradient", Prose(eng))
    nc = e.numeric
    chk = Text(f"(C({P} + h) - C({P} - h)) / 2h = {fmt(nc.gradient)} with h = {fmt(nc.h)}: ")
    chk.append(f"relative error {fmt_error(nc.rel_error)}", style="green" if nc.agrees else "bold red")
    word = "agrees" if nc.agrees else {"inconclusive": "INCONCLUSIVE", "not finite": "NOT FINITE"}.get(
        nc.verdict, "DISAGREES")
    chk.append(f"  {word}", style="green" if nc.agrees else "magenta" if nc.verdict == "inconclusive" else "bold red")
    if nc.note:
        chk.append("\n" + nc.note, style="dim")
    g.add_row("numeric check", Prose(chk))
    u = e.update
    cell = [Prose(update_header(u) + ":" if u.trainable else update_header(u))]
    lines = update_lines(P, u)
    for k, line in enumerate(lines):
        t = Text(line, style="cyan")
        if k == len(lines) - 1:
            t.stylize("bold", line.rindex("= ") + 2)
        cell.append(Prose(t, hang=4))
    if u.note:
        cell.append(Prose(Text(u.note, style="dim")))
    g.add_row("update", Group(*cell))
    return g


def scaling_note(scaling) -> str:
    """The line under a table of standardised inputs: how each input was scaled (scaling: (input, mean, std)*)."""
    each = ", ".join(f"{nm} mean {fmt(m)} std {fmt(sd)}" for nm, m, sd in scaling)
    return f"the inputs are standardised as in training, x = (raw - mean) / std: {each}"


def explanation_view(e, name: str = "", source: str = "", scaled: bool = False, scaling=()) -> Group:
    """Everything about one parameter: the steps, the per-sample table, the sums, the checks; scaling:
    (input, mean, std) per input of standardised data, noted under the table."""
    title = Text(f"dC/d{e.name}", style="bold magenta")
    title.append(f": {e.name} = {fmt(e.value)}", style="bold")
    title.append(f" is {where_text(e)}")
    sub = Text(f"{name}  ({source})  " if name else "", style="dim")
    sub.append(f"{plural(e.m, 'sample')}" + (", inputs standardised as in training" if scaled else ""), style="dim")
    if e.dtype != "float64":
        sub.append(f", computed in {e.dtype}", style="dim")
    parts = [Prose(title), Prose(sub), Text(""), _steps_grid(e), Text("")]
    parts += [Prose(Text(f"Every factor at every sample (dL_i/d{e.name} is their product):", style="bold")),
              Text("")]
    parts += [_fitted_sample_table(e), Text("")]
    if scaling:
        parts.append(Prose(Text(scaling_note(scaling), style="dim")))
    shown = len([r for r in sample_rows(e) if r is not None])
    if e.m > shown:
        lo, hi = min(e.products), max(e.products)
        parts.append(Prose(Text(f"showing {shown} of {e.m} samples (all of them in --json); dL_i/d{e.name} ranges "
                                  f"from {fmt(lo)} to {fmt(hi)}", style="dim")))
    parts.append(Prose(f"mean over the {plural(e.m, 'sample')}: dC/d{e.name} = 1/{e.m} * sum_i dL_i/d{e.name} "
                         f"= {fmt(e.mean)}"))
    sums = [s for s in e.sums if e.sample_given or len(s.rows) > 1]
    if sums:
        at = f"At sample {e.sample + 1}" + ("" if e.sample_given else " (choose another with --sample I)")
        parts += [Text(""), Prose(Text(at + ":", style="bold"))]
        parts += [_sum_table(s, e) for s in sums]
    if e.sample_given:
        parts += [Text(""), _detail(e)]
    if e.paths is not None:
        parts += [Text(""), _paths_view(e)]
    parts += [Text(""), _totals(e)]
    return Group(*parts)


def explain_view(report) -> Group:
    """The Rich view of a whole ExplainReport: one block per parameter."""
    parts = []
    for n, e in enumerate(report.explanations):
        if n:
            parts.append(Text("\n" + "-" * 40, style="dim"))
        parts.append(explanation_view(e, report.name, report.source, report.scaled, report.scaling))
    return Group(*parts)
