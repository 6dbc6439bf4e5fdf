"""Pictures that read well (issue 13): plot legends off the data, plot's --out and progress, the DOT graph's order."""

from __future__ import annotations

import json
import shutil
import re
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from bpcli.cli.app import app
from tests.conftest import train_shipped
from bpcli.runs.store import load_run

runner = CliRunner()


_train = train_shipped  # a shipped config trained a few epochs into tmp/name (conftest)


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    tmp = tmp_path_factory.mktemp("runs")
    return {"seed": _train(tmp, "seed", 300), "iris": _train(tmp, "iris", 60), "deep_relu": _train(tmp, "deep_relu", 20)}


# --- plot: legends never on the data, nothing cut off ---------------------------------------------


def _display_points(ax) -> np.ndarray:
    """Every line (densified: 16 points per segment, so a segment crossing a box is caught) and scatter point,
    in display pixels."""
    out = []
    for line in ax.get_lines():
        pts = line.get_transform().transform(np.asarray(line.get_xydata(), dtype=float))
        pts = pts[np.all(np.isfinite(pts), axis=1)]
        if len(pts) > 1:
            t = np.linspace(0.0, 1.0, 16)[:, None, None]
            pts = (pts[:-1] + t * (pts[1:] - pts[:-1])).reshape(-1, 2)
        out.append(pts)
    for coll in ax.collections:
        offs = np.asarray(coll.get_offsets(), dtype=float)
        if len(offs):
            out.append(coll.get_offset_transform().transform(offs))
    return np.concatenate(out) if out else np.empty((0, 2))


def _inside(bb, pts: np.ndarray) -> np.ndarray:
    return (pts[:, 0] > bb.x0) & (pts[:, 0] < bb.x1) & (pts[:, 1] > bb.y0) & (pts[:, 1] < bb.y1)


def _tick_labels(ax) -> list:
    """The tick labels drawn: those whose tick lies within the axis's view limits."""
    (x0, x1), (y0, y1) = sorted(ax.get_xlim()), sorted(ax.get_ylim())
    out = [t for t in ax.get_xticklabels(which="both") if x0 <= t.get_position()[0] <= x1]
    return out + [t for t in ax.get_yticklabels(which="both") if y0 <= t.get_position()[1] <= y1]


def _check_layout(fig) -> int:
    """No legend on a line or point of its axes, none on a title, label or tick label; every text inside the
    figure. Returns how many legends were checked."""
    fig.canvas.draw()
    r = fig.canvas.get_renderer()
    page = fig.bbox
    texts = [t for ax in fig.axes for t in (ax.title, ax.xaxis.label, ax.yaxis.label, *_tick_labels(ax))
             if t.get_visible() and t.get_text()]
    for t in texts:
        bb = t.get_window_extent(r)
        assert page.x0 - 1 <= bb.x0 and bb.x1 <= page.x1 + 1 and page.y0 - 1 <= bb.y0 and bb.y1 <= page.y1 + 1, \
            f"cut off: {t.get_text()!r}"
    legends = 0
    for ax in fig.axes:
        leg = ax.get_legend()
        if leg is None:
            continue
        legends += 1
        bb = leg.get_window_extent(r)
        assert page.x0 <= bb.x0 and bb.x1 <= page.x1 and page.y0 <= bb.y0 and bb.y1 <= page.y1, "legend cut off"
        for other in fig.axes:  # the axes sharing the legend's figure: lines of a panel below count too
            pts = _display_points(other)
            assert not _inside(bb, pts).any(), f"legend on the data of {other.get_title()!r}"
        for t in texts:
            assert not bb.overlaps(t.get_window_extent(r)), f"legend on {t.get_text()!r}"
    return legends


@pytest.mark.parametrize("name", ["iris", "deep_relu"])  # iris: validation curves and the best epoch's line
def test_plot_legends_sit_off_the_data_and_nothing_is_cut_off(runs, name):
    pytest.importorskip("matplotlib")
    from bpcli.plots.plot import PLOTS, context
    ctx = context(load_run(runs[name]))
    drawn = [p for p in PLOTS if p.skip(ctx) is None]
    assert len(drawn) == (4 if name == "iris" else 5)  # iris has 4 inputs: no boundary
    legends = 0
    for p in drawn:
        fig, _ = p.build(ctx)
        legends += _check_layout(fig)
    assert legends == len(drawn)  # every plot has its legend, and each was checked


def _curve_figure(x, y, label="curve"):
    from bpcli.plots.figure import labels, new_figure
    fig, (ax,) = new_figure(6.4, 4.0)
    ax.plot(x, y, label=label)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    labels(ax, "t", "x", "y")
    return fig, ax


def test_a_legend_goes_to_a_free_corner_even_when_no_vertex_is_in_the_busy_one():
    pytest.importorskip("matplotlib")
    from bpcli.plots.figure import legend_in_free_corner
    fig, ax = _curve_figure([0.0, 1.0], [0.0, 1.0])  # one segment through the upper right corner
    legend_in_free_corner(fig, ax)
    assert 1 == _check_layout(fig)
    axes_box = ax.get_window_extent()
    assert axes_box.contains(*ax.get_legend().get_window_extent().p0)  # still inside: a free corner was found


def test_a_legend_moves_outside_when_every_corner_is_taken():
    pytest.importorskip("matplotlib")
    from bpcli.plots.figure import legend_in_free_corner
    fig, ax = _curve_figure([0.0, 1.0, 0.5, 0.0, 1.0], [0.0, 1.0, 0.5, 1.0, 0.0])  # an X through all corners
    w = fig.get_size_inches()[0]
    legend_in_free_corner(fig, ax)
    assert 1 == _check_layout(fig)
    assert ax.get_legend().get_window_extent().x0 > ax.get_window_extent().x1  # right of the axes
    assert fig.get_size_inches()[0] > w  # the figure grew; the axes kept their width
    assert 4.9 < ax.get_window_extent().width / fig.dpi < 5.5


# --- plot: --out, progress, --json quiet ------------------------------------------------------------


def test_plot_out_creates_a_new_nested_folder_and_reports_progress_on_stderr(runs, tmp_path):
    pytest.importorskip("matplotlib")
    out = tmp_path / "new" / "folder"
    res = runner.invoke(app, ["plot", str(runs["seed"]), "--out", str(out), "--only", "loss,boundary", "--dpi", "30"])
    assert 0 == res.exit_code, res.output
    assert {"loss.png", "boundary.png"} == {p.name for p in out.iterdir()}
    steps = [ln for ln in res.stderr.splitlines() if ln.startswith("plot: ")]
    assert 3 == len(steps)  # reading, then one line per plot before it is drawn
    assert re.fullmatch(r"plot: drawing boundary\.png \(2 of 2\)", steps[-1])
    assert "plot: " not in res.stdout
    quiet = runner.invoke(app, ["plot", str(runs["seed"]), "--out", str(tmp_path / "q"), "--only", "loss",
                                "--format", "png", "--dpi", "30", "--json"])
    assert 0 == quiet.exit_code
    assert "" == quiet.stderr
    assert [str(tmp_path / "q" / "loss.png")] == json.loads(quiet.stdout)["plots"][0]["files"]


def test_plot_out_that_is_a_file_is_bad_input(runs, tmp_path):
    pytest.importorskip("matplotlib")
    (tmp_path / "f").write_text("x")
    for out in (tmp_path / "f", tmp_path / "f" / "sub"):
        res = runner.invoke(app, ["plot", str(runs["seed"]), "--out", str(out), "--only", "loss"])
        assert 2 == res.exit_code
        assert 1 == len([ln for ln in res.stderr.splitlines() if ln.startswith("error:")])
    assert "x" == (tmp_path / "f").read_text()


# --- show --dot: nodes in index order, titles clear of the edges ---------------------------------------

RANK = re.compile(r"^  \{ rank=same; (.*) \[style=invis\]; \}$")


def _columns(text: str) -> list[list[str]]:
    """The rank=same chains of the DOT text, each as its node ids in chain order (quotes removed)."""
    return [[n.strip('"') for n in m.group(1).split(" -> ")] for m in map(RANK.match, text.splitlines()) if m]


def _declared(text: str) -> list[str]:
    """Node ids in the order the text declares them."""
    return [m.group(1) for m in map(re.compile(r'^  "([^"]+)" \[label=').match, text.splitlines()) if m]


@pytest.mark.parametrize("name", ["seed", "iris", "deep_relu"])
def test_dot_declares_and_chains_every_column_in_index_order(runs, name):
    from bpcli.analysis.dot import network_dot
    r = load_run(runs[name])
    text = network_dot(r.net, name)
    expected = [["title inputs", *r.net.input_names]]
    for la in r.net.layers:
        nodes = [la.letter] if la.n_out == 1 else [f"{la.letter}{j + 1}" for j in range(la.n_out)]
        expected.append([f"title {la.letter}", *nodes])
    assert expected == _columns(text)
    assert [n for col in expected for n in col] == _declared(text)
    assert "cluster" not in text  # a cluster's label is where dot routes edges; titles are nodes


def _plain_layout(text: str):
    """Graphviz's own layout (dot -Tplain): node centres and sizes, and each edge's spline control points."""
    import shlex
    import subprocess
    done = subprocess.run(["dot", "-Tplain"], input=text.encode(), capture_output=True, check=True)
    nodes, edges = {}, []
    for ln in done.stdout.decode().splitlines():
        f = shlex.split(ln)
        if f[0] == "node":
            nodes[f[1]] = tuple(map(float, f[2:6]))  # x, y (up), width, height
        elif f[0] == "edge" and f[-2] == "solid":  # the weight edges; the invisible chain is style invis
            n = int(f[3])
            edges.append(np.array(f[4:4 + 2 * n], dtype=float).reshape(n, 2))
    return nodes, edges


def _bezier_points(ctrl: np.ndarray) -> np.ndarray:
    """Points along a piecewise cubic Bezier (control points 0..3, 3..6, ...)."""
    t = np.linspace(0.0, 1.0, 25)[:, None]
    out = []
    for i in range(0, len(ctrl) - 3, 3):
        p0, p1, p2, p3 = ctrl[i:i + 4]
        out.append((1 - t) ** 3 * p0 + 3 * (1 - t) ** 2 * t * p1 + 3 * (1 - t) * t ** 2 * p2 + t ** 3 * p3)
    return np.concatenate(out)


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz dot is not installed")
@pytest.mark.parametrize("name, sample", [("seed", None), ("seed", 2), ("iris", None), ("deep_relu", None)])
def test_graphviz_draws_the_nodes_top_down_in_order_and_no_edge_crosses_a_title(runs, name, sample):
    from bpcli.analysis.dot import network_dot
    from bpcli.analysis.show import trace_sample
    r = load_run(runs[name])
    tr = None if sample is None else trace_sample(r.net, r.prepared.train.x, r.prepared.train.y, sample)
    text = network_dot(r.net, name, tr)
    nodes, edges = _plain_layout(text)
    assert len(r.net.layers) + 1 == len(_columns(text))
    for col in _columns(text):
        xs = [nodes[n][0] for n in col]
        ys = [nodes[n][1] for n in col]
        assert max(xs) - min(xs) < 1e-6, col  # one column
        assert ys == sorted(ys, reverse=True), col  # title on top, then index order downwards
    lefts = [nodes[col[0]][0] for col in _columns(text)]
    assert lefts == sorted(lefts)  # inputs, A, B, ... from left to right
    titles = [n for n in nodes if n.startswith("title ")]
    pts = np.concatenate([_bezier_points(e) for e in edges])
    for t in titles:
        x, y, w, h = nodes[t]
        inside = (abs(pts[:, 0] - x) < w / 2) & (abs(pts[:, 1] - y) < h / 2)
        assert not inside.any(), f"an edge crosses {t}"


@pytest.mark.parametrize("width", [80, 120])
def test_plot_view_lists_the_files_in_lines_that_fit_and_end_cleanly(width):
    import io

    from rich.console import Console

    from bpcli.plots.plot import PlotFile, PlotResult
    from bpcli.render.plot import plot_view
    kinds = ("loss", "metric", "gradients", "dynamics")
    titles = ("loss per epoch (log scale)", "accuracy per epoch", "gradient norm per layer",
              "update speed and saturated/dead units per layer")
    files = tuple(PlotFile(k, f"iris: {t}", (f"r/{k}.png", f"r/{k}.svg")) for k, t in zip(kinds, titles))
    res = PlotResult("iris", "r", "r", files, ("decision boundary: needs 2 input features, this network has 4",))
    buf = io.StringIO()
    Console(file=buf, width=width).print(plot_view(res))
    lines = buf.getvalue().splitlines()
    assert 1 + 4 + 1 == len(lines)  # heading, one line per plot, the skip
    assert all(len(ln) <= width and ln == ln.rstrip() for ln in lines)
    assert "  dynamics.png, dynamics.svg    update speed and saturated/dead units per layer" == lines[4]
