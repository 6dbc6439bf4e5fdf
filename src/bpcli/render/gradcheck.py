"""Rich view of `bpcli gradcheck` (GradcheckReport)."""

from __future__ import annotations

from rich import box
from rich.console import Console, ConsoleOptions, Group, RenderResult
from rich.table import Table
from rich.text import Text

from bpcli.render.numbers import fmt, fmt_error as _sci

STYLE = {"good": "green", "ok": "green", "suspicious": "yellow", "wrong": "bold red", "kink": "cyan",
         "not finite": "bold red", "inconclusive": "magenta"}
SHORT = {"suspicious": "susp.", "not finite": "n/f", "inconclusive": "inconcl."}
WIDE = 100  # from this console width on, tables get their less essential columns


def _verdict(v: str, passed: bool) -> Text:
    if v == "inconclusive":
        return Text(v, style=STYLE[v])
    if not passed:
        return Text(f"{v} (fail)", style="bold red")
    return Text(v, style=STYLE.get(v, ""))


class GradcheckView:
    """The report, laid out for the console's width (columns are dropped below WIDE, never wrapped)."""

    def __init__(self, res, max_rows: int = 20):
        self.res = res
        self.max_rows = max_rows

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        res = self.res
        wide = options.max_width >= WIDE
        yield self._header(options.max_width)
        for note in res.notes:
            yield Text("note: " + note, style="dim")
        yield self._layers(wide)
        if res.arrays:
            yield self._entries(wide)
        if res.directions:
            yield self._directions(wide)
        if res.units:
            yield self._units(wide)
        yield self._verdict()

    def _header(self, width: int = 80) -> Text:
        """The name and source, then what was checked: its parts joined by ' · ', a line broken only between
        parts (never inside 'pass: rel error <= 1e-09')."""
        res, opt = self.res, self.res.options
        t = Text.assemble(("gradcheck ", "bold"), (res.name, "bold"), f"  ({res.source})\n")
        scope = f"{res.n_params} parameters" if res.n_selected == res.n_params else \
            f"{res.n_selected} of {res.n_params} parameters"
        how = f"eps {opt.eps:.0e}" if res.against == "central differences" else f"against {res.against}"
        lines = [""]
        for part in (scope, f"{res.n_samples} samples", "float64", how, f"pass: rel error <= {opt.tol:.0e}"):
            if lines[-1] and len(lines[-1]) + 3 + len(part) > width:
                lines[-1] += " ·"
                lines.append(part)
            else:
                lines[-1] += (" · " if lines[-1] else "") + part
        t.append("\n".join(lines), style="dim")
        return t

    def _layers(self, wide: bool) -> Table:
        t = Table(box=box.SIMPLE_HEAD, title="Per layer", title_justify="left", pad_edge=False)
        rare = [v for v in ("not finite", "inconclusive") if any(s.counts.get(v) for s in self.res.layers)]
        counts = [SHORT.get(v, v) for v in ("good", "ok", "suspicious", "wrong", "kink", *rare)] if wide \
            else ["verdicts"]
        cols = ["layer", "activation", "checked", "worst rel", "worst at", *counts, "failed"]
        if not wide:
            cols.remove("activation")
        for c in cols:
            t.add_column(c, justify="left" if c in ("layer", "activation", "worst at", "verdicts") else "right",
                         no_wrap=True)
        for s in self.res.layers:
            checked = f"{s.n_checked}" + (f" + {s.n_directions} dir" if s.n_directions else "")
            cells = {"layer": s.letter, "activation": s.activation, "checked": checked,
                     "worst rel": _sci(s.worst_rel), "worst at": Text(s.worst_name or "-"),
                     **{SHORT.get(v, v): str(n) for v, n in s.counts.items()},
                     "verdicts": ", ".join(f"{n} {v}" for v, n in s.counts.items() if n) or "-",
                     "failed": Text(str(s.failed), style="bold red" if s.failed else "green")}
            t.add_row(*[cells[c] for c in cols])
        return t

    def _entries(self, wide: bool) -> Group | Text:
        res = self.res
        if self.max_rows == 0:  # --rows 0: no table, so nothing "above" to compare with
            return Text(f"{res.n_entries} entries, none listed (--rows 0; every entry in --json)", style="dim")
        rows = res.worst_entries(self.max_rows)
        title = "Entries, worst first" if len(rows) == res.n_entries else \
            f"Entries, worst first ({len(rows)} of {res.n_entries})"
        t = Table(box=box.SIMPLE_HEAD, title=title, title_justify="left", pad_edge=False)
        other = "numeric" if res.against == "central differences" else "torch"
        cols = ["name", "layer", "backprop", other, "abs err", "rel err", "verdict"]
        if not wide:
            cols.remove("layer")
            cols.remove("abs err")
        if any(not r.passed for r in rows):  # where the bound decides (a failure or an inconclusive entry)
            cols.insert(cols.index("verdict"), "bound")
        for c in cols:
            t.add_column(c, justify="left" if c in ("name", "layer", "verdict") else "right", no_wrap=True)
        for r in rows:
            cells = {"name": Text(r.name), "layer": r.layer, "backprop": fmt(r.analytic),
                     other: fmt(r.numeric), "abs err": _sci(r.abs_error), "rel err": _sci(r.rel_error),
                     "bound": _sci(r.bound),
                     "verdict": _verdict(r.verdict, r.passed)}
            t.add_row(*[cells[c] for c in cols])
        parts = [t]
        if len(rows) < res.n_entries:
            parts.append(Text(f"... {res.n_entries - len(rows)} more entries, none worse than those above "
                              f"(every entry in --json)", style="dim"))
        return Group(*parts)

    def _directions(self, wide: bool) -> Group | Text:
        res = self.res
        if self.max_rows == 0:
            return Text(f"{len(res.directions)} random directions, none listed (--rows 0; all of them in --json)",
                        style="dim")
        rows = res.directions[: self.max_rows]
        t = Table(box=box.SIMPLE_HEAD, title="Random directions, worst first", title_justify="left", pad_edge=False)
        cols = ["direction", "entries", "gradient . u", "numeric", "abs err", "rel err", "verdict"]
        if not wide:
            cols.remove("abs err")
        if any(not d.passed for d in rows):
            cols.insert(cols.index("verdict"), "bound")
        for c in cols:
            t.add_column(c, justify="left" if c in ("direction", "verdict") else "right", no_wrap=True)
        for d in rows:
            cells = {"direction": Text(d.name), "entries": str(d.size), "gradient . u": fmt(d.analytic),
                     "numeric": fmt(d.numeric), "abs err": _sci(d.abs_error), "rel err": _sci(d.rel_error),
                     "bound": _sci(d.bound),
                     "verdict": _verdict(d.verdict, d.passed)}
            t.add_row(*[cells[c] for c in cols])
        parts = [t]
        if len(rows) < len(res.directions):
            parts.append(Text(f"... {len(res.directions) - len(rows)} more directions (all of them in --json)",
                              style="dim"))
        return Group(*parts)

    def _units(self, wide: bool) -> Table:
        t = Table(box=box.SIMPLE_HEAD, title="Registry units on their own (--units)", title_justify="left",
                  pad_edge=False)
        cols = ["unit", "kind", "points", "worst rel", "worst at", "verdict"]
        if not wide:
            cols.remove("kind")
            cols.remove("points")
        for c in cols:  # the unit's name and where it is worst wrap between words; the numbers and verdict never
            t.add_column(c, justify="right" if c in ("points", "worst rel") else "left",
                         no_wrap=c not in ("unit", "worst at"))
        for u in sorted(self.res.units, key=lambda u: u.passed):  # failures first, else registry order
            cells = {"unit": Text(u.name), "kind": u.kind, "points": str(u.points), "worst rel": _sci(u.worst_rel),
                     "worst at": Text(u.worst_at), "verdict": _verdict(u.verdict, u.passed)}
            t.add_row(*[cells[c] for c in cols])
        return t

    def _verdict(self) -> Text:
        res = self.res
        kinks = f"; {res.n_kinks} at a kink no step could avoid (inconclusive)" if res.n_kinks else ""
        if res.passed:
            parts = []
            if res.arrays:
                parts.append(f"{res.n_entries} entries")
            if res.directions:
                parts.append(f"{len(res.directions)} directions")
            if res.units:
                parts.append(f"{len(res.units)} units")
            worst = max([s.worst_rel for s in res.layers if s.worst_rel is not None] +
                        [u.worst_rel for u in res.units], default=None)
            tail = f" (worst relative error {_sci(worst)})" if worst is not None else ""
            return Text.assemble(("PASS", "bold green"), f": {' and '.join(parts)} agree with {res.against}"
                                 f"{tail}{kinks}")
        disagree = any(r.verdict != "not finite" for r in res.failed_entries) or \
            any(d.verdict != "not finite" for d in res.failed_directions) or bool(res.failed_units)
        if res.failed:
            lines = Text.assemble(("FAIL", "bold red"), f": backprop disagrees with {res.against}" if disagree
                                  else ": the gradients are not finite at these weights")
        else:
            lines = Text.assemble(("INCONCLUSIVE", "bold magenta"), ": nothing disagrees, but not everything "
                                  "could be checked")
        failed = res.failed_entries
        if failed:
            lines.append(f"\n  {len(failed)} of {res.n_entries} entries fail: ")
            lines.append(_names([r.name for r in failed]), style="bold")
        nf = res.n_not_finite
        if nf:
            lines.append(f"\n  {nf} not finite: backprop or the cost gives inf or NaN at these weights "
                         "(overflow: try the initial weights, or a smaller learning rate)")
        fd = res.failed_directions
        if fd:
            arrays = sorted({d.array for d in fd})
            lines.append(f"\n  {len(fd)} of {len(res.directions)} directions fail, in ")
            lines.append(", ".join(arrays), style="bold")
        unsure = [r.name for r in res.inconclusive_entries] + [d.name for d in res.inconclusive_directions] + \
            [f"{u.kind} {u.name}" for u in res.inconclusive_units]
        if unsure:
            lines.append(f"\n  {len(unsure)} inconclusive: ")
            lines.append(_names(unsure), style="bold")
            lines.append("\n  their difference lies between the tolerance and the error bound (rounding and "
                         "truncation of the numeric value, rounding of backprop's), no step could be taken, or "
                         "every step crossed a kink; exit code 3")
        fu = res.failed_units
        if fu:
            lines.append("\n  broken unit(s): ")
            lines.append(", ".join(f"{u.kind} {u.name}" for u in fu), style="bold")
        elif res.units:
            if res.failed:
                lines.append("\n  every registry unit passes on its own: look at how the layers are wired")
        elif disagree and res.against == "central differences":
            lines.append("\n  run with --units to check each activation and loss on its own", style="dim")
        if kinks:
            lines.append(f"\n  {kinks[2:]}")
        return lines


def _names(names: list[str], limit: int = 12) -> str:
    return ", ".join(names[:limit]) + (f", ... ({len(names)} in all)" if len(names) > limit else "")


def gradcheck_view(res, max_rows: int = 20) -> GradcheckView:
    """Header, per-layer summary, the worst entries, directions, units and the verdict (GradcheckReport)."""
    return GradcheckView(res, max_rows)
