"""Rich view of `bpcli diagnose` (DiagnoseReport)."""

from __future__ import annotations

from rich import box
from rich.console import Group
from rich.table import Table
from rich.text import Text

from bpcli.render.numbers import fmt
from bpcli.render.wrap import Prose


def _factor(f: float | None) -> str:
    if f is None:
        return "-"
    return f"{f:.4g}x"


def _figures(r) -> str:
    if r.figures is None:
        return "precision"
    more = " (compared at about 6)" if r.figures > 6 else ""
    return f"{r.figures} significant figure{'s' if r.figures != 1 else ''} written{more}"


def _needed(tol: float) -> int:
    """Significant figures an answer needs for its rounding alone to stay within the relative tolerance."""
    n = 1
    while 0.5 * 10.0 ** (1 - n) > tol and n < 17:
        n += 1
    return n


def diagnose_view(rep) -> Group:
    parts: list = []
    what = f"sample {rep.sample}" if rep.sample is not None else f"{rep.m} sample{'s' if rep.m != 1 else ''} (mean)"
    head = Text()
    head.append(f"diagnose {rep.name}", style="bold")
    head.append(f"  ({rep.source})  answers: {rep.answers}\n")
    head.append(f"dC/dparam on {what} · right when the relative error is <= {rep.tol:g}", style="dim")
    parts.append(Prose(head))

    t = Table(box=box.SIMPLE_HEAD, pad_edge=False)
    t.add_column("param")
    t.add_column("engine", justify="right")
    t.add_column("yours", justify="right")
    t.add_column("yours/engine", justify="right")
    t.add_column("rel err", justify="right")
    t.add_column("verdict")
    for r in rep.rows:
        t.add_row(Text(r.name), fmt(r.engine), fmt(r.learner), "1x" if r.right else _factor(r.factor),
                  f"{r.rel_error:.1e}" if r.rel_error else "0",
                  Text(r.verdict, style="green" if r.right else "bold red"))
    parts.append(t)

    for r in rep.wrong:
        block = Text()
        block.append(f"{r.name}: ", style="bold")
        block.append(f"yours {fmt(r.learner)}, the engine's {fmt(r.engine)}")
        if r.factor is not None:
            block.append(f" ({_factor(r.factor)} the right value)")
        parts.append(Prose(block))
        if r.confident:
            f = r.findings[0]
            parts.append(Prose(Text.assemble(("reproduced by: ", "dim"), (f.label, "bold yellow")), indent=2))
            parts.append(Prose(f.text, indent=4))
            why = (f"the only mistake that gives {fmt(r.learner)} to the {_figures(r)}"
                   if r.rule == "unique" else
                   f"of the mistakes that give {fmt(r.learner)}, the only one that explains the rest of the sheet")
            parts.append(Prose(Text(f"{why}; the next explanation ({r.runner_up}) is {r.margin:.3g} times the "
                                    f"answer's precision ({r.precision:.1g}) away", style="dim"), indent=4))
        elif r.rule in ("several", "near"):
            first, rest = r.findings[0], r.findings[1:]
            parts.append(Prose(Text.assemble(("possibly: ", "dim"), (first.label, "yellow")), indent=2))
            parts.append(Prose(first.text, indent=4))
            if rest:
                parts.append(Prose(Text.assemble(("also consistent with: ", "dim"),
                                                 (", ".join(f.label for f in rest), "yellow")), indent=2))
            why = (f"{r.runner_up} is {r.margin:.2g} times the answer's precision ({r.precision:.1g}) away; a name "
                   f"needs {rep.margin:g}" if r.rule == "several" else
                   f"within the tolerance {rep.tol:g}, but not to the {_figures(r)}")
            parts.append(Prose(Text(f"not named: {why}", style="dim"), indent=4))
        elif r.rule == "rounded":
            parts.append(Prose(Text.assemble(
                (r.diagnosis, "yellow"),
                ("; too few figures to tell a mistake from rounding: write at least "
                 f"{_needed(rep.tol)} significant figures, or use --tol 0.01 for answers of 2-3 figures", "dim")),
                indent=2))
        else:
            parts.append(Prose(Text.assemble(("not one of the known mistakes", "yellow"),
                                             (" (two at once, or another slip); `bpcli explain --weight "
                                              f"{r.name}` shows every factor", "dim")), indent=2))

    right = len(rep.rows) - len(rep.wrong)
    if not rep.wrong:
        parts.append(Text(f"ALL RIGHT: {right} of {len(rep.rows)} answers agree with the engine", style="bold green"))
    else:
        line = Text(f"\n{len(rep.wrong)} of {len(rep.rows)} answers wrong", style="bold red")
        if rep.explains_all:
            line.append(f"; every wrong one is explained by: {' or '.join(rep.explains_all)}", style="bold")
        parts.append(line)
    return Group(*parts)
