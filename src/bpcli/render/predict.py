"""Rich view of `bpcli predict` (Prediction) on a terminal; pipes get its CSV instead."""

from __future__ import annotations

from rich import box
from rich.console import Group
from rich.table import Table
from rich.text import Text

from bpcli.data.dataset import number_of
from bpcli.render.numbers import fmt
from bpcli.render.wrap import Breakable


def _percent(p: float) -> str:
    """A probability for reading: 99.5%, 0.3%, <0.1%."""
    if not 0 <= p <= 1:
        return fmt(p, 4)
    return "<0.1%" if 0 < p < 0.0005 else (">99.9%" if 0.9995 <= p < 1 else f"{100 * p:.1f}%")


def _short_number(cell: str) -> str:
    """A carried cell that is a long number (as the data reader reads one: 2024_12_07 is text), shortened for
    reading (the file's text is in the CSV output)."""
    v = number_of(cell) if len(cell) > 10 else None
    return cell if v is None else fmt(v, 6)


def predict_view(res, width: int = 80, max_rows: int = 50) -> Group:
    """The inputs, the carried columns, the prediction and each class's probability (in %), at most max_rows
    rows. When the full column names do not fit in `width`, the inputs are headed x1, x2, ... (named below the
    table) and the probabilities by their class."""
    head = Text.assemble((res.name, "bold"), "  ", Text(res.run), "  ",
                         (f"{res.m} row{'s' if res.m != 1 else ''} from ", "dim"), Text(res.source, style="dim"))
    n_in, n_carried = len(res.input_names), len(res.carried)
    first_out = n_in + n_carried  # the prediction; after it the probabilities (or the regression outputs)
    rows = []
    for i in range(min(res.m, max_rows)):
        cells = res.cells(i)
        rows.append([_percent(v) if res.probabilistic and j > first_out else
                     fmt(v, 4 if j >= first_out else 6) if isinstance(v, float) else
                     _short_number(v) if j < first_out else v for j, v in enumerate(cells)])
    headers = res.columns()
    widths = [max([len(h)] + [len(r[j]) for r in rows]) for j, h in enumerate(headers)]
    compact = sum(widths) + 2 * (len(widths) - 1) > width
    if compact:
        headers = [f"x{k + 1}" if k < n_in else headers[j] for j, k in enumerate(res.lead)] + [
            "predicted" if res.classes is not None else headers[first_out]] + (
            list(res.classes) if res.classes is not None else headers[first_out + 1:])
        if headers[first_out - 1] == "part" and res.carried[-1][0] == "part":  # the run's own data
            for r in rows:
                r[first_out - 1] = "val" if r[first_out - 1] == "validation" else r[first_out - 1]
    t = Table(box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False, padding=(0, 1, 0, 0))
    for j, col in enumerate(headers):
        numeric = (j < first_out and res.lead[j] < n_in) or j > first_out or (res.classes is None and j >= first_out)
        t.add_column(Text(col) if numeric else Breakable(col), justify="right" if numeric else "left",
                     no_wrap=numeric, style="bold" if j == first_out else None)
    texts = [not t.columns[j].no_wrap for j in range(len(headers))]  # wrapped at spaces, '_' or '/' only
    for r in rows:
        t.add_row(*[Breakable(c) if text else Text(c) for c, text in zip(r, texts)])
    parts = [head, t]
    if res.m > max_rows:
        parts.append(Text(f"... {res.m - max_rows} more rows: all of them with --out FILE, piped as CSV or "
                          "with --json", style="dim"))
    notes = ["inputs standardised with the mean and std the run was trained with"] if res.scaled else []
    if compact:
        notes.append("inputs: " + ", ".join(f"x{j + 1} {n}" for j, n in enumerate(res.input_names)))
    if res.classes is not None:
        one = (f"; p_{res.classes[1]} is y', and {res.classes[1]} is predicted from 0.5 on"
               if res.y_hat.shape[1] == 1 else "")
        notes.append(f"each class's probability in %{one}; every digit with --json or piped as CSV"
                     if res.probabilistic else f"each class's output value{one}")
    parts += [Text(n, style="dim") for n in notes]
    return Group(*parts)
