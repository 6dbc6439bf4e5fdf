"""`bpcli plot RUN --weights v1,w11 / --layer A`: parameters and their gradients over the kept epochs, and per-layer
histograms of weights and gradients at a few epochs (TensorBoard's histogram view, as one static picture)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from bpcli.plots.figure_text import plain
from bpcli.plots.picture import new_figure
from bpcli.plots.figure import labels, legend_outside, save_figure
from bpcli.analysis.trajectory import Along, along, frame_indices, layer_names, series

MAX_POINTS = 400  # snapshots drawn per line (evenly spread): the gradients are computed at each
MAX_LINES = 24  # parameters one weights plot tells apart; a larger layer is shown by its histograms
HIST_EPOCHS = 5  # epochs per histogram panel
FEW = 16  # a layer of at most this many weights shows each value as a dot instead of a histogram


def weights_figure(al: Along, picked: list[tuple[str, str, tuple[int, ...]]], title: str):
    """Two panels over the epochs: each picked parameter's value, then its gradient dC/dw at those weights.

    picked: (name, array key, index) as trajectory.series gives them.
    """
    from bpcli.plots.figure import new_figure as plot_figure

    fig, (top, bottom) = plot_figure(7.0, 5.6, rows=2, sharex=True)
    x = al.epochs
    marker = "o" if len(x) <= 30 else None
    for i, (name, key, idx) in enumerate(picked):
        sl = (slice(None),) + idx
        colour = f"C{i % 10}"
        top.plot(x, al.params[key][sl], color=colour, marker=marker, markersize=3, label=name)
        bottom.plot(x, al.grads[key][sl], color=colour, marker=marker, markersize=3, label=name)
    bottom.axhline(0.0, color="0.5", linewidth=0.8, zorder=0)
    labels(top, f"{title}: parameter values over the epochs", ylabel="value")
    labels(bottom, "their gradients dC/dw (training data, at each epoch's weights)", "epoch", "dC/dw")
    for ax in (top, bottom):
        ax.grid(True, alpha=0.3)
    legend_outside(fig, top, "right", fontsize="small", ncol=2 if len(picked) > 12 else 1)
    fig.subplots_adjust(left=1.15 / fig.get_size_inches()[0])  # room for tick labels such as -0.0075
    return fig


def histograms_figure(al: Along, letters: list[str], title: str, n: int = HIST_EPOCHS):
    """Per layer (a row each): histograms of its weights W (left) and of dC/dW (right) at up to n epochs, stacked
    as ridges with the latest in front."""
    pick = frame_indices(len(al.epochs), n)
    h = 0.95 + 2.3 * len(letters)  # inches: the heading, then a row of two panels per layer
    fig = new_figure(8.0, h)
    axes = fig.subplots(len(letters), 2, squeeze=False)
    fig.subplots_adjust(left=0.85 / 8.0, right=1 - 0.3 / 8.0, bottom=0.5 / h, top=1 - 0.7 / h, wspace=0.3,
                        hspace=0.55 / 1.75)  # fixed margins: no layout engine measuring every label
    import matplotlib
    cmap = matplotlib.colormaps["viridis_r"]
    for r, letter in enumerate(letters):
        for c, (source, what) in enumerate(((al.params, "weights W"), (al.grads, "gradients dC/dW"))):
            ax = axes[r, c]
            stack = source[f"{letter}.W"][pick].reshape(len(pick), -1)
            _ridges(ax, stack, [int(al.epochs[i]) for i in pick], cmap)
            each = ", as dots" if stack.shape[1] <= FEW else ""
            ax.set_title(f"layer {letter}: {what} ({stack.shape[1]}{each})", fontsize="medium")
            if r == len(letters) - 1:
                ax.set_xlabel("value")
            if c == 0:
                ax.set_ylabel("epoch")
    fig.suptitle(f"{plain(title)}: how each layer's weights and gradients are spread, epoch by epoch", y=1 - 0.12 / h,
                 va="top")
    return fig


def _ridges(ax, stack: np.ndarray, epochs: list[int], cmap) -> None:
    """One filled histogram per row of `stack` (k, values), row i raised to height i; the last drawn in front."""
    k = stack.shape[0]
    finite = stack[np.isfinite(stack)]
    lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (-1.0, 1.0)
    if hi - lo < 1e-12:
        lo, hi = lo - 0.5, hi + 0.5
    from matplotlib.ticker import MaxNLocator
    ax.xaxis.set_major_locator(MaxNLocator(nbins=5))
    ax.set_yticks(range(k))
    ax.set_yticklabels([str(e) for e in reversed(epochs)])
    ax.grid(True, axis="x", alpha=0.3)
    if stack.shape[1] <= FEW:  # a histogram of a handful of values is a few blocks: show the values themselves
        for i in range(k):
            colour = cmap(0.15 + 0.7 * i / max(k - 1, 1))
            ax.plot(stack[i], np.full(stack.shape[1], k - 1 - i), "o", color=colour, markeredgecolor="black",
                    markeredgewidth=0.5, markersize=6)
        pad = 0.05 * (hi - lo)
        ax.set_xlim(lo - pad, hi + pad)
        ax.set_ylim(-0.6, k - 0.4)
        return
    bins = np.linspace(lo, hi, min(40, max(8, stack.shape[1] // 2)) + 1)
    counts = [np.histogram(row[np.isfinite(row)], bins=bins)[0] for row in stack]
    top = max(1, max(int(cnt.max()) for cnt in counts))
    for i in range(k - 1, -1, -1):  # the earliest at the top and back, the latest at the bottom and front
        base = k - 1 - i
        h = 0.9 * counts[i] / top
        edges = np.repeat(bins, 2)[1:-1]
        heights = base + np.repeat(h, 2)
        colour = cmap(0.15 + 0.7 * i / max(k - 1, 1))
        ax.fill_between(edges, base, heights, color=colour, alpha=0.85, linewidth=0, zorder=2 * i)
        ax.plot(edges, heights, color="black", linewidth=0.6, zorder=2 * i + 1)
    ax.set_ylim(-0.1, k)
    ax.set_xlim(bins[0], bins[-1])


def pick_parameters(net, names: list[str], layers: list[str]) -> tuple[list, list[str], list[str]]:
    """(series to draw as lines, layer letters to draw as histograms, notes) for --weights NAMES and --layer A.

    Names are resolved with Network.resolve (did-you-mean on an unknown one); a layer of more than MAX_LINES
    parameters is drawn by its histograms only.
    """
    notes: list[str] = []
    wanted = list(names)
    letters: list[str] = []
    for typed in layers:
        in_layer = layer_names(net, typed)
        letter = net.layers[net.resolve(in_layer[0]).layer].letter
        letters.append(letter)
        if len(in_layer) <= MAX_LINES:
            wanted += [n for n in in_layer if n not in wanted]
        else:
            notes.append(f"weights of layer {letter}: {len(in_layer)} parameters are too many lines to tell apart; "
                         f"its histograms show them all (name up to {MAX_LINES} with --weights)")
    picked = series(net, wanted)
    for _, key, _ in picked:
        letter = key.split(".")[0]
        if letter not in letters:
            letters.append(letter)
    order = [layer.letter for layer in net.layers]
    return picked, sorted(letters, key=order.index), notes


def draw_weight_plots(loaded, traj, names: list[str], layers: list[str], out_dir: Path, formats: tuple[str, ...],
                      dpi: int, progress=None) -> tuple[list[tuple[str, str, tuple[str, ...]]], list[str]]:
    """Draw weights.<fmt> and histograms.<fmt> into out_dir from a trajectory (epochs, params); progress(kind, i, n)
    before each. Returns ([(kind, title, paths)], notes). The gradients come from trajectory.along (the one engine).
    """
    picked, letters, notes = pick_parameters(loaded.net, names, layers)
    net, name = loaded.net, loaded.cfg.name
    al = along(net, loaded.prepared.train, traj.epochs, traj.params, frame_indices(len(traj.epochs), MAX_POINTS))
    todo = []
    if picked:
        which = ", ".join(p[0] for p in picked) if len(picked) <= 3 else f"{len(picked)} parameters"
        todo.append(("weights", f"{name}: {which}: values and gradients by epoch",
                     lambda: weights_figure(al, picked, name)))
    if letters:
        which = f"layer{'s' if len(letters) > 1 else ''} {', '.join(letters)}"
        todo.append(("histograms", f"{name}: histograms of {which} at {min(HIST_EPOCHS, len(al.epochs))} epochs",
                     lambda: histograms_figure(al, letters, name)))
    drawn = []
    for i, (kind, title, build) in enumerate(todo, 1):
        if progress is not None:
            progress(kind, i, len(todo))
        drawn.append((kind, title, save_figure(build(), Path(out_dir), kind, formats, dpi)))
    return drawn, notes


def plot_weights(loaded, names: list[str], layers: list[str], out: Path | None, formats: tuple[str, ...],
                 dpi: int, kinds: tuple[str, ...] | None, progress=None):
    """`plot RUN --weights NAMES --layer A` for a loaded run: the weight plots (and the plots --only names, if
    given) as a PlotResult. The caller split and resolved the names and checked formats, dpi and kinds; every
    layer is checked here before anything is read or drawn; progress(kind, i, n) as plot_run's."""
    import dataclasses

    from bpcli.plots.plot import PlotFile, PlotResult, make_folder, plot_run
    from bpcli.runs.snapshots import trajectory

    for letter in layers:
        layer_names(loaded.net, letter)
    traj = trajectory(loaded)  # the run as loaded: not read a second time
    out_dir = Path(out if out is not None else loaded.run_dir)
    picked, letters, _ = pick_parameters(loaded.net, names, layers)
    mine = bool(picked) + bool(letters)  # the weights and histograms pictures, drawn after plot_run's
    before = [0]

    def counted(kind: str, i: int, n: int) -> None:  # one count over plot_run's plots and these
        before[0] = n
        if progress is not None:
            progress(kind, i, n + mine)

    if kinds:
        res = plot_run(loaded, out_dir, formats, dpi, kinds, counted)
    else:
        make_folder(out_dir)
        res = PlotResult(loaded.cfg.name, str(loaded.run_dir), str(out_dir), (), ())
    drawn, notes = draw_weight_plots(loaded, traj, names, layers, out_dir, formats, dpi,
                                     lambda kind, i, n: counted(kind, before[0] + i, before[0]))
    return dataclasses.replace(res, files=res.files + tuple(PlotFile(*f) for f in drawn),
                               skipped=res.skipped + tuple(notes))
