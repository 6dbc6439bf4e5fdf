"""bpcli animate: the network diagram over a run's kept epochs (edge width = |weight|, colour = the gradient's sign
and size) beside the loss curve, as a GIF (Pillow), an MP4 (ffmpeg) or an animated SVG.

One figure is built once; each frame only updates its artists (edge widths and colours, the epoch marker, the title).
"""

from __future__ import annotations

import io
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bpcli.errors import ArgumentError, BpcliError
from bpcli.plots.figure_text import plain
from bpcli.plots.picture import new_figure
from bpcli.analysis.trajectory import Along, along, frame_indices

FORMATS = (".gif", ".mp4", ".svg")
MAX_EDGES = 2000  # a diagram with more weights is a grey blur, and slow to draw
NAMED_EDGES = 12  # up to this many weights, each edge carries its name
NODE = 30  # a node's diameter in points
UNCHANGED = 255  # the GIF palette index of a pixel that is as in the frame before
GRAD_DECADES = 3  # gradients this many powers of 10 below the largest fade to white


@dataclass(frozen=True)
class AnimateResult:
    name: str
    run_dir: str
    out: str
    format: str  # gif | mp4 | svg
    frames: int
    epochs: tuple[int, ...]  # the epoch each frame shows
    snapshots: int  # the run's kept snapshots the frames were chosen from
    bytes: int
    seconds: float

    def to_dict(self) -> dict:
        return {"command": "animate", "name": self.name, "run_dir": self.run_dir, "out": self.out,
                "format": self.format, "frames": self.frames, "epochs": list(self.epochs),
                "snapshots": self.snapshots, "bytes": self.bytes, "seconds": self.seconds}


def check_out(out: Path, replace: bool = False) -> str:
    """The animation format of `out` from its suffix; BpcliError for another suffix, a missing writer or a path
    files.check_output refuses (an existing file only with `replace`)."""
    from bpcli.files import check_output

    suffix = out.suffix.lower()
    if suffix not in FORMATS:
        raise ArgumentError("out", f"give a file ending in .gif, .svg or .mp4; found '{out.name}'")
    check_output(out, replace, example="learn.gif")
    if suffix == ".mp4":
        from matplotlib import animation
        if not animation.writers.is_available("ffmpeg"):
            raise ArgumentError("out", "writing .mp4 needs ffmpeg, which is not installed (or not on the PATH); "
                                "write a .gif or .svg instead")
    return suffix[1:]


class Diagram:
    """The figure: the network (left) and the loss curve (right), with the artists a frame changes."""

    def __init__(self, net, al: Along, history: list[dict], title: str, dpi: int, classification: bool = True):
        import matplotlib
        from matplotlib.collections import LineCollection

        self.net, self.al, self.title, self.classification = net, al, plain(title), classification
        self.fig = fig = new_figure(9.0, 4.2)
        fig.set_dpi(dpi)
        # fixed places (a layout engine measures every label, which costs as much as drawing the figure)
        ax = fig.add_axes((0.01, 0.22, 0.50, 0.64))
        self.curve = fig.add_axes((0.60, 0.14, 0.38, 0.72))
        self.ax = ax
        columns = [[plain(n) for n in net.input_names]] + [[plain(net.node_name(l, j)) for j in range(la.n_out)]
                                                           for l, la in enumerate(net.layers)]
        tallest = max(len(c) for c in columns)
        # each column spread over the height (at most 2 units apart); the axes are 0.64 of 4.2 inches: 194 points
        gap = [min(tallest / len(col), 2.0) for col in columns]
        unit = 194 / (tallest + 0.2)
        self.diameter = [NODE if len(col) == 1 else min(NODE, 0.8 * unit * g) for col, g in zip(columns, gap)]
        pos = [[(float(c), ((len(col) - 1) / 2 - j) * gap[c]) for j in range(len(col))]
               for c, col in enumerate(columns)]
        segs, self.keys = [], []  # keys: (array key, j, k) of each edge, in LineCollection order
        for l, layer in enumerate(net.layers):
            for j in range(layer.n_out):
                for k in range(layer.n_in):
                    segs.append([pos[l][k], pos[l + 1][j]])
                    self.keys.append((f"{layer.letter}.W", j, k))
        self.W = np.stack([al.params[key][:, j, k] for key, j, k in self.keys], axis=1)  # (frames, edges)
        self.G = np.stack([al.grads[key][:, j, k] for key, j, k in self.keys], axis=1)
        self.wmax = float(np.max(np.abs(self.W))) or 1.0
        finite = np.abs(self.G[np.isfinite(self.G)])
        gmax = float(np.max(finite)) if finite.size else 1.0
        gmax = gmax or 1.0
        # colour by the gradient on a log scale over GRAD_DECADES decades below the largest (linear near 0)
        self.norm = matplotlib.colors.SymLogNorm(gmax * 10.0 ** -GRAD_DECADES, vmin=-gmax, vmax=gmax, base=10)
        self.cmap = matplotlib.colormaps["RdBu_r"]
        self.segs = segs
        self.edges = LineCollection(segs, capstyle="butt", zorder=1)
        ax.add_collection(self.edges)
        xy = [p for col in pos for p in col]
        sizes = [self.diameter[c] for c, col in enumerate(columns) for _ in col]
        self.nodes = ax.scatter([p[0] for p in xy], [p[1] for p in xy], s=np.square(sizes), color="white",
                                edgecolors="black", linewidths=[1.2 if d > 12 else 0.6 for d in sizes], zorder=3)
        self.labels = []
        outside = max(len(n) for n in columns[0]) > 3  # long input names go left of their nodes
        per_unit = 324 / (len(columns) - 0.1)  # points per unit across (the axes are 0.5 of 9 inches)
        left = 0.45 + (max(len(n) for n in columns[0]) * 4.2 + 4) / per_unit if outside else 0.45
        for c, col in enumerate(columns):
            size = min(9.0, self.diameter[c] / 2.6)
            for (x, y), label in zip(pos[c], col):
                if c == 0 and outside:
                    self.labels.append(ax.text(x - 0.55 * self.diameter[0] / per_unit, y, label, ha="right",
                                               va="center", fontsize=7, zorder=4))
                elif size >= 5:
                    self.labels.append(ax.text(x, y, label, ha="center", va="center", fontsize=size, zorder=4))
        self.names_for = segs if len(segs) <= NAMED_EDGES else []  # the edges whose names are shown
        if len(segs) <= NAMED_EDGES:
            refs = {(r.layer, r.to_node, r.from_node): r.name for r in net.param_refs() if r.kind == "W"}
            letters = [la.letter for la in net.layers]
            for (key, j, k), ((x0, y0), (x1, y1)) in zip(self.keys, segs):
                l = letters.index(key.split(".")[0])
                # edges into one node meet there and edges from one node part there: each edge's name sits at
                # its own distance along it, by the node it comes from
                t = 0.3 + 0.4 * k / max(net.layers[l].n_in - 1, 1)
                self.labels.append(ax.text(x0 + t * (x1 - x0), y0 + t * (y1 - y0), plain(refs[(l, j, k)]), ha="center",
                                           va="center", fontsize="x-small", color="0.2", zorder=5))
        ax.set_xlim(-left, len(columns) - 0.55)
        ax.set_ylim(-tallest / 2 - 0.1, tallest / 2 + 0.1)
        ax.set_axis_off()
        ax.set_xticks([]), ax.set_yticks([])  # none drawn; none measured either
        ax.set_title("edge width: |weight| (dashed: negative)", fontsize="small")
        self._colour_bar(gmax)
        self._curve(history)
        self.head = fig.suptitle(" ", fontsize="medium", y=0.97)
        self._fit_edges()

    def _colour_bar(self, gmax: float) -> None:
        """The edge colours' key under the network: the gradient on its log scale, ticks at the largest power
        of ten up to gmax and a hundredth of it, either sign."""
        import matplotlib

        bar = self.fig.colorbar(matplotlib.cm.ScalarMappable(self.norm, self.cmap), orientation="horizontal",
                                cax=self.fig.add_axes((0.06, 0.13, 0.40, 0.035)))
        top = 10.0 ** np.floor(np.log10(gmax))
        bar.set_ticks([-top, -top / 100, 0.0, top / 100, top])
        bar.set_ticklabels([f"{v:.0e}".replace("e-0", "e-").replace("e+0", "e") if v else "0"
                            for v in (-top, -top / 100, 0.0, top / 100, top)])
        bar.set_label("edge colour: gradient dC/dw (log scale)", fontsize="small")
        bar.ax.tick_params(labelsize="x-small")

    def _fit_edges(self) -> None:
        """With the layout fixed: each edge ends at its nodes' circles, so it never covers a node (the nodes and
        names are drawn once, under the edges), and each edge's name sits just above its edge."""
        to_px = self.ax.transData
        back = to_px.inverted()
        px = self.fig.dpi / 72  # pixels per point
        lift = 7 * px
        segs = []
        for a, b in self.segs:
            pa, pb = to_px.transform(a), to_px.transform(b)
            u = (pb - pa) / np.hypot(*(pb - pa))
            ra, rb = (self.diameter[round(a[0])] / 2 * px, self.diameter[round(b[0])] / 2 * px)  # x is the column
            segs.append(back.transform([pa + ra * u, pb - rb * u]))
        self.edges.set_segments(segs)
        normal = lambda u: np.array([-u[1], u[0]]) if u[0] >= 0 else np.array([u[1], -u[0]])
        for text, (a, b) in zip(self.labels[len(self.labels) - len(self.names_for):], self.names_for):
            pa, pb = to_px.transform(a), to_px.transform(b)
            u = (pb - pa) / np.hypot(*(pb - pa))
            text.set_position(back.transform(to_px.transform(text.get_position()) + lift * normal(u)))

    def _curve(self, history: list[dict]) -> None:
        """The run's training loss per epoch (or, without a history, the cost at the frames' weights); the frame's
        epoch is a vertical line and a dot at the cost at its weights. No legend: nothing to hide the curve."""
        from bpcli.plots.figure import log_axis

        c, al = self.curve, self.al
        ep = [int(h["epoch"]) for h in history if h.get("loss") is not None]
        loss = [float(h["loss"]) for h in history if h.get("loss") is not None]
        if not ep:
            ep, loss = [int(e) for e in al.epochs], [float(v) for v in al.loss]
        c.plot(ep, loss, color="C0")
        vals = [v for v in loss + list(al.loss) if np.isfinite(v) and v > 0]
        if vals and max(vals) / min(vals) > 10:
            log_axis(c)
        c.set(title="training loss", xlabel="epoch", ylabel="cost C")
        c.grid(True, alpha=0.3)
        self.marker = c.axvline(al.epochs[0], color="C3", linewidth=1.2)
        (self.dot,) = c.plot([al.epochs[0]], [al.loss[0]], "o", color="C3", markersize=7, zorder=5)

    def style(self, i: int) -> tuple[np.ndarray, list, list]:
        """(line widths, RGBA colours, dash styles) of the edges in frame i."""
        w, g = self.W[i], self.G[i]
        widths = 0.6 + 7.0 * np.abs(w) / self.wmax
        colours = self.cmap(self.norm(np.nan_to_num(g)))
        dashes = ["--" if v < 0 else "-" for v in w]
        return widths, colours, dashes

    def frame_title(self, i: int) -> str:
        al = self.al
        metric = al.metric[i]
        tail = ""
        if np.isfinite(metric):
            tail = f", accuracy {100 * metric:.0f}%" if self.classification else f", R² {metric:.3f}"
        return f"{self.title}: epoch {int(al.epochs[i])} of {int(al.epochs[-1])}, cost C = {al.loss[i]:.4g}{tail}"

    def show(self, i: int) -> None:
        widths, colours, dashes = self.style(i)
        self.edges.set_linewidths(widths)
        self.edges.set_color(colours)
        self.edges.set_linestyles(dashes)
        e = int(self.al.epochs[i])
        self.marker.set_xdata([e, e])
        self.dot.set_data([e], [self.al.loss[i]])
        self.head.set_text(self.frame_title(i))


def animate_run(net, cfg_name: str, data, history: list[dict], traj, out: Path, frames: int = 100, fps: int = 10,
                dpi: int = 80, run_dir: str = "", progress=None, replace: bool = False) -> AnimateResult:
    """Render the frames (at most `frames`, evenly spread over the kept snapshots) into `out`, written whole or
    not at all. progress(done, total) is called after each frame."""
    fmt = check_out(out, replace)
    t0 = time.perf_counter()
    n_edges = sum(la.n_in * la.n_out for la in net.layers)
    if n_edges > MAX_EDGES:
        raise BpcliError(f"animate: this network has {n_edges} weights; a diagram of more than {MAX_EDGES} is a "
                         "blur (try `bpcli plot RUN --layer A` for its histograms)")
    pick = frame_indices(len(traj.epochs), frames)
    if progress is not None:
        progress(0, len(pick))
    al = along(net, data, traj.epochs, traj.params, pick)
    d = Diagram(net, al, history, cfg_name, dpi, data.task == "classification")
    if fmt == "mp4":
        _write_mp4(d, out, fps, progress, replace)
    else:
        from bpcli.files import write_output
        if fmt == "svg":
            from bpcli.plots.animate_svg import svg_bytes
            blob = svg_bytes(d, fps, progress)
        else:
            blob = gif_bytes(d, fps, progress)
        write_output(out, blob, replace)
    return AnimateResult(cfg_name, run_dir, str(out), fmt, len(pick), tuple(int(e) for e in al.epochs),
                         len(traj.epochs), out.stat().st_size, time.perf_counter() - t0)


def _write_mp4(d: Diagram, out: Path, fps: int, progress, replace: bool = False) -> None:
    """The blitted frames piped to ffmpeg (where matplotlib's settings find it) as raw RGB, encoded as H.264 into a
    temporary file that is renamed over `out` when whole."""
    import subprocess

    from matplotlib import animation

    from bpcli.files import commit_output, temp_beside

    tmp = temp_beside(out, out.suffix)
    w, h = (int(v) for v in d.fig.canvas.get_width_height())
    cmd = [animation.FFMpegWriter.bin_path(), "-y", "-loglevel", "error", "-f", "rawvideo", "-pix_fmt", "rgb24",
           "-s", f"{w}x{h}", "-r", str(fps), "-i", "pipe:", "-vf", "pad=ceil(iw/2)*2:ceil(ih/2)*2",
           "-vcodec", "libx264", "-pix_fmt", "yuv420p", "-f", "mp4", tmp]
    n = len(d.al.epochs)
    try:
        with subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE) as proc:
            try:
                for i, rgb in enumerate(blitted(d)):
                    proc.stdin.write(rgb.tobytes())
                    if progress is not None:
                        progress(i + 1, n)
            except BrokenPipeError:
                pass  # ffmpeg stopped: its own message is read below
            finally:
                proc.stdin.close()
            problem = proc.stderr.read().decode(errors="replace").strip()
        if proc.returncode:
            last = problem.splitlines()[-1] if problem else f"exit status {proc.returncode}"
            raise ArgumentError("out", f"ffmpeg could not write the MP4 ({last})")
        commit_output(tmp, out, replace)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def gif_bytes(d: Diagram, fps: int, progress=None) -> bytes:
    """A GIF of blitted frames through Pillow (matplotlib's GIF writer is Pillow too, but redraws the whole figure
    for every frame)."""
    n = len(d.al.epochs)
    from PIL import Image

    images = []
    palette = before = None
    for i, rgb in enumerate(blitted(d)):
        im = Image.fromarray(rgb)
        # one palette for every frame (taken from the first, which holds the colour bar): no flicker; index 255 is
        # kept free to mark a pixel that did not change, drawn transparent over the frame before (smaller files)
        palette = palette or im.quantize(colors=255, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
        now = np.asarray(im.quantize(palette=palette, dither=Image.Dither.NONE))
        delta = now.copy()
        if before is not None:
            delta[now == before] = UNCHANGED
        before = now
        frame = Image.fromarray(delta, "P")
        frame.putpalette(palette.getpalette())
        images.append(frame)
        if progress is not None:
            progress(i + 1, n)
    buf = io.BytesIO()
    images[0].save(buf, format="GIF", save_all=True, append_images=images[1:], duration=round(1000 / fps),
                   loop=0, optimize=False, disposal=1, transparency=UNCHANGED)
    return buf.getvalue()


def blitted(d: Diagram):
    """Each frame as an (h, w, 3) uint8 array: the still parts drawn once, then per frame only the edges, the epoch
    marker and the title drawn over a copy of them."""
    canvas = d.fig.canvas
    moving = [d.edges, d.marker, d.dot, d.head]
    for a in moving:
        a.set_animated(True)
    try:
        canvas.draw()
        still = canvas.copy_from_bbox(d.fig.bbox)
        for i in range(len(d.al.epochs)):
            d.show(i)
            canvas.restore_region(still)
            for a in moving:
                d.fig.draw_artist(a)
            yield np.asarray(canvas.buffer_rgba())[..., :3].copy()
    finally:
        for a in moving:
            a.set_animated(False)
