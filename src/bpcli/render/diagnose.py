"""Rich view of `bpcli diagnose` (DiagnoseReport)."""

from __future__ import annotations

from rich import box
from rich.console import Group
from rich.table import Table
from rich.text import Text

from bpcli.render import fmt
from bpcli.render.wrap import Prose


def _factor(f: float | None) -> str:
    if f is None:
        return "-"
    return f"{f:.4g}x"


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
        if not r.findings:
            parts.append(Prose(Text.assemble(("not one of the known mistakes", "yellow"),
                                             (" (two at once, or another slip); `bpcli explain --weight "
                                              f"{r.name}` shows every factor", "dim")), indent=2))
        for f in r.findings:
            parts.append(Prose(Text.assemble(("reproduced by: ", "dim"), (f.label, "bold yellow")), indent=2))
            parts.append(Prose(f.text, indent=4))

    right = len(rep.rows) - len(rep.wrong)
    if not rep.wrong:
        parts.append(Text(f"\nALL RIGHT: {right} of {len(rep.rows)} answers agree with the engine", style="bold green"))
    else:
        line = Text(f"\n{len(rep.wrong)} of {len(rep.rows)} answers wrong", style="bold red")
        if rep.explains_all:
            line.append(f"; every wrong one is explained by: {' or '.join(rep.explains_all)}", style="bold")
        parts.append(line)
    return Group(*parts)
