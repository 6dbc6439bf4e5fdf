"""Views of `bpcli explain` (ExplainReport): a Rich view that fits the terminal, Markdown and LaTeX text."""

from __future__ import annotations

from rich import box
from rich.console import Console, ConsoleOptions, Group, RenderResult
from rich.measure import Measurement
from rich.table import Table
from rich.text import Text

from bpcli.render import fmt

MAX_ROWS = 10  # per-sample rows shown before the summary line (all of them are in --json)
MAX_NODE_ROWS = 12  # rows of a sum or delta table


def num(v: float | None, digits: int = 6) -> str:
    """A number inside a product: negative numbers in parentheses."""
    s = fmt(v, digits)
    return f"({s})" if s.startswith("-") else s


def product_text(values, digits: int = 6) -> str:
    return " * ".join(num(v, digits) for v in values)


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


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


def _sample_rows(e, max_rows: int = MAX_ROWS) -> list[int | None]:
    """Which samples the table shows: the first max_rows, plus the detail sample; None marks a gap."""
    rows: list[int | None] = list(range(min(e.m, max_rows)))
    if e.sample_given and e.sample >= max_rows:
        rows += [None, e.sample]
    elif e.m > max_rows:
        rows.append(None)
    return rows


def sample_table(e, columns, inputs: bool, outputs: bool, digits: int) -> Table:
    """One row per sample: inputs, target, output, each factor and the product; the mean below."""
    t = Table(box=box.SIMPLE_HEAD, pad_edge=False, padding=(0, 1))
    t.add_column("i", justify="right", no_wrap=True, style="dim")
    ctx: list[tuple[str, list[float]]] = []
    if inputs:
        ctx += [(nm, [r[k] for r in e.x]) for k, nm in enumerate(e.input_names)]
    if outputs:
        for q in e.focus_outputs:
            ctx.append((e.target_names[q], [r[q] for r in e.y]))
            ctx.append((e.output_names[q], [r[q] for r in e.y_hat]))
    for nm, _ in ctx:
        t.add_column(Text(nm), justify="right", no_wrap=True, style="dim")
    for f in columns:
        t.add_column(Text(f.symbol), justify="right", no_wrap=True)
    t.add_column(Text(f"dL_i/d{e.name}"), justify="right", no_wrap=True, style="bold")
    for i in _sample_rows(e):
        if i is None:
            t.add_row("...", *[""] * (len(ctx) + len(columns) + 1))
            continue
        style = "reverse" if e.sample_given and i == e.sample else None
        t.add_row(str(i + 1), *[fmt(vals[i], digits) for _, vals in ctx],
                  *[fmt(f.values[i], digits) for f in columns], fmt(e.products[i], digits), style=style)
    t.add_section()
    t.add_row("mean", *[""] * (len(ctx) + len(columns)), Text(fmt(e.mean, digits), style="bold green"))
    return t


def _fitted_sample_table(e) -> _Fitted:
    many_inputs = len(e.input_names) > 4
    levels = []
    sets = [e.columns] if e.compact == e.columns else [e.columns, e.compact]
    for cols in sets:
        # drop the context columns first: inputs before a single output, several outputs before the inputs
        second = (False, True) if len(e.focus_outputs) <= 1 else (not many_inputs, False)
        for inputs, outputs, digits in ((not many_inputs, True, 6), (*second, 6), (False, False, 6), (False, False, 4)):
            levels.append((cols, inputs, outputs, digits))
    return _Fitted([lambda c=c, i=i, o=o, d=d: sample_table(e, c, i, o, d) for c, i, o, d in levels])


def _steps_grid(e) -> Table:
    g = Table.grid(padding=(0, 2))
    g.add_column(no_wrap=True, style="bold")
    g.add_column()
    for s in e.steps:
        cell = Text(s.text, style="cyan")
        if s.note:
            cell.append("\n" + s.note, style="dim")
        g.add_row(s.label, cell)
    cell = Text(e.chain.text, style="bold cyan")
    if e.chain.note:
        cell.append("\n" + e.chain.note, style="dim")
    g.add_row("So", cell)
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
        t.add_row(Text(r.node), fmt(r.delta), Text(r.weight_symbol), fmt(r.weight), fmt(r.product))
    if len(s.rows) > MAX_NODE_ROWS:
        t.add_row("...", "", Text(f"{len(s.rows) - MAX_NODE_ROWS} more in --json"), "", "")
    t.add_section()
    t.add_row(Text("sum"), "", Text(f"= {s.result_symbol}"), "", Text(fmt(s.total), style="bold"))
    parts = [t]
    if s.result is not None and len(s.combine) == 3:  # an upstream sum: times f'(z) gives the delta, times the input
        fp, delta, inp = s.combine
        node_delta = delta.symbol
        parts.append(Text(f"{node_delta} = {fp.symbol} * {s.result_symbol} = {num(fp.value)} * {num(s.total)} "
                          f"= {fmt(delta.value)}", style="cyan"))
        parts.append(Text(f"{s.result.symbol} = {node_delta} * {inp.symbol} = {num(delta.value)} * {num(inp.value)} "
                          f"= {fmt(s.result.value)}", style="cyan"))
    elif s.result is not None and len(s.combine) == 1:  # the softmax Jacobian: times the input
        inp = s.combine[0]
        parts.append(Text(f"{s.result.symbol} = {s.result_symbol} * {inp.symbol} = {num(s.total)} * {num(inp.value)} "
                          f"= {fmt(s.result.value)}", style="cyan"))
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
        g.add_row(Text(d.symbol), "=", fmt(d.value), "", why)
    prod = Text(f"dL_{i + 1}/d{e.name} = {product_text([d.value for d in e.detail])} = {fmt(e.products[i])}",
                style="bold cyan")
    parts = [head, g, prod, Text(""), Text(f"The deltas at sample {i + 1}, from the output back to layer {e.layer}:")]
    for ld in e.layers:
        parts.append(_delta_table(ld))
    return Group(*parts)


def _delta_table(ld) -> Group:
    t = Table(box=box.SIMPLE_HEAD, pad_edge=False)
    t.add_column("node", no_wrap=True)
    t.add_column("dL/da", justify="right", no_wrap=True)
    t.add_column("f'(z)", justify="right", no_wrap=True)
    t.add_column("dL/dz", justify="right", no_wrap=True)
    for nd in ld.nodes[:MAX_NODE_ROWS]:
        t.add_row(Text(nd.node), fmt(nd.upstream), fmt(nd.fprime), fmt(nd.delta))
    if len(ld.nodes) > MAX_NODE_ROWS:
        t.add_row("...", Text(f"{len(ld.nodes) - MAX_NODE_ROWS} more"), "", "")
    return Group(Text(f"layer {ld.letter}: {ld.rule}", style="bold"), t)


def _paths_view(e) -> Group:
    p = e.paths
    if p.listed is None:
        return Group(Text(f"{_plural(p.count, 'path')} lead from {e.name} to the loss, more than {p.limit}: not listed "
                          "(the sums above add them up layer by layer)", style="dim"))
    i = e.sample + 1
    t = Table(box=box.SIMPLE_HEAD, pad_edge=False, title=Text(f"{_plural(p.count, 'path')} from {e.name} to the loss"),
              title_justify="left", title_style="bold")
    t.add_column("#", justify="right", no_wrap=True, style="dim")
    t.add_column("path", no_wrap=False)
    t.add_column(Text(f"factors, values at sample {i}"), ratio=1)
    t.add_column(Text(f"sample {i}"), justify="right", no_wrap=True)
    t.add_column("mean", justify="right", no_wrap=True)
    for n, term in enumerate(p.listed, 1):
        cell = Text(" * ".join(term.symbols), style="cyan")
        cell.append("\n= " + product_text(term.values, 4), style="dim")
        t.add_row(str(n), Text(" -> ".join(term.nodes)), cell, fmt(term.sample_product), fmt(term.contribution))
    t.add_section()
    t.add_row("", Text("sum"), Text(f"= dL_{i}/d{e.name} and dC/d{e.name}"), Text(fmt(p.sample_sum), style="bold"),
              Text(fmt(p.total), style="bold green"))
    ok = abs(p.total - e.engine) <= 1e-9 * max(abs(e.engine), 1e-300) + 1e-15
    verdict = Text("the paths add up to the engine's gradient" if ok else "the paths do NOT add up to the engine's gradient",
                   style="green" if ok else "bold red")
    return Group(t, verdict)


def _totals(e) -> Table:
    g = Table.grid(padding=(0, 2))
    g.add_column(no_wrap=True, style="bold")
    g.add_column()
    P = e.name
    eng = Text(f"dC/d{P} = {fmt(e.engine)}", style="bold")
    if e.agrees:
        eng.append("  (backward pass; the mean above agrees)", style="green")
    else:
        eng.append(f"  differs from the mean above by {fmt(abs(e.engine - e.mean), 3)}", style="bold red")
    g.add_row("engine gradient", eng)
    nc = e.numeric
    chk = Text(f"(C({P} + h) - C({P} - h)) / 2h = {fmt(nc.gradient)} with h = {fmt(nc.h, 2)}: ")
    chk.append(f"relative error {fmt(nc.rel_error, 2)}", style="green" if nc.agrees else "bold red")
    chk.append("  agrees" if nc.agrees else "  DISAGREES", style="green" if nc.agrees else "bold red")
    if nc.note:
        chk.append("\n" + nc.note, style="dim")
    g.add_row("numeric check", chk)
    u = e.update
    if not u.trainable:
        g.add_row("update", Text(u.note))
    else:
        if u.weight_decay:
            upd = Text(f"{P} <- {P} - lr * (dC/d{P} + wd * {P}) = {fmt(u.old)} - {fmt(u.lr)} * "
                       f"({num(u.gradient)} + {fmt(u.weight_decay)} * {num(u.old)}) = ")
        else:
            upd = Text(f"{P} <- {P} - lr * dC/d{P} = {fmt(u.old)} - {fmt(u.lr)} * {num(u.gradient)} = ")
        upd.append(fmt(u.new), style="bold")
        if u.note:
            upd.append("\n" + u.note, style="dim")
        g.add_row("update", upd)
    return g


def explanation_view(e, name: str = "", source: str = "", scaled: bool = False) -> Group:
    """Everything about one parameter: the steps, the per-sample table, the sums, the checks."""
    title = Text(f"dC/d{e.name}", style="bold magenta")
    where = f": {e.name} is {_where_text(e)}"
    title.append(where, style="bold")
    title.append(f"; value {fmt(e.value)}")
    sub = Text(f"{name}  ({source})  " if name else "", style="dim")
    sub.append(f"{_plural(e.m, 'sample')}" + (", inputs standardised as in training" if scaled else ""), style="dim")
    if e.dtype != "float64":
        sub.append(f", computed in {e.dtype}", style="dim")
    parts = [title, sub, Text(""), _steps_grid(e), Text("")]
    parts.append(Text(f"Every factor at every sample (dL_i/d{e.name} is their product):", style="bold"))
    parts.append(_fitted_sample_table(e))
    shown = len([r for r in _sample_rows(e) if r is not None])
    if e.m > shown:
        lo, hi = min(e.products), max(e.products)
        parts.append(Text(f"showing {shown} of {e.m} samples (all of them in --json); dL_i/d{e.name} ranges "
                          f"from {fmt(lo)} to {fmt(hi)}", style="dim"))
    parts.append(Text(f"mean over the {_plural(e.m, 'sample')}: dC/d{e.name} = 1/{e.m} * sum_i dL_i/d{e.name} = "
                      f"{fmt(e.mean)}"))
    sums = [s for s in e.sums if e.sample_given or len(s.rows) > 1]
    if sums:
        at = f"At sample {e.sample + 1}" + ("" if e.sample_given else " (choose another with --sample I)")
        parts += [Text(""), Text(at + ":", style="bold")]
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
        parts.append(explanation_view(e, report.name, report.source, report.scaled))
    return Group(*parts)


# --- Markdown and LaTeX ---------------------------------------------------------------------------


def tex_num(v: float, digits: int = 6) -> str:
    """A number for LaTeX: 1.2e-05 -> 1.2 \\times 10^{-5}; negatives in parentheses inside products."""
    s = fmt(v, digits)
    if "e" in s:
        mant, ex = s.split("e")
        s = rf"{mant} \times 10^{{{int(ex)}}}"
    return s


def tex_factor_num(v: float, digits: int = 6) -> str:
    s = tex_num(v, digits)
    return f"({s})" if s.startswith("-") or "times" in s else s


def _tex_eq_line(e, i: int) -> str:
    """dL_i/dp = f1 f2 ... = product, at sample i, in LaTeX."""
    from bpcli.explain import tex_symbol
    vals = r" \cdot ".join(tex_factor_num(f.values[i]) for f in e.columns)
    return (rf"\frac{{\partial L_{{{i + 1}}}}}{{\partial {tex_symbol(e.name)}}} = {vals} = {tex_num(e.products[i])}")


def _tex_mean_line(e) -> str:
    from bpcli.explain import tex_symbol
    P = tex_symbol(e.name)
    if e.m <= 8:
        inner = " + ".join(tex_factor_num(v) for v in e.products)
        return rf"\frac{{\partial C}}{{\partial {P}}} = \frac{{1}}{{{e.m}}}\left({inner}\right) = {tex_num(e.mean)}"
    return rf"\frac{{\partial C}}{{\partial {P}}} = \frac{{1}}{{{e.m}}}\sum_{{i=1}}^{{{e.m}}} \frac{{\partial L_i}}{{\partial {P}}} = {tex_num(e.mean)}"


def _tex_update_line(e) -> str:
    from bpcli.explain import tex_symbol
    P, u = tex_symbol(e.name), e.update
    if u.weight_decay:
        return (rf"{P} \leftarrow {P} - \eta\left(\frac{{\partial C}}{{\partial {P}}} + \lambda {P}\right) = "
                rf"{tex_num(u.old)} - {tex_num(u.lr)} \cdot ({tex_num(u.gradient)} + {tex_num(u.weight_decay)} "
                rf"\cdot {tex_factor_num(u.old)}) = {tex_num(u.new)}")
    return (rf"{P} \leftarrow {P} - \eta\,\frac{{\partial C}}{{\partial {P}}} = {tex_num(u.old)} - {tex_num(u.lr)} "
            rf"\cdot {tex_factor_num(u.gradient)} = {tex_num(u.new)}")


def _table_columns(e) -> tuple[list[tuple[str, str, list[float]]], list]:
    """(context columns as (plain, tex, values), factor columns) for the text formats."""
    from bpcli.explain import tex_symbol
    ctx = []
    if len(e.input_names) <= 4:
        ctx += [(nm, tex_symbol(nm), [r[k] for r in e.x]) for k, nm in enumerate(e.input_names)]
    for q in e.focus_outputs:
        ctx.append((e.target_names[q], tex_symbol(e.target_names[q]), [r[q] for r in e.y]))
        ctx.append((e.output_names[q], tex_symbol(e.output_names[q]), [r[q] for r in e.y_hat]))
    return ctx, list(e.columns)


def _where_text(e) -> str:
    if e.kind == "weight":
        return f"the weight of layer {e.layer} from {e.from_node} into node {e.to_node}"
    if e.to_node.startswith("all of"):
        return f"the bias shared by all nodes of layer {e.layer}"
    return f"the bias of node {e.to_node} (layer {e.layer})"


def explain_markdown(report) -> str:
    """The derivation with numbers as Markdown with $$ MathJax blocks, ready for notes or a Q&A answer."""
    out: list[str] = []
    for e in report.explanations:
        P = e.name
        out.append(f"### The gradient of the cost with respect to `{P}`\n")
        out.append(f"`{P}` is {_where_text(e)} of the network `{report.name}`; its value is {fmt(e.value)}. "
                   f"The cost is the mean over m = {e.m} samples"
                   + (" (inputs standardised as in training)." if report.scaled else "."))
        out.append("")
        for s in e.steps:
            out.append(f"**{s.label}.** {_md_escape(_sentence(s.note))}")
            out.append("")
            out.append(f"$${s.tex}$$")
            out.append("")
        out.append("**So**" + (f" ({_md_escape(e.chain.note)})" if e.chain.note else "") + "\n")
        out.append(f"$${e.chain.tex}$$\n")
        ctx, cols = _table_columns(e)
        head = ["i"] + [f"`{c[0]}`" for c in ctx] + [f"`{f.symbol}`" for f in cols] + [f"`dL_i/d{P}`"]
        out.append("| " + " | ".join(head) + " |")
        out.append("|" + "|".join("---:" for _ in head) + "|")
        for i in _sample_rows(e):
            if i is None:
                out.append("| ... |" + " |" * (len(head) - 1))
                continue
            cells = [str(i + 1)] + [fmt(c[2][i]) for c in ctx] + [fmt(f.values[i]) for f in cols] + [fmt(e.products[i])]
            out.append("| " + " | ".join(cells) + " |")
        out.append("| **mean** |" + " |" * (len(head) - 2) + f" **{fmt(e.mean)}** |")
        if e.m > MAX_ROWS:
            out.append(f"\n({MAX_ROWS} of {e.m} samples shown; `--json` has all of them.)")
        out.append("")
        i = e.sample
        out.append(f"At sample {i + 1}:\n")
        out.append(f"$${_tex_eq_line(e, i)}$$\n")
        for s in e.sums:
            if len(s.rows) > 1 or e.sample_given:
                terms = " + ".join(f"{tex_factor_num(r.delta)} \\cdot {tex_factor_num(r.weight)}" for r in s.rows[:8])
                if len(s.rows) > 8:
                    terms += r" + \dots"
                out.append(f"{_md_escape(s.title)}:\n")
                out.append(f"$${_tex_sum_lhs(s)} = {terms} = {tex_num(s.total)}$$\n")
        out.append("Over all samples:\n")
        out.append(f"$${_tex_mean_line(e)}$$\n")
        out.append(f"The engine's backward pass gives dC/d{P} = {fmt(e.engine)}"
                   + (" (the same)." if e.agrees else f" (differs by {fmt(abs(e.engine - e.mean), 3)}).")
                   + f" A central difference with h = {fmt(e.numeric.h, 2)} gives {fmt(e.numeric.gradient)}, "
                   f"relative error {fmt(e.numeric.rel_error, 2)}.\n")
        if e.paths is not None and e.paths.listed is not None:
            thin = r"\,"
            out.append(f"The {_plural(e.paths.count, 'path')} from `{P}` to the loss, averaged over the samples:\n")
            for n, t in enumerate(e.paths.listed, 1):
                out.append(f"{n}. `{' -> '.join(t.nodes)}`: ${thin.join(t.tex)}$ contributes {fmt(t.contribution)}")
            out.append(f"\nThey add up to {fmt(e.paths.total)}.\n")
        if e.update.trainable:
            out.append("One step of gradient descent with learning rate "
                       f"{fmt(e.update.lr)}:\n")
            out.append(f"$${_tex_update_line(e)}$$\n")
        else:
            out.append(_md_escape(e.update.note) + "\n")
        if e.update.trainable and e.update.note:
            out.append(f"({_md_escape(e.update.note)})\n")
        out.append("")
    return "\n".join(out).rstrip() + "\n"


def _tex_sum_lhs(s) -> str:
    from bpcli.explain import tex_symbol
    sym = s.result_symbol
    if sym.startswith("dL/d"):
        return rf"\frac{{\partial L}}{{\partial {tex_symbol(sym[4:])}}}"
    if sym.startswith("dL_"):
        n, p = sym[3:].split("/d", 1)
        return rf"\frac{{\partial L_{{{n}}}}}{{\partial {tex_symbol(p)}}}"
    return sym


def _sentence(s: str) -> str:
    """Capitalise a note's first word, unless it is a symbol (o1, y', z_A1) whose case is its meaning."""
    if not s:
        return s
    first = s.split(" ", 1)[0].rstrip(",:;")
    if first.isalpha():
        s = s[:1].upper() + s[1:]
    return s + ("" if s.endswith(".") else ".")


def _md_escape(s: str) -> str:
    return s.replace("*", r"\*").replace("_", r"\_")


def _tex_text(s: str) -> str:
    """Plain text for \\text{...}."""
    for a, b in (("\\", r"\textbackslash{}"), ("_", r"\_"), ("%", r"\%"), ("&", r"\&"), ("#", r"\#"),
                 ("$", r"\$"), ("{", r"\{"), ("}", r"\}"), ("^", r"\^{}"), ("~", r"\~{}")):
        s = s.replace(a, b)
    return s


def explain_latex(report) -> str:
    """The derivation with numbers as a LaTeX fragment (amsmath align* and a tabular)."""
    from bpcli.explain import tex_symbol
    out: list[str] = [f"% bpcli explain: {report.name} ({report.source}); needs amsmath"]
    for e in report.explanations:
        P = tex_symbol(e.name)
        out.append(rf"\subsection*{{The gradient of the cost with respect to ${P}$}}")
        out.append(f"${P}$ is {_tex_text(_where_text(e))} of the network \\texttt{{{_tex_text(report.name)}}}; "
                   f"its value is ${tex_num(e.value)}$. The cost is the mean over $m = {e.m}$ samples.")
        out.append(r"\begin{align*}")
        lines = []
        for s in e.steps + (e.chain,):
            lhs, _, rhs = s.tex.partition(" = ")
            lines.append(f"  {lhs} &= {rhs} && \\text{{{_tex_text(s.label)}}}")
        out.append(" \\\\\n".join(lines))
        out.append(r"\end{align*}")
        ctx, cols = _table_columns(e)
        out.append(r"\begin{tabular}{" + "r" * (1 + len(ctx) + len(cols) + 1) + "}")
        heads = ["$i$"] + [f"${c[1]}$" for c in ctx] + [f"${f.tex}$" for f in cols] + \
            [rf"$\frac{{\partial L_i}}{{\partial {P}}}$"]
        out.append(r"\hline")
        out.append(" & ".join(heads) + r" \\")
        out.append(r"\hline")
        for i in _sample_rows(e):
            if i is None:
                out.append(r"\multicolumn{" + str(len(heads)) + r"}{c}{$\vdots$} \\")
                continue
            cells = [str(i + 1)] + [f"${tex_num(c[2][i])}$" for c in ctx] + [f"${tex_num(f.values[i])}$" for f in cols] \
                + [f"${tex_num(e.products[i])}$"]
            out.append(" & ".join(cells) + r" \\")
        out.append(r"\hline")
        out.append(r"\multicolumn{" + str(len(heads) - 1) + r"}{r}{mean $= \partial C/\partial " + P + "$} & $"
                   + tex_num(e.mean) + r"$ \\")
        out.append(r"\hline")
        out.append(r"\end{tabular}")
        out.append(r"\begin{align*}")
        lines = [f"  {_tex_eq_line(e, e.sample).replace(' = ', ' &= ', 1)}"]
        for s in e.sums:
            if len(s.rows) > 1 or e.sample_given:
                terms = " + ".join(f"{tex_factor_num(r.delta)} \\cdot {tex_factor_num(r.weight)}" for r in s.rows[:8])
                lines.append(f"  {_tex_sum_lhs(s)} &= {terms} = {tex_num(s.total)}")
        lines.append(f"  {_tex_mean_line(e).replace(' = ', ' &= ', 1)}")
        if e.update.trainable:
            lines.append(f"  {_tex_update_line(e).replace(' = ', ' &= ', 1)}")
        out.append(" \\\\\n".join(lines))
        out.append(r"\end{align*}")
        out.append(f"The backward pass gives ${tex_num(e.engine)}$; a central difference with "
                   f"$h = {tex_num(e.numeric.h, 2)}$ gives ${tex_num(e.numeric.gradient)}$ "
                   f"(relative error ${tex_num(e.numeric.rel_error, 2)}$).")
        if e.paths is not None and e.paths.listed is not None:
            out.append(r"\begin{align*}")
            thin = r"\,"
            plines = [r" \to ".join(rf"\text{{{_tex_text(nd)}}}" for nd in t.nodes) + f": && {thin.join(t.tex)} && "
                      f"{tex_num(t.contribution)}" for t in e.paths.listed]
            out.append(" \\\\\n".join(plines))
            out.append(r"\end{align*}")
            out.append(f"The {_plural(e.paths.count, 'path')} (contributions averaged over the samples) add up to "
                       f"${tex_num(e.paths.total)}$.")
        out.append("")
    return "\n".join(out).rstrip() + "\n"
