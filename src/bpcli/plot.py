"""bpcli plot: loss, metric, per-layer gradient curves and the decision boundary of a run, as PNG/SVG files.

matplotlib is an optional extra (`pip install 'bpcli[plot]'`); it is imported only here, and only the Agg
canvas is used (no pyplot, no window, no global backend switch).
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bpcli.errors import BpcliError

FORMATS = ("png", "svg")
KINDS = ("loss", "metric", "gradients", "dynamics", "boundary", "surface", "fit")
GRID = 200  # points per axis of the decision-boundary grid


class MissingExtraError(BpcliError):
    """An optional dependency is not installed."""


@dataclass(frozen=True)
class PlotFile:
    kind: str  # loss | metric | gradients | dynamics | boundary | surface | fit
    title: str
    paths: tuple[str, ...]


@dataclass(frozen=True)
class PlotResult:
    name: str
    run_dir: str
    out_dir: str
    files: tuple[PlotFile, ...]
    skipped: tuple[str, ...]  # plots not drawn, with the reason

    def to_dict(self) -> dict:
        return {
            "command": "plot", "name": self.name, "run_dir": self.run_dir, "out_dir": self.out_dir,
            "plots": [{"kind": f.kind, "title": f.title, "files": list(f.paths)} for f in self.files],
            "skipped": list(self.skipped),
        }


def require_matplotlib():
    """The matplotlib module, or MissingExtraError with the one-line install hint."""
    try:
        import matplotlib
        from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: F401
    except ImportError:
        raise MissingExtraError("plotting needs matplotlib: pip install 'bpcli[plot]'") from None
    return matplotlib


def _series(history: list[dict], key: str) -> list[float | None]:
    out = []
    for h in history:
        v = h.get(key)
        out.append(float(v) if isinstance(v, (int, float)) and math.isfinite(v) else None)
    return out


def _layer_series(history: list[dict], key: str, l: int) -> list[float | None]:
    out = []
    for h in history:
        vals = h.get(key) or []
        v = vals[l] if l < len(vals) else None
        out.append(float(v) if isinstance(v, (int, float)) and math.isfinite(v) else None)
    return out


def _xy(epochs: list[int], vals: list[float | None], positive: bool = False):
    pts = [(e, v) for e, v in zip(epochs, vals) if v is not None and (v > 0 or not positive)]
    return [p[0] for p in pts], [p[1] for p in pts]


def _wants_log(*series: list[float | None]) -> bool:
    vals = [v for s in series for v in s if v is not None]
    return bool(vals) and min(vals) > 0 and max(vals) / min(vals) > 10


def plot_run(loaded, out_dir: str | Path | None = None, formats: tuple[str, ...] = FORMATS,
             dpi: int = 100, only: tuple[str, ...] | None = None) -> PlotResult:
    """Draw every plot that fits the run (or those in `only`) into `out_dir` (default: the run folder).

    Files are written atomically, named <kind>.<format>.
    """
    if only is not None:
        from bpcli.errors import did_you_mean
        bad = [k for k in only if k not in KINDS]
        if bad:
            raise BpcliError(f"--only: unknown plot '{bad[0]}'{did_you_mean(bad[0], KINDS)}; "
                             f"choose from {', '.join(KINDS)}")
    wanted = set(only or KINDS)
    matplotlib = require_matplotlib()
    from matplotlib.figure import Figure

    out = Path(out_dir) if out_dir is not None else Path(loaded.run_dir)
    if not out.is_dir():
        raise BpcliError(f"--out: {out} is not a folder")
    cfg, net, prepared, history = loaded.cfg, loaded.net, loaded.prepared, loaded.history
    name = cfg.name
    files: list[PlotFile] = []
    skipped: list[str] = []
    epochs = [int(h.get("epoch", i + 1)) for i, h in enumerate(history)]
    letters = [f"{la.letter} ({la.activation.name})" for la in net.layers]

    def save(fig, kind: str, title: str) -> None:
        from bpcli.files import atomic_write_bytes
        if kind not in wanted:
            return  # building a figure is cheap; drawing it is what costs
        paths = []
        fig.tight_layout()  # once: a layout engine would redo it on every save
        with matplotlib.rc_context({"svg.hashsalt": "bpcli", "svg.fonttype": "none"}):
            for fmt in formats:
                buf = io.BytesIO()
                meta = {"Date": None} if fmt == "svg" else {}
                fig.savefig(buf, format=fmt, dpi=dpi, metadata=meta)
                path = out / f"{kind}.{fmt}"
                atomic_write_bytes(path, buf.getvalue())
                paths.append(str(path))
        files.append(PlotFile(kind, title, tuple(paths)))

    def figure(w: float = 6.4, h: float = 4.0):
        fig = Figure(figsize=(w, h))
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        FigureCanvasAgg(fig)
        return fig

    curves = [k for k in ("loss", "metric", "gradients", "dynamics") if k in wanted]
    if not history:
        if curves:
            skipped.append(f"{', '.join(curves)}: the run has no finished epoch")
    else:
        # loss curves
        loss, val = _series(history, "loss"), _series(history, "val_loss")
        fig = figure()
        ax = fig.add_subplot()
        log = _wants_log(loss, val)
        ax.plot(*_xy(epochs, loss, log), label="training", color="C0")
        if any(v is not None for v in val):
            ax.plot(*_xy(epochs, val, log), label="validation", color="C1")
        best = loaded.state.best_epoch  # early stopping's best validation epoch: the weights it keeps by default
        if best:
            ax.axvline(best, color="C2", linestyle="--", linewidth=1, label=f"best validation (epoch {best})")
        if log:
            ax.set_yscale("log")
        title = f"{name}: loss per epoch" + (" (log scale)" if log else "")
        ax.set(title=title, xlabel="epoch", ylabel=f"cost C = mean {net.loss.name}")
        ax.grid(True, which="major", alpha=0.3)
        ax.legend()
        save(fig, "loss", title)

        # metric curves
        met, vmet = _series(history, "metric"), _series(history, "val_metric")
        if any(v is not None for v in met + vmet):
            acc = prepared.train.task == "classification"
            scale = 100.0 if acc else 1.0
            fig = figure()
            ax = fig.add_subplot()
            for s, lab, c in ((met, "training", "C0"), (vmet, "validation", "C1")):
                x, y = _xy(epochs, s)
                if x:
                    ax.plot(x, [v * scale for v in y], label=lab, color=c)
            label = "accuracy (%)" if acc else "R² (1 = perfect fit)"
            title = f"{name}: {'accuracy' if acc else 'R²'} per epoch"
            ax.set(title=title, xlabel="epoch", ylabel=label)
            if acc:
                ax.set_ylim(-2, 102)
            ax.grid(True, alpha=0.3)
            ax.legend()
            save(fig, "metric", title)
        else:
            if "metric" in wanted:
                skipped.append("metric: no accuracy or R² recorded")

        # per-layer gradient norms
        cmap = matplotlib.colormaps["viridis"]
        L = len(net.layers)
        colours = [cmap(0.85 * i / max(L - 1, 1)) for i in range(L)]
        grads = [_layer_series(history, "grad_norm", l) for l in range(L)]
        fig = figure(7.6, 4.0)
        ax = fig.add_subplot()
        for l in range(L):
            x, y = _xy(epochs, grads[l], True)
            if x:
                ax.plot(x, y, label=f"layer {letters[l]}", color=colours[l])
        ax.set_yscale("log")
        title = f"{name}: gradient norm per layer"
        ax.set(title=title, xlabel="epoch", ylabel="||dC/dW|| (mean over the epoch's batches)")
        ax.grid(True, which="major", alpha=0.3)
        _legend_right(ax, L)
        save(fig, "gradients", title)

        # update-to-weight ratio and saturated/dead share per layer
        ups = [_layer_series(history, "update_ratio", l) for l in range(L)]
        sats = [_layer_series(history, "saturation", l) for l in range(L)]
        fig = figure(7.6, 5.6)
        ax1, ax2 = fig.subplots(2, 1, sharex=True)
        for l in range(L):
            x, y = _xy(epochs, ups[l], True)
            if x:
                ax1.plot(x, y, label=f"layer {letters[l]}", color=colours[l])
            x, y = _xy(epochs, sats[l])
            if x:
                ax2.plot(x, [100 * v for v in y], label=f"layer {letters[l]}", color=colours[l])
        ax1.set_yscale("log")
        ax1.set(title=f"{name}: how fast each layer's weights move", ylabel="||ΔW|| / ||W|| per epoch")
        ax1.grid(True, which="major", alpha=0.3)
        _legend_right(ax1, L)
        ax2.set(title="saturated (sigmoid/tanh) or dead (ReLU) units", xlabel="epoch", ylabel="% of the layer's units")
        ax2.set_ylim(-3, 103)
        ax2.grid(True, alpha=0.3)
        save(fig, "dynamics", f"{name}: update-to-weight ratio and saturated/dead units per layer")

    if wanted & {"boundary", "surface", "fit"}:
        _data_plot(loaded, figure, save, skipped)
    return PlotResult(name, str(loaded.run_dir), str(out), tuple(files), tuple(skipped))


def _legend_right(ax, n: int) -> None:
    """One legend entry per layer, outside the axes so it never hides a curve."""
    ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0,
              ncol=2 if n > 14 else 1)


def _data_plot(loaded, figure, save, skipped: list[str]) -> None:
    """Decision boundary (classification) or regression surface / curve over the data, in original units."""
    from bpcli.engine import predict

    cfg, net, prepared = loaded.cfg, loaded.net, loaded.prepared
    train, val = prepared.train, prepared.val
    scaling = prepared.scaling
    n_in = net.n_inputs

    def unscale(x):
        return x * scaling.std + scaling.mean if scaling is not None else x

    def scale(x):
        return scaling.apply(x) if scaling is not None else x

    parts = [(unscale(train.x), train.y, "training", "o")]
    if val is not None:
        parts.append((unscale(val.x), val.y, "validation", "^"))
    names = train.feature_names or net.input_names
    classification = train.task == "classification"
    if n_in == 1 and not classification:
        xs = np.concatenate([p[0][:, 0] for p in parts])
        lo, hi = float(xs.min()), float(xs.max())
        pad = 0.05 * (hi - lo or 1.0)
        grid = np.linspace(lo - pad, hi + pad, 400)[:, None]
        y_hat = predict(net, scale(grid).astype(net.dtype))
        fig = figure()
        ax = fig.add_subplot()
        for k, (x, y, lab, marker) in enumerate(parts):
            ax.scatter(x[:, 0], y[:, 0], s=14, marker=marker, alpha=0.7, label=f"{lab} data",
                       color="C0" if k == 0 else "C1")
        ax.plot(grid[:, 0], y_hat[:, 0], color="black", linewidth=2, label="network y'")
        title = f"{cfg.name}: the fitted curve"
        ax.set(title=title, xlabel=names[0], ylabel=train.target_names[0] if train.target_names else "y")
        ax.grid(True, alpha=0.3)
        ax.legend()
        save(fig, "fit", title)
        return
    if n_in != 2:
        skipped.append(f"decision boundary: needs 2 input features, this network has {n_in}")
        return
    xs = np.concatenate([p[0] for p in parts])
    lo, hi = xs.min(axis=0), xs.max(axis=0)
    pad = 0.1 * np.where(hi - lo > 0, hi - lo, 1.0)
    g1 = np.linspace(lo[0] - pad[0], hi[0] + pad[0], GRID)
    g2 = np.linspace(lo[1] - pad[1], hi[1] + pad[1], GRID)
    G1, G2 = np.meshgrid(g1, g2)
    grid = np.c_[G1.ravel(), G2.ravel()]
    y_hat = predict(net, scale(grid).astype(net.dtype))
    fig = figure(6.0, 5.0)
    ax = fig.add_subplot()
    if classification and y_hat.shape[1] == 1:
        P = y_hat[:, 0].reshape(G1.shape)
        cs = ax.contourf(G1, G2, P, levels=np.linspace(0, 1, 11), cmap="RdBu_r", alpha=0.6)
        if P.min() < 0.5 < P.max():
            ax.contour(G1, G2, P, levels=[0.5], colors="black", linewidths=1.5)
        else:
            ax.text(0.5, 0.03, f"no boundary: y' stays between {P.min():.3f} and {P.max():.3f}",
                    transform=ax.transAxes, ha="center", va="bottom", fontsize="small",
                    bbox={"facecolor": "white", "alpha": 0.85, "edgecolor": "0.6"})
        cb = fig.colorbar(cs, ax=ax)
        classes = train.class_names or ("0", "1")
        cb.set_label(f"network output y' = P({classes[-1]})")
        for x, y, lab, marker in parts:
            for c, colour in ((0, "#053061"), (1, "#67001f")):
                pick = (y[:, 0] >= 0.5) == bool(c)
                if np.any(pick):
                    ax.scatter(x[pick, 0], x[pick, 1], s=22, marker=marker, color=colour, edgecolors="white",
                               linewidths=0.6, label=f"{classes[c]} ({lab})")
        title = f"{cfg.name}: decision boundary (y' = 0.5)"
        kind = "boundary"
    elif classification:
        from matplotlib.colors import ListedColormap
        k = y_hat.shape[1]
        base = [f"C{i % 10}" for i in range(k)]
        cmap = ListedColormap(base)
        cls = np.argmax(y_hat, axis=1).reshape(G1.shape)
        ax.contourf(G1, G2, cls, levels=np.arange(k + 1) - 0.5, cmap=cmap, alpha=0.3)
        ax.contour(G1, G2, cls, levels=np.arange(k) + 0.5, colors="black", linewidths=0.8)
        classes = train.class_names or tuple(str(i) for i in range(k))
        for x, y, lab, marker in parts:
            lab_idx = np.argmax(y, axis=1)
            for c in range(k):
                pick = lab_idx == c
                if np.any(pick):
                    ax.scatter(x[pick, 0], x[pick, 1], s=22, marker=marker, color=base[c], edgecolors="white",
                               linewidths=0.6, label=f"{classes[c]} ({lab})")
        title = f"{cfg.name}: decision regions (the most likely class)"
        kind = "boundary"
    else:
        Y = y_hat[:, 0].reshape(G1.shape)
        ys = np.concatenate([p[1][:, 0] for p in parts])
        vmin, vmax = float(min(Y.min(), ys.min())), float(max(Y.max(), ys.max()))
        cs = ax.contourf(G1, G2, Y, levels=20, cmap="viridis", vmin=vmin, vmax=vmax)
        cb = fig.colorbar(cs, ax=ax)
        target = train.target_names[0] if train.target_names else "y"
        cb.set_label(f"network output y' ({target})")
        for x, y, lab, marker in parts:
            ax.scatter(x[:, 0], x[:, 1], c=y[:, 0], cmap="viridis", vmin=vmin, vmax=vmax, s=22, marker=marker,
                       edgecolors="white", linewidths=0.6, label=f"{lab} data (colour: target)")
        title = f"{cfg.name}: regression surface"
        kind = "surface"
    ax.set(title=title, xlabel=names[0], ylabel=names[1])
    ax.set_xlim(g1[0], g1[-1])
    ax.set_ylim(g2[0], g2[-1])
    ax.legend(fontsize="small", loc="best", framealpha=0.85)
    save(fig, kind, title)
