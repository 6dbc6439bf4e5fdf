"""Markdown and LaTeX views of `bpcli explain` (ExplainReport): the derivation with numbers, ready to paste."""

from __future__ import annotations

import re

from bpcli.explain.result import tex_escape, tex_symbol
from bpcli.render.numbers import fmt, fmt_error
from bpcli.render.explain import MAX_ROWS, plural, sample_rows, scaling_note, where_text
from bpcli.render.explain_update import update_header, update_tex_lines
from bpcli.render.tex_layout import fit_aligns, standalone as to_document, tex_table


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
    vals = r" \cdot ".join(tex_factor_num(f.values[i]) for f in e.columns)
    return (rf"\frac{{\partial L_{{{i + 1}}}}}{{\partial {tex_symbol(e.name)}}} = {vals} = {tex_num(e.products[i])}")


def _tex_mean_line(e) -> str:
    P = tex_symbol(e.name)
    if e.m <= 8:
        inner = " + ".join(tex_factor_num(v) for v in e.products)
        return rf"\frac{{\partial C}}{{\partial {P}}} = \frac{{1}}{{{e.m}}}\left({inner}\right) = {tex_num(e.mean)}"
    return rf"\frac{{\partial C}}{{\partial {P}}} = \frac{{1}}{{{e.m}}}\sum_{{i=1}}^{{{e.m}}} \frac{{\partial L_i}}{{\partial {P}}} = {tex_num(e.mean)}"


def _table_columns(e) -> tuple[list[tuple[str, str, list[float]]], list]:
    """(context columns as (plain, tex, values), factor columns) for the text formats."""
    ctx = []
    if len(e.input_names) <= 4:
        ctx += [(nm, tex_symbol(nm), [r[k] for r in e.x]) for k, nm in enumerate(e.input_names)]
    for q in e.focus_outputs:
        ctx.append((e.target_names[q], tex_symbol(e.target_names[q]), [r[q] for r in e.y]))
        ctx.append((e.output_names[q], tex_symbol(e.output_names[q]), [r[q] for r in e.y_hat]))
    return ctx, list(e.columns)


def explain_markdown(report) -> str:
    """The derivation with numbers as Markdown with $$ MathJax blocks, ready for notes or a Q&A answer."""
    out: list[str] = []
    for e in report.explanations:
        P = e.name
        out.append(f"### The gradient of the cost with respect to `{P}`\n")
        out.append(f"`{P}` is {_md_escape(where_text(e))} of the network {_md_code(report.name)}; "
                   f"its value is {fmt(e.value)}. "
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
        head = ["i"] + [_md_code(c[0], cell=True) for c in ctx] + [_md_code(f.symbol, cell=True) for f in cols] + \
            [f"`dL_i/d{P}`"]
        out.append("| " + " | ".join(head) + " |")
        out.append("|" + "|".join("---:" for _ in head) + "|")
        for i in sample_rows(e):
            if i is None:
                out.append("| ... |" + " |" * (len(head) - 1))
                continue
            cells = [str(i + 1)] + [fmt(c[2][i]) for c in ctx] + [fmt(f.values[i]) for f in cols] + [fmt(e.products[i])]
            out.append("| " + " | ".join(cells) + " |")
        out.append("| **mean** |" + " |" * (len(head) - 2) + f" **{fmt(e.mean)}** |")
        if e.m > MAX_ROWS:
            out.append(f"\n({MAX_ROWS} of {e.m} samples shown; `--json` has all of them.)")
        if report.scaling:
            out.append(f"\n({_md_escape(_sentence(scaling_note(report.scaling)))})")
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
                   + f" A central difference with h = {fmt(e.numeric.h)} gives {fmt(e.numeric.gradient)}, "
                   f"relative error {fmt_error(e.numeric.rel_error)}.\n")
        if e.paths is not None and e.paths.listed is not None:
            thin = r"\,"
            out.append(f"The {plural(e.paths.count, 'path')} from `{P}` to the loss, averaged over the samples:\n")
            for n, t in enumerate(e.paths.listed, 1):
                out.append(f"{n}. {_md_code(' -> '.join(t.nodes))}: ${thin.join(t.tex)}$ contributes "
                           f"{fmt(t.contribution)}")
            out.append(f"\nThey add up to {fmt(e.paths.total)}.\n")
        if e.update.trainable:
            out.append(f"The next update, {_md_escape(update_header(e.update))}:\n")
            out += [f"$${line}$$\n" for line in update_tex_lines(tex_symbol(e.name), e.update, tex_num)]
        else:
            out.append(_md_escape(e.update.note) + "\n")
        if e.update.trainable and e.update.note:
            out.append(f"({_md_escape(e.update.note)})\n")
        out.append("")
    return "\n".join(out).rstrip() + "\n"


def _tex_sum_lhs(s) -> str:
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
    """Text for Markdown prose: what would be markup (emphasis, code, links, HTML, a table's bar) escaped, and
    control characters and line ends as spaces (a blank line would end the paragraph)."""
    s = "".join(" " if not c.isprintable() else c for c in str(s))
    for c in "\\`*_[]<>|":
        s = s.replace(c, "\\" + c)
    return s


def _md_code(s: str, cell: bool = False) -> str:
    """User text as one Markdown code span (shown as written, never markup): fenced by more backticks than any
    run inside it, control characters and line ends as spaces; in a table cell a bar escaped (GFM)."""
    s = "".join(" " if not c.isprintable() else c for c in str(s))
    if cell:
        s = s.replace("|", "\\|")
    fence = "`" * (1 + max((len(r) for r in re.findall(r"`+", s)), default=0))
    pad = " " if s.startswith("`") or s.endswith("`") else ""
    return f"{fence}{pad}{s}{pad}{fence}"


def _tex_text(s: str) -> str:
    """Plain text for \\text{...} and paragraphs: the one escaper every user text goes through."""
    return tex_escape(s)


def explain_latex(report, standalone: bool = False) -> str:
    """The derivation with numbers as a LaTeX fragment (amsmath align* and a tabular), or with `standalone` a
    whole document; sized for a 16 cm text width (tex_layout)."""
    out: list[str] = [f"% bpcli explain: {_tex_comment(report.name)} ({_tex_comment(report.source)})"
                      + ("" if standalone else "; needs amsmath, sized for a 16 cm text width")]
    for e in report.explanations:
        P = tex_symbol(e.name)
        out.append(rf"\subsection*{{The gradient of the cost with respect to ${P}$}}")
        out.append(f"${P}$ is {_tex_text(where_text(e))} of the network \\texttt{{{_tex_text(report.name)}}}; "
                   f"its value is ${tex_num(e.value)}$. The cost is the mean over $m = {e.m}$ samples.")
        out.append(r"\begin{align*}")
        lines = []
        for s in e.steps + (e.chain,):
            lhs, _, rhs = s.tex.partition(" = ")
            lines.append(f"  {lhs} &= {rhs} && \\text{{{_tex_text(s.label)}}}")
        out.append(" \\\\\n".join(lines))
        out.append(r"\end{align*}")
        ctx, cols = _table_columns(e)
        heads = ["$i$"] + [f"${c[1]}$" for c in ctx] + [f"${f.tex}$" for f in cols] + \
            [rf"$\frac{{\partial L_i}}{{\partial {P}}}$"]
        rows = [None if i is None else [str(i + 1)] + [f"${tex_num(c[2][i])}$" for c in ctx]
                + [f"${tex_num(f.values[i])}$" for f in cols] + [f"${tex_num(e.products[i])}$"]
                for i in sample_rows(e)]
        out += tex_table(heads, rows, (rf"mean $= \partial C/\partial {P}$", f"${tex_num(e.mean)}$"))
        if report.scaling:
            out.append("\n" + _tex_text(_sentence(scaling_note(report.scaling))))  # a paragraph of its own
        out.append(r"\begin{align*}")
        lines = [f"  {_tex_eq_line(e, e.sample).replace(' = ', ' &= ', 1)}"]
        for s in e.sums:
            if len(s.rows) > 1 or e.sample_given:
                terms = " + ".join(f"{tex_factor_num(r.delta)} \\cdot {tex_factor_num(r.weight)}" for r in s.rows[:8])
                lines.append(f"  {_tex_sum_lhs(s)} &= {terms} = {tex_num(s.total)}")
        lines.append(f"  {_tex_mean_line(e).replace(' = ', ' &= ', 1)}")
        lines += [f"  {ln}" for ln in update_tex_lines(P, e.update, tex_num, align=True)]
        out.append(" \\\\\n".join(lines))
        out.append(r"\end{align*}")
        out.append(f"The backward pass gives ${tex_num(e.engine)}$; a central difference with "
                   f"$h = {tex_num(e.numeric.h)}$ gives ${tex_num(e.numeric.gradient)}$ "
                   f"(relative error ${tex_num(e.numeric.rel_error, 2)}$).")
        if e.paths is not None and e.paths.listed is not None:
            out.append(r"\begin{align*}")
            thin = r"\,"
            plines = [r" \to ".join(rf"\text{{{_tex_text(nd)}}}" for nd in t.nodes) + f": && {thin.join(t.tex)} && "
                      f"{tex_num(t.contribution)}" for t in e.paths.listed]
            out.append(" \\\\\n".join(plines))
            out.append(r"\end{align*}")
            out.append(f"The {plural(e.paths.count, 'path')} (contributions averaged over the samples) add up to "
                       f"${tex_num(e.paths.total)}$.")
        out.append("")
    text = fit_aligns("\n".join(out).rstrip() + "\n")
    return to_document(text) if standalone else text


def _tex_comment(s: str) -> str:
    """Text for a % comment: one line, escaped like any other text."""
    return tex_escape(" ".join(str(s).split()))
