"""The per-epoch plots of `bpcli plot`: loss, metric, gradient norm per layer, update speed and saturation.

Each builder takes a PlotContext and returns (figure, title); plot.py decides which to draw and saves them.
"""

from __future__ import annotations

from bpcli.plots.figure import (PlotContext, labels, legend_in_free_corner, legend_outside, log_axis, new_figure,
                                wants_log, xy)


def no_history(ctx: PlotContext) -> str | None:
    """Why a per-epoch plot cannot be drawn, or None."""
    return None if ctx.history else "the run has no finished epoch"


def loss_figure(ctx: PlotContext):
    """Training (and validation) cost per epoch, on a log axis when it falls by more than 10x."""
    loss, val = ctx.series("loss"), ctx.series("val_loss")
    fig, (ax,) = new_figure(6.4, 4.0)
    log = wants_log(loss, val)
    ax.plot(*xy(ctx.epochs, loss, log), label="training", color="C0")
    if any(v is not None for v in val):
        ax.plot(*xy(ctx.epochs, val, log), label="validation", color="C1")
    if ctx.best_epoch:  # early stopping's best validation epoch: the weights it keeps by default
        ax.axvline(ctx.best_epoch, color="C2", linestyle="--", linewidth=1,
                   label=f"best validation (epoch {ctx.best_epoch})")
    if log:
        log_axis(ax)
    title = f"{ctx.name}: loss per epoch" + (" (log scale)" if log else "")
    labels(ax, title, "epoch", f"cost C = mean {ctx.net.loss.name}")
    ax.grid(True, alpha=0.3)
    legend_in_free_corner(fig, ax)
    return fig, title


def no_lr(ctx: PlotContext) -> str | None:
    """The lr plot is drawn when the lr changed (a schedule); said nothing about otherwise."""
    if not ctx.history:
        return no_history(ctx)
    return None if len({v for v in ctx.series("lr") if v is not None}) > 1 else ""


def lr_figure(ctx: PlotContext):
    """The learning rate in force in each epoch (train.schedule's), on a log axis when it spans more than 10x."""
    lr = ctx.series("lr")
    fig, (ax,) = new_figure(6.4, 4.0)
    log = wants_log(lr)
    ax.plot(*xy(ctx.epochs, lr, log), color="C3", drawstyle="steps-post", label="lr")
    if log:
        log_axis(ax)
    title = f"{ctx.name}: learning rate per epoch" + (" (log scale)" if log else "")
    labels(ax, title, "epoch", "learning rate in force")
    ax.grid(True, alpha=0.3)
    return fig, title


def no_metric(ctx: PlotContext) -> str | None:
    if not ctx.history:
        return no_history(ctx)
    if all(v is None for v in ctx.series("metric") + ctx.series("val_metric")):
        return "no accuracy or R² recorded"
    return None


def metric_figure(ctx: PlotContext):
    """Accuracy (%) for classification, R² for regression, per epoch."""
    acc = ctx.prepared.train.task == "classification"
    scale = 100.0 if acc else 1.0
    fig, (ax,) = new_figure(6.4, 4.0)
    for key, label, colour in (("metric", "training", "C0"), ("val_metric", "validation", "C1")):
        x, y = xy(ctx.epochs, ctx.series(key))
        if x:
            ax.plot(x, [v * scale for v in y], label=label, color=colour)
    title = f"{ctx.name}: {'accuracy' if acc else 'R²'} per epoch"
    labels(ax, title, "epoch", "accuracy (%)" if acc else "R² (1 = perfect fit)")
    if acc:
        ax.set_ylim(-2, 102)
    ax.grid(True, alpha=0.3)
    legend_in_free_corner(fig, ax)
    return fig, title


def _colours(ctx: PlotContext) -> list:
    import matplotlib

    cmap, L = matplotlib.colormaps["viridis"], len(ctx.net.layers)
    return [cmap(0.85 * i / max(L - 1, 1)) for i in range(L)]


def _per_layer(ax, ctx: PlotContext, key: str, colours: list, log: bool, scale: float = 1.0) -> None:
    for l, letter in enumerate(ctx.letters):
        x, y = xy(ctx.epochs, ctx.series(key, l), log)
        if x:
            ax.plot(x, [v * scale for v in y], label=f"layer {letter}", color=colours[l])


def gradients_figure(ctx: PlotContext):
    """||dC/dW|| per layer and epoch on a log axis: vanishing or exploding gradients show as a spread."""
    fig, (ax,) = new_figure(6.4, 4.0)
    _per_layer(ax, ctx, "grad_norm", _colours(ctx), True)
    log_axis(ax)
    title = f"{ctx.name}: gradient norm per layer"
    labels(ax, title, "epoch", "||dC/dW|| (mean over the batches)")
    ax.grid(True, alpha=0.3)
    legend_outside(fig, ax, fontsize="small", ncol=2 if len(ctx.letters) > 14 else 1)
    return fig, title


def dynamics_figure(ctx: PlotContext):
    """Above: ||ΔW|| / ||W|| per layer and epoch; below: the share of saturated or dead units (one legend)."""
    fig, (ax1, ax2) = new_figure(6.4, 5.6, rows=2, sharex=True)
    colours = _colours(ctx)
    _per_layer(ax1, ctx, "update_ratio", colours, True)
    _per_layer(ax2, ctx, "saturation", colours, False, 100.0)
    log_axis(ax1)
    labels(ax1, f"{ctx.name}: how fast each layer's weights move", None, "||ΔW|| / ||W|| per epoch")
    labels(ax2, "saturated (sigmoid/tanh) or dead (ReLU) units", "epoch", "% of the layer's units")
    ax2.set_ylim(-3, 103)
    for ax in (ax1, ax2):
        ax.grid(True, alpha=0.3)
    legend_outside(fig, ax1, fontsize="small", ncol=2 if len(ctx.letters) > 14 else 1)
    return fig, f"{ctx.name}: update speed and saturated/dead units per layer"
