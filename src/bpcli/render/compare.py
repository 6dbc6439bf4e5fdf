"""Rich view of `bpcli compare` (CompareResult): runs as columns, in groups that fit the terminal's width."""

from __future__ import annotations

import json

from rich import box
from rich.console import Group
from rich.table import Table
from rich.text import Text

from bpcli.render.numbers import fmt, fmt_metric, metric_label
from bpcli.render.runs import stepped_text
from bpcli.render.wrap import Breakable, break_lines

CELL = 22  # the widest a config value's column grows before its values wrap
NARROW = 10  # ... and how narrow it may get to fit more runs side by side
LINES = 3  # a value longer than this many lines of its column is shortened with "..."


def cell_lines(text: str, cell: int) -> list[str]:
    """A config value as the lines of its cell: broken at spaces into lines of at most `cell` characters, never
    inside a word; a word longer than CELL (a path, a long name) is broken after a '_', '/' or ','; a word that
    still does not fit has a line of its own (the column grows). At most LINES lines, the last ending '...'
    when the value goes on."""
    lines = break_lines(text, cell, whole=CELL)
    if len(lines) > LINES:
        lines = lines[:LINES]
        lines[-1] += " ..."
    return lines or [""]


def _width(t: Text) -> int:
    return max(len(line) for line in t.plain.split("\n"))


def value_text(v, present: bool = True, applies: bool = True) -> str:
    """A config value as a cell: 'n/a' where the key means nothing for the run, '-' where the config lacks it,
    YAML's spelling otherwise."""
    if not applies:
        return "n/a"
    if not present:
        return "-"
    if v is None:
        return "null"
    if v == "":
        return '""'
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (list, dict)):
        return json.dumps(v, separators=(", ", ": "))
    return str(v)


def _rows(res, cell: int) -> tuple[list[tuple[str, list[Text]]], list[tuple[str, list[Text]]]]:
    """(config difference rows, final number rows): each a key and one cell per run (values wrap at `cell`)."""
    diffs = [(d.key, [Text("\n".join(cell_lines(value_text(v, p, a), cell)), style="" if a else "dim")
                      for v, p, a in zip(d.values, d.present, d.applies or (True,) * len(d.values))])
             for d in res.differences]
    runs = res.runs
    kinds = list(dict.fromkeys(r.metric for r in runs))

    def best(vals: list, lower: bool) -> set[int]:
        nums = [v for v in vals if v is not None]
        if len(nums) < 2 or len(set(nums)) == 1:
            return set()
        target = min(nums) if lower else max(nums)
        return {i for i, v in enumerate(vals) if v == target}

    def row(key: str, vals: list, show, lower: bool | None = None):
        good = set() if lower is None else best(vals, lower)
        return key, [Text(show(v), style="bold green" if i in good else "") for i, v in enumerate(vals)]

    numbers = [
        row("status", [r.status.replace("_", " ") for r in runs], str),
        row("epochs", [r.epochs for r in runs], str),
        row("loss (train)", [r.loss for r in runs], lambda v: fmt(v, 4), lower=True),
    ]
    if any(r.val_loss is not None for r in runs):
        numbers.append(row("loss (validation)", [r.val_loss for r in runs], lambda v: fmt(v, 4), lower=True))
    for k in kinds:
        label = metric_label(k)
        pick = [r.train_metric if r.metric == k else None for r in runs]
        numbers.append(row(f"{label} (train)", pick, lambda v, k=k: fmt_metric(k, v), lower=False))
        vpick = [r.val_metric if r.metric == k else None for r in runs]
        if any(v is not None for v in vpick):
            numbers.append(row(f"{label} (validation)", vpick, lambda v, k=k: fmt_metric(k, v), lower=False))
    if any(r.best_epoch for r in runs):
        numbers.append(row("best epoch", [r.best_epoch for r in runs], lambda v: "-" if v is None else str(v)))
    numbers.append(row("seconds", [r.seconds for r in runs], lambda v: "-" if v is None else f"{v:.2f}"))
    numbers.append(("inspect", [Text("healthy", style="green") if r.healthy else
                                Text(f"{len(r.findings)} problem{'s' if len(r.findings) != 1 else ''}",
                                     style="bold red") for r in runs]))
    return diffs, numbers


def _table(title: str, labels: list[str], rows: list[tuple[str, list[Text]]], cols: list[int],
           cell: int | None = None) -> Table:
    """Keys in full on the left; a run per column, its values wrapped at `cell` (None: never wrapped)."""
    t = Table(box=box.SIMPLE_HEAD, title=title, title_justify="left", pad_edge=False)
    t.add_column("", no_wrap=True, min_width=max([len(k) for k, _ in rows] + [0]))
    for i in cols:
        if cell is None:
            t.add_column(Text(labels[i]), justify="right", no_wrap=True)
        else:
            t.add_column(Text(labels[i]), justify="right", no_wrap=True)  # cell_lines broke the values
    for key, cells in rows:
        t.add_row(Text(key), *(cells[i] for i in cols))
    return t


def _groups(labels: list[str], diffs, numbers, width: int, cell: int) -> list[list[int]]:
    """Runs in groups whose columns fit `width` (each run's column as wide as its widest cell, values at most
    `cell`)."""
    # SIMPLE_HEAD without padded edges: 1 + key + 1, then per column a separator, 2 of padding and the cells
    key = max([len(k) for k, _ in diffs + numbers] + [0]) + 2
    need = [max([len(labels[i])] + [_width(c[i]) for _, c in diffs] + [c[i].cell_len for _, c in numbers])
            + 3 for i in range(len(labels))]
    groups: list[list[int]] = [[]]
    used = key
    for i, w in enumerate(need):
        if groups[-1] and used + w > width:
            groups.append([])
            used = key
        groups[-1].append(i)
        used += w
    return groups


class CompareView:
    """The compare tables, split into groups of runs that fit the console's width."""

    def __init__(self, res):
        self.res = res

    def __rich_console__(self, console, options):
        res = self.res
        labels = [r.label for r in res.runs]
        width = options.max_width
        # values are broken into narrower lines (down to NARROW characters) before runs are split into groups: the
        # widest values that give the fewest groups
        counts = {cell: len(_groups(labels, *_rows(res, cell), width, cell)) for cell in range(CELL, NARROW - 1, -1)}
        cell = min(counts, key=lambda c: (counts[c], -c))
        diffs, numbers = _rows(res, cell)
        groups = _groups(labels, diffs, numbers, width, cell)
        yield Text.assemble(("compare ", "bold"), (f"{len(res.runs)} runs", "bold"))
        legend = Table.grid(padding=(0, 2))
        legend.add_column(no_wrap=True, style="bold")
        legend.add_column()
        for r in res.runs:
            legend.add_row(Text(r.label), Breakable(f"{r.run_dir} ({r.name})"))  # a long path wraps after a '/'
        yield legend
        if len(groups) > 1:
            yield Text(f"{len(res.runs)} runs do not fit side by side in {width} columns: shown "
                       f"in {len(groups)} groups (--json has them all)", style="dim")
        for cols in groups:
            if diffs:
                yield _table("Config differences", labels, diffs, cols, cell)
            yield _table("Final numbers", labels, numbers, cols)
        for r in res.runs:
            if r.status == "stepped":
                yield Text(f"{r.label}: {stepped_text(r.stepped, r.run_dir)}", style="dim")
        for r in res.runs:
            if r.findings:
                items = Table.grid(padding=(0, 1))
                items.add_column(no_wrap=True)
                items.add_column()
                for f in r.findings:
                    items.add_row(Text("-", style="red"), Text(f))
                yield Group(Text.assemble(("inspect ", "bold"), (r.label, "bold"), f": {r.verdict}"), items)
        for n in res.notes:
            yield Text(f"note: {n}", style="yellow")
        for w in res.written:
            yield Text(f"wrote {w}", style="dim")


def compare_view(res) -> CompareView:
    return CompareView(res)
