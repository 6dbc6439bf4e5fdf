"""The picture of `bpcli compare --out`: every run's loss and metric curves overlaid, one colour per run."""

from __future__ import annotations

from bpcli.figures import new_figure


def _xy(epochs: list[int], vals: list, positive: bool = False, scale: float = 1.0):
    pts = [(e, v * scale) for e, v in zip(epochs, vals) if v is not None and (v > 0 or not positive)]
    return [p[0] for p in pts], [p[1] for p in pts]


def compare_figure(res):
    """A Figure: training (solid) and validation (dashed) loss, then one panel per metric kind, runs overlaid."""
    runs = res.runs
    kinds = list(dict.fromkeys(r.metric for r in runs))
    has_metric = {k: any(v is not None for r in runs if r.metric == k for v in r.curves["metric"]) for k in kinds}
    panels = ["loss"] + [k for k in kinds if has_metric[k]]
    fig = new_figure(8.0, 1.0 + 2.6 * len(panels))
    axes = fig.subplots(len(panels), 1, sharex=True, squeeze=False)[:, 0]
    any_val = False
    for i, r in enumerate(runs):
        c = r.curves
        colour = f"C{i % 10}"
        ax = axes[0]
        ax.plot(*_xy(c["epoch"], c["loss"], True), color=colour, label=r.label)
        if any(v is not None for v in c["val_loss"]):
            any_val = True
            ax.plot(*_xy(c["epoch"], c["val_loss"], True), color=colour, linestyle="--")
        if r.metric in panels:
            ax = axes[panels.index(r.metric)]
            scale = 100.0 if r.metric == "accuracy" else 1.0
            ax.plot(*_xy(c["epoch"], c["metric"], scale=scale), color=colour)
            if any(v is not None for v in c["val_metric"]):
                any_val = True
                ax.plot(*_xy(c["epoch"], c["val_metric"], scale=scale), color=colour, linestyle="--")
    loss_vals = [v for r in runs for v in r.curves["loss"] + r.curves["val_loss"] if v is not None and v > 0]
    if loss_vals and max(loss_vals) / min(loss_vals) > 10:
        axes[0].set_yscale("log")
    axes[0].set(title="loss per epoch" + (" (log scale)" if axes[0].get_yscale() == "log" else ""),
                ylabel="cost C")
    for k in panels[1:]:
        ax = axes[panels.index(k)]
        if k == "accuracy":
            ax.set(title="accuracy per epoch", ylabel="accuracy (%)")
            ax.set_ylim(-2, 102)
        else:
            ax.set(title="R² per epoch", ylabel="R² (1 = perfect fit)")
    for ax in axes:
        ax.grid(True, which="major", alpha=0.3)
    axes[-1].set_xlabel("epoch")
    handles, labels = axes[0].get_legend_handles_labels()
    if any_val:
        from matplotlib.lines import Line2D
        handles += [Line2D([], [], color="0.3"), Line2D([], [], color="0.3", linestyle="--")]
        labels += ["training", "validation"]
    fig.legend(handles, labels, loc="upper left", bbox_to_anchor=(0.80, 0.97), fontsize="small",
               title="runs", borderaxespad=0.0)
    fig.tight_layout(rect=(0, 0, 0.79, 1))
    return fig
