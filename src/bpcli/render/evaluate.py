"""Rich view of `bpcli evaluate` (Evaluation): the loss and metric, a confusion matrix, per-class scores."""

from __future__ import annotations

from rich import box
from rich.console import Group
from rich.table import Table
from rich.text import Text

from bpcli.render.numbers import fmt, fmt_metric, metric_label


def evaluate_view(res) -> Group:
    head = Text.assemble((res.name, "bold"), "  ", Text(res.run), "  ", (f"on {res.source}", "dim"))
    summary = Table.grid(padding=(0, 2))
    summary.add_column(style="bold", no_wrap=True)
    summary.add_column()
    summary.add_row("loss", f"{fmt(res.loss)}  ({res.loss_name}, mean over {res.m} samples)")
    if res.classes is not None:
        right = int(res.confusion.trace())
        cut = f", y' >= {res.threshold:g} is the second class" if res.threshold is not None else ""
        summary.add_row("accuracy", f"{fmt_metric('accuracy', res.value)}  ({right} of {res.m} right{cut})")
        if res.balanced_accuracy is not None:
            summary.add_row("balanced accuracy", f"{fmt_metric('accuracy', res.balanced_accuracy)}  "
                            "(the mean recall over the classes in the truth)")
            summary.add_row("ROC-AUC", ("-" if res.roc_auc is None else fmt(res.roc_auc, 4)) + f"  ({res.roc_auc_note})")
        parts = [head, summary, Text(), Text("Confusion matrix (rows: true class; columns: predicted class)",
                                             style="bold"), _confusion(res), Text(),
                 Text("Per class", style="bold"), _per_class(res)]
        return Group(*parts, *_averaged(res))
    summary.add_row(metric_label(res.metric), "-" if res.value is None else fmt(res.value))
    summary.add_row("MAE", f"{fmt(res.mae)}  (mean |y' - y|)")
    parts = [head, summary]
    if len(res.per_output) > 1:
        t = Table(box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False)
        t.add_column("output", no_wrap=True)
        t.add_column("R^2", justify="right", no_wrap=True)
        t.add_column("MAE", justify="right", no_wrap=True)
        for o in res.per_output:
            t.add_row(Text(o.name), "-" if o.r2 is None else fmt(o.r2), fmt(o.mae))
        parts += [Text(), Text("Per output", style="bold"), t]
    return Group(*parts)


def _confusion(res) -> Table:
    t = Table(box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False)
    t.add_column("true \\ predicted", no_wrap=True, overflow="ellipsis", max_width=24)
    for c in res.classes:
        t.add_column(Text(c), justify="right", no_wrap=True, overflow="ellipsis", max_width=14)
    for i, (c, row) in enumerate(zip(res.classes, res.confusion)):
        t.add_row(Text(c), *[Text(str(int(v)), style="bold" if i == j else None) for j, v in enumerate(row)])
    return t


def _per_class(res) -> Table:
    t = Table(box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False)
    t.add_column("class", no_wrap=True, overflow="ellipsis", max_width=24)
    t.add_column("output", no_wrap=True, overflow="ellipsis", max_width=16)
    for col in ("precision", "recall", "F1", "support"):
        t.add_column(col, justify="right", no_wrap=True)
    for c in res.per_class:
        node = c.node.split(" (")[0]  # B1 (class "setosa") -> B1: the class is in the first column
        t.add_row(Text(c.name), Text(node), f"{c.precision:.4f}", f"{c.recall:.4f}", f"{c.f1:.4f}", str(c.support))
    t.add_section()
    support = sum(c.support for c in res.per_class)
    for name, (p, r, f) in (("macro avg", res.macro), ("weighted avg", res.weighted)):
        t.add_row(Text(name, style="dim"), "", f"{p:.4f}", f"{r:.4f}", f"{f:.4f}", str(support))
    return t


def _averaged(res) -> list[Text]:
    """Which classes the averages are over, when that is not simply every class of the run."""
    left = [c for c in res.classes if c not in res.averaged]
    if not left:
        return []
    return [Text.assemble(("averages over the classes present in the truth or the predictions, as scikit-learn: "
                           "not ", "dim"), Text(", ".join(left), style="dim"),
                          ("; --all-classes counts every class", "dim"))]
