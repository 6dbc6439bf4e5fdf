"""Rich view of `bpcli inspect` (InspectResult)."""

from __future__ import annotations

from rich import box
from rich.console import Group
from rich.table import Table
from rich.text import Text

from bpcli.render.numbers import fmt, sparkline
from bpcli.render.runs import killed_text, stepped_text
from bpcli.render.wrap import Prose


def _sci(v: float | None) -> str:
    return "-" if v is None else f"{v:.1e}"


def _ratio(v: float | None) -> str:
    from bpcli.analysis.inspect import fraction
    return "-" if v is None else fraction(v)


def _share(v: float | None, units: int) -> str:
    return "-" if v is None else f"{int(round(v * units))}/{units}"


def _table(title: str) -> Table:
    return Table(box=box.SIMPLE_HEAD, title=title, title_justify="left", pad_edge=False)


def inspect_view(res) -> Group:
    """Per-layer gradient and unit tables, then the findings in plain words (InspectResult)."""
    from bpcli.analysis.inspect import DEAD, SATURATED, SLOW, VANISHING

    head = Text.assemble(("inspect ", "bold"), (res.name, "bold"), f"  {res.run_dir}", style="")
    loss = (f"{res.epochs} epoch{'' if res.epochs == 1 else 's'} ({res.status.replace('_', ' ')}), training loss "
            f"{fmt(res.loss_first, 4)} -> {fmt(res.loss_last, 4)}")
    parts = [head, Text(loss, style="dim")]
    if res.status == "stepped":
        parts.append(Text(f"the run is {stepped_text(res.stepped, res.folder or res.run_dir)}", style="dim"))
    if res.status == "killed":  # at its checkpoint (or an epoch at or after it): the epochs are the checkpoint's
        parts.append(Prose(f"the run is {killed_text(res.epochs, res.folder or res.run_dir)}", style="dim"))
    if not res.layers or res.epochs == 0:
        parts.append(Text(res.summary))
        return Group(*parts)
    last = res.trace_epochs[-1] if res.trace_epochs else res.epochs
    out = res.output_layer

    grads = _table(f"Gradient ||dC/dW|| per layer (input side first; output layer {out})")
    grads.add_column("layer", no_wrap=True)
    grads.add_column("epoch 1", justify="right", no_wrap=True)
    grads.add_column(f"epoch {last}", justify="right", no_wrap=True)
    grads.add_column(f"vs {out}\nat {last}", justify="right", no_wrap=True)
    grads.add_column(f"vs next\nat {last}", justify="right", no_wrap=True)
    grads.add_column("over time (log)", no_wrap=True)
    for la in res.layers:
        weak = la.vs_output is not None and la.vs_output < VANISHING
        grads.add_row(Text(f"{la.letter} {la.activation}"), _sci(la.grad_first), _sci(la.grad_last),
                      Text(_ratio(la.vs_output), style="bold red" if weak else ""), _ratio(la.vs_next),
                      Text(sparkline(list(la.grad_trace), width=16), style="cyan"))

    units = _table("Units and updates")
    units.add_column("layer", no_wrap=True)
    units.add_column("sat./dead", justify="right", no_wrap=True)
    units.add_column("most", justify="right", no_wrap=True)
    units.add_column("update\nmedian", justify="right", no_wrap=True)
    units.add_column(f"epoch {res.stats_last or last}", justify="right", no_wrap=True)
    units.add_column("over time (log)", no_wrap=True)
    fastest = max((la.update_median for la in res.layers if la.update_median is not None), default=None)
    for la in res.layers:
        label = {"saturating": "sat.", "relu": "dead"}.get(la.kind)
        share = "-" if label is None else f"{_share(la.saturation_last, la.units)} {label}"
        limit = SATURATED if la.kind == "saturating" else DEAD
        busy = (la.saturation_last is not None and la.kind is not None and la.saturation_last >= limit
                and la.letter != out)
        slow = fastest and la.update_median is not None and la.update_median < SLOW * fastest
        units.add_row(la.letter, Text(share, style="yellow" if busy else ""),
                      _share(la.saturation_max, la.units) if la.kind else "-",
                      Text(_sci(la.update_median), style="bold red" if slow else ""), _sci(la.update_last),
                      Text(sparkline([v for v in la.update_trace if v is not None], width=16), style="cyan"))
    note = Text(f"vs {out}: the layer's gradient / output layer {out}'s at epoch {last} (below 1/100: vanishing). "
                "vs next: / the next layer's (below 1: it shrank on the way down). "
                "sat./dead: saturated sigmoid/tanh or never-active ReLU units at the end, most: the most at any "
                "epoch. update: ||change of W|| / ||W|| per epoch, median over the run."
                + (f" sat./dead and update are measured every {res.stats_every} epochs (epoch 1 and every "
                   f"{res.stats_every}th; the last at epoch {res.stats_last})." if (res.stats_every or 1) > 1 else ""),
                style="dim")
    parts += [grads, units, note, Text("")]
    if res.findings:
        parts.append(Text(res.summary, style="bold red"))
        items = Table.grid(padding=(0, 1))
        items.add_column(no_wrap=True)
        items.add_column()
        seen: set[str] = set()
        for f in res.findings:
            # a hint shared by several findings is printed once, under the first
            text = Text(f.message) if f.hint in seen else Text.assemble(f.message, "\n", (f.hint, "dim"))
            seen.add(f.hint)
            items.add_row(Text("-", style="red"), text)
        parts.append(items)
    else:
        parts.append(Text(res.summary, style="bold green"))
    return Group(*parts)
