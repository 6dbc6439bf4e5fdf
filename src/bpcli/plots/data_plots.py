"""The data plots of `bpcli plot`: decision boundary or regions, regression surface, fitted curve.

Drawn in the data's original units (the network sees them standardised when the run scaled its inputs).
The network's output over a grid is one image (imshow), not stacks of filled contours: fewer artists to draw.
"""

from __future__ import annotations

import numpy as np

from bpcli.plots.figure_text import plain
from bpcli.plots.figure import PlotContext, arrange, labels, legend_in_free_corner, legend_outside, new_figure

GRID = 200  # points per axis of the decision-boundary grid


def data_kind(ctx: PlotContext) -> str | None:
    """fit (one input, regression), boundary (two inputs, classes), surface (two inputs, regression), or None."""
    n_in, classification = ctx.net.n_inputs, ctx.prepared.train.task == "classification"
    if n_in == 1 and not classification:
        return "fit"
    if n_in == 2:
        return "boundary" if classification else "surface"
    return None


def skip_data(kind: str):
    """The skip rule for one data plot: say why only for the boundary (the data plot people expect)."""
    def skip(ctx: PlotContext) -> str | None:
        have = data_kind(ctx)
        if have == kind:
            return None
        if have is None and kind == "boundary":
            return f"needs 2 input features, this network has {ctx.net.n_inputs}"
        return ""  # another data plot fits this run; nothing to say
    return skip


def _parts(ctx: PlotContext):
    """[(x in original units, y, 'training' | 'validation', marker)]."""
    prepared = ctx.prepared
    sc = prepared.scaling

    def unscale(x):
        return x * sc.std + sc.mean if sc is not None else x

    parts = [(unscale(prepared.train.x), prepared.train.y, "training", "o")]
    if prepared.val is not None:
        parts.append((unscale(prepared.val.x), prepared.val.y, "validation", "^"))
    return parts


def _predict(ctx: PlotContext, x: np.ndarray) -> np.ndarray:
    from bpcli.nn.engine import predict

    sc = ctx.prepared.scaling
    return predict(ctx.net, (sc.apply(x) if sc is not None else x).astype(ctx.net.dtype))


def _names(ctx: PlotContext) -> tuple[str, ...]:
    return ctx.prepared.train.feature_names or ctx.net.input_names


def fit_figure(ctx: PlotContext):
    """One input, regression: the data and the network's curve."""
    parts = _parts(ctx)
    train = ctx.prepared.train
    xs = np.concatenate([p[0][:, 0] for p in parts])
    lo, hi = float(xs.min()), float(xs.max())
    pad = 0.05 * (hi - lo or 1.0)
    grid = np.linspace(lo - pad, hi + pad, 400)[:, None]
    y_hat = _predict(ctx, grid)
    fig, (ax,) = new_figure(6.4, 4.0)
    for k, (x, y, label, marker) in enumerate(parts):
        ax.scatter(x[:, 0], y[:, 0], s=14, marker=marker, alpha=0.7, label=f"{label} data", color=f"C{k}")
    ax.plot(grid[:, 0], y_hat[:, 0], color="black", linewidth=2, label="network y'")
    title = f"{ctx.name}: the fitted curve"
    labels(ax, title, _names(ctx)[0], train.target_names[0] if train.target_names else "y")
    ax.grid(True, alpha=0.3)
    legend_in_free_corner(fig, ax)
    return fig, title


def _grid(parts):
    xs = np.concatenate([p[0] for p in parts])
    lo, hi = xs.min(axis=0), xs.max(axis=0)
    pad = 0.1 * np.where(hi - lo > 0, hi - lo, 1.0)
    g1 = np.linspace(lo[0] - pad[0], hi[0] + pad[0], GRID)
    g2 = np.linspace(lo[1] - pad[1], hi[1] + pad[1], GRID)
    G1, G2 = np.meshgrid(g1, g2)
    return g1, g2, G1, G2, np.c_[G1.ravel(), G2.ravel()]


def _plane(ctx: PlotContext):
    """A figure with room for a colour bar on the right; the grid and the network's output over it."""
    parts = _parts(ctx)
    g1, g2, G1, G2, grid = _grid(parts)
    fig, (ax,) = new_figure(6.0, 5.0)
    arrange(fig, right=0.8)  # the colour bar's ticks and label
    return fig, ax, parts, (g1, g2, G1, G2), _predict(ctx, grid)


def _image(ax, values, g1, g2, **kw):
    return ax.imshow(values, origin="lower", extent=(g1[0], g1[-1], g2[0], g2[-1]), aspect="auto", **kw)


def boundary_figure(ctx: PlotContext):
    """Two inputs, classes: P(class) as colour with the y' = 0.5 line (one output), or the most likely class."""
    train = ctx.prepared.train
    fig, ax, parts, (g1, g2, G1, G2), y_hat = _plane(ctx)
    if y_hat.shape[1] == 1:
        P = y_hat[:, 0].reshape(G1.shape)
        im = _image(ax, P, g1, g2, cmap="RdBu_r", vmin=0.0, vmax=1.0, alpha=0.65, interpolation="bilinear")
        if P.min() < 0.5 < P.max():
            ax.contour(G1, G2, P, levels=[0.5], colors="black", linewidths=1.5)
        else:
            ax.text(0.5, 0.03, f"no boundary: y' stays between {P.min():.3f} and {P.max():.3f}",
                    transform=ax.transAxes, ha="center", va="bottom", fontsize="small",
                    bbox={"facecolor": "white", "alpha": 0.85, "edgecolor": "0.6"})
        classes = train.class_names or ("0", "1")
        fig.colorbar(im, ax=ax).set_label(f"network output y' = P({classes[-1]})")
        for x, y, label, marker in parts:
            for c, colour in ((0, "#053061"), (1, "#67001f")):
                pick = (y[:, 0] >= 0.5) == bool(c)
                if np.any(pick):
                    ax.scatter(x[pick, 0], x[pick, 1], s=22, marker=marker, color=colour, edgecolors="white",
                               linewidths=0.6, label=f"{plain(classes[c])} ({label})")
        title = f"{ctx.name}: decision boundary (y' = 0.5)"
    else:
        from matplotlib.colors import ListedColormap
        k = y_hat.shape[1]
        base = [f"C{i % 10}" for i in range(k)]
        cls = np.argmax(y_hat, axis=1).reshape(G1.shape)
        _image(ax, cls, g1, g2, cmap=ListedColormap(base), vmin=-0.5, vmax=k - 0.5, alpha=0.3,
               interpolation="nearest")
        ax.contour(G1, G2, cls, levels=np.arange(k - 1) + 0.5, colors="black", linewidths=0.8)
        classes = train.class_names or tuple(str(i) for i in range(k))
        for x, y, label, marker in parts:
            idx = np.argmax(y, axis=1)
            for c in range(k):
                pick = idx == c
                if np.any(pick):
                    ax.scatter(x[pick, 0], x[pick, 1], s=22, marker=marker, color=base[c], edgecolors="white",
                               linewidths=0.6, label=f"{plain(classes[c])} ({label})")
        title = f"{ctx.name}: decision regions (the most likely class)"
    return _finish(fig, ax, ctx, title, g1, g2)


def surface_figure(ctx: PlotContext):
    """Two inputs, regression: the network's output as colour, the data coloured by its target."""
    train = ctx.prepared.train
    fig, ax, parts, (g1, g2, G1, G2), y_hat = _plane(ctx)
    Y = y_hat[:, 0].reshape(G1.shape)
    ys = np.concatenate([p[1][:, 0] for p in parts])
    vmin, vmax = float(min(Y.min(), ys.min())), float(max(Y.max(), ys.max()))
    im = _image(ax, Y, g1, g2, cmap="viridis", vmin=vmin, vmax=vmax, interpolation="bilinear")
    target = train.target_names[0] if train.target_names else "y"
    fig.colorbar(im, ax=ax).set_label(f"network output y' ({target})")
    for x, y, label, marker in parts:
        ax.scatter(x[:, 0], x[:, 1], c=y[:, 0], cmap="viridis", vmin=vmin, vmax=vmax, s=22, marker=marker,
                   edgecolors="white", linewidths=0.6, label=f"{label} data (colour: target)")
    return _finish(fig, ax, ctx, f"{ctx.name}: regression surface", g1, g2)


def _finish(fig, ax, ctx: PlotContext, title: str, g1, g2):
    names = _names(ctx)
    labels(ax, title, names[0], names[1])
    ax.set(xlim=(g1[0], g1[-1]), ylim=(g2[0], g2[-1]))
    legend_outside(fig, ax, where="below", fontsize="small")  # the data fill the plane: no free corner
    return fig, title
