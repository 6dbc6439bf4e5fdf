"""The picture of `bpcli compare --out`: every run's loss and metric curves overlaid, one colour per run."""

from __future__ import annotations

from bpcli.plots.figure_text import plain
from bpcli.plots.figure import labels, legend_outside, log_axis, new_figure, xy


def compare_figure(res):
    """A Figure: training (solid) and validation (dashed) loss, then one panel per metric kind, runs overlaid."""
    runs = res.runs
    kinds = list(dict.fromkeys(r.metric for r in runs))
    drawn = {k: any(v is not None for r in runs if r.metric == k for v in r.curves["metric"]) for k in kinds}
    panels = ["loss"] + [k for k in kinds if drawn[k]]
    fig, axes = new_figure(7.0, 0.6 + 2.6 * len(panels), rows=len(panels), sharex=True)
    loss_vals = [v for r in runs for v in r.curves["loss"] + r.curves["val_loss"] if v is not None]
    log = bool(loss_vals) and min(loss_vals) > 0 and max(loss_vals) / min(loss_vals) > 10
    any_val = False
    for i, r in enumerate(runs):
        c, colour = r.curves, f"C{i % 10}"
        axes[0].plot(*xy(c["epoch"], c["loss"], log), color=colour, label=plain(r.label))
        if any(v is not None for v in c["val_loss"]):
            any_val = True
            axes[0].plot(*xy(c["epoch"], c["val_loss"], log), color=colour, linestyle="--")
        if r.metric in panels:
            ax = axes[panels.index(r.metric)]
            scale = 100.0 if r.metric == "accuracy" else 1.0
            for key, style in (("metric", "-"), ("val_metric", "--")):
                x, y = xy(c["epoch"], c[key])
                if x:
                    any_val |= key == "val_metric"
                    ax.plot(x, [v * scale for v in y], color=colour, linestyle=style)
    if log:
        log_axis(axes[0])
    labels(axes[0], "loss per epoch" + (" (log scale)" if log else ""), ylabel="cost C")
    for k in panels[1:]:
        ax = axes[panels.index(k)]
        if k == "accuracy":
            labels(ax, "accuracy per epoch", ylabel="accuracy (%)")
            ax.set_ylim(-2, 102)
        else:
            labels(ax, "R² per epoch", ylabel="R² (1 = perfect fit)")
    for ax in axes:
        ax.grid(True, which="major", alpha=0.3)
    axes[-1].set_xlabel("epoch")
    handles, names = axes[0].get_legend_handles_labels()
    if any_val:
        from matplotlib.lines import Line2D
        handles += [Line2D([], [], color="0.3"), Line2D([], [], color="0.3", linestyle="--")]
        names += ["training", "validation"]
    legend_outside(fig, axes[0], "right", handles=handles, labels=names, title="runs", fontsize="small")
    return fig
