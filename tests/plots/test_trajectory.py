"""Watching a run learn: the weights plot, the histograms and the animation, from a run's weight snapshots."""

from __future__ import annotations

import dataclasses
import xml.etree.ElementTree as ET
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from bpcli.plots.animate import Diagram, animate_run, check_out
from bpcli.plots.animate_svg import frame_count
from bpcli.config.loader import builtin_config_dir, load_config
from bpcli.errors import BpcliError, NameError_
from bpcli.plots.weights import histograms_figure, pick_parameters, weights_figure
from bpcli.runs.store import load_run
from bpcli.runs.session import run_training
from bpcli.runs.snapshots import trajectory
from bpcli.analysis.trajectory import along, frame_indices, series

EPOCHS = 30


@pytest.fixture(scope="module")
def seed_run(tmp_path_factory):
    """The seed network trained EPOCHS epochs into a run folder, which keeps every epoch's weights."""
    cfg, ds = load_config(builtin_config_dir() / "seed.yaml")
    cfg = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, epochs=EPOCHS))
    run = tmp_path_factory.mktemp("traj") / "runs" / "seed"
    run.parent.mkdir()
    run_training(cfg, ds, run)
    loaded = load_run(run)
    traj = trajectory(run)
    assert list(range(EPOCHS + 1)) == list(traj.epochs)
    return SimpleNamespace(run=run, net=loaded.net, cfg=loaded.cfg, prepared=loaded.prepared,
                           history=loaded.history, traj=traj)


def _seed_cost(W1, b1, W2, b2, x, y) -> float:
    """The seed's cost written out: sigmoid hidden and output layers, C = mean over samples of 1/2 (y - y')^2."""
    s = lambda z: 1.0 / (1.0 + np.exp(-z))
    y_hat = s(s(x @ W1.T + b1) @ W2.T + b2)
    return float(np.mean(0.5 * np.sum((y - y_hat) ** 2, axis=1)))


def test_frames_are_spread_evenly_with_the_first_and_last():
    assert [0, 1, 2] == frame_indices(3, 100)
    picked = frame_indices(3001, 100)
    assert 100 == len(picked)
    assert (0, 3000) == (picked[0], picked[-1])
    steps = np.diff(picked)
    assert steps.min() >= 30 and steps.max() <= 31
    assert [4] == frame_indices(5, 1)


def test_weights_plot_lines_hold_the_snapshot_values_and_finite_difference_gradients(seed_run):
    r = seed_run
    al = along(r.net, r.prepared.train, r.traj.epochs, r.traj.params)
    picked = series(r.net, ["v1", "w[1,2]", "b_A2"])
    assert [("v1", "B.W", (0, 0)), ("w12", "A.W", (0, 1)), ("b_A2", "A.b", (1,))] == picked
    fig = weights_figure(al, picked, "seed")
    values, grads = fig.axes[0].get_lines(), fig.axes[1].get_lines()
    assert ["v1", "w12", "b_A2"] == [ln.get_label() for ln in values]
    p = r.traj.params
    for line, (_, key, idx) in zip(values, picked):
        assert list(range(EPOCHS + 1)) == list(line.get_xdata())
        assert [p[key][(e,) + idx] for e in range(EPOCHS + 1)] == list(line.get_ydata())
    for e in (0, 13, EPOCHS):  # the same values as the run loaded at that epoch
        at = load_run(r.run, epoch=e).net
        assert [at.get(at.resolve(name)) for name, _, _ in picked] == [ln.get_ydata()[e] for ln in values]
    x, y, eps = r.prepared.train.x, r.prepared.train.y, 1e-6
    for line, (_, key, idx) in zip(grads, picked):
        for e in (0, 7, EPOCHS):
            arrays = {k: v[e].astype(np.float64).copy() for k, v in p.items()}
            arrays[key][idx] += eps
            up = _seed_cost(arrays["A.W"], arrays["A.b"], arrays["B.W"], arrays["B.b"], x, y)
            arrays[key][idx] -= 2 * eps
            down = _seed_cost(arrays["A.W"], arrays["A.b"], arrays["B.W"], arrays["B.b"], x, y)
            np.testing.assert_allclose(line.get_ydata()[e], (up - down) / (2 * eps), rtol=1e-6, atol=1e-11)
    # the cost each frame is drawn at is the cost at that epoch's weights
    for e in (0, EPOCHS):
        w = {k: v[e] for k, v in p.items()}
        assert al.loss[e] == pytest.approx(_seed_cost(w["A.W"], w["A.b"], w["B.W"], w["B.b"], x, y), rel=1e-12)


def test_histograms_show_each_layers_values_at_a_few_epochs(seed_run):
    r = seed_run
    al = along(r.net, r.prepared.train, r.traj.epochs, r.traj.params)
    fig = histograms_figure(al, ["A", "B"], "seed", n=3)
    shown = frame_indices(EPOCHS + 1, 3)
    a_weights = fig.axes[0]  # layer A's weights: 4 values, each a dot, one row per epoch (the earliest on top)
    rows = sorted(a_weights.get_lines(), key=lambda ln: -ln.get_ydata()[0])
    for line, e in zip(rows, shown):
        assert sorted(r.traj.params["A.W"][e].ravel()) == sorted(line.get_xdata())
    assert [str(e) for e in reversed(shown)] == [t.get_text() for t in a_weights.get_yticklabels()]
    b_grads = fig.axes[3]
    rows = sorted(b_grads.get_lines(), key=lambda ln: -ln.get_ydata()[0])
    assert sorted(al.grads["B.W"][shown[-1]].ravel()) == sorted(rows[-1].get_xdata())


def test_names_are_resolved_with_did_you_mean_and_big_layers_are_histograms_only(seed_run, rng):
    with pytest.raises(NameError_, match="did you mean 'v1'"):
        pick_parameters(seed_run.net, ["v11"], [])
    with pytest.raises(NameError_, match="unknown layer 'C'"):
        pick_parameters(seed_run.net, [], ["C"])
    picked, letters, notes = pick_parameters(seed_run.net, ["v1"], ["a"])
    assert ["v1", "w11", "w12", "w21", "w22", "b_A1", "b_A2"] == [p[0] for p in picked]
    assert (["A", "B"], []) == (letters, notes)
    from tests.conftest import random_net
    big = random_net(rng, 3, [30, 1])
    picked, letters, notes = pick_parameters(big, [], ["A"])
    assert ([], ["A"]) == (picked, letters)
    assert "120 parameters" in notes[0]


def test_edge_width_follows_the_weight_and_colour_the_gradients_sign(seed_run):
    r = seed_run
    al = along(r.net, r.prepared.train, r.traj.epochs, r.traj.params, [0, 10, EPOCHS])
    d = Diagram(r.net, al, r.history, "seed", 40)
    w_all = np.concatenate([r.traj.params["A.W"][[0, 10, EPOCHS]].reshape(3, -1),
                            r.traj.params["B.W"][[0, 10, EPOCHS]].reshape(3, -1)], axis=1)
    for i in range(3):
        widths, colours, dashes = d.style(i)
        order = [("A.W", 0, 0), ("A.W", 0, 1), ("A.W", 1, 0), ("A.W", 1, 1), ("B.W", 0, 0), ("B.W", 0, 1)]
        assert order == d.keys
        # wider for a larger |w|: the same affine map of |w| in every frame, from a thin line up
        a = np.abs(w_all[i])
        assert list(np.argsort(a)) == list(np.argsort(widths))
        slope, intercept = np.polyfit(np.abs(w_all).ravel(), np.concatenate([d.style(f)[0] for f in range(3)]), 1)
        np.testing.assert_allclose(widths, intercept + slope * a, rtol=1e-9)
        assert intercept > 0 and slope > 0
        assert ["--" if v < 0 else "-" for v in w_all[i]] == dashes
        for (key, j, k), c in zip(d.keys, colours):
            g = al.grads[key][i, j, k]
            assert (c[0] > c[2]) == (g > 0)  # red for a positive gradient, blue for a negative one


def test_a_short_animation_is_a_gif_of_that_many_frames_or_an_svg(seed_run, tmp_path):
    from PIL import Image

    r = seed_run
    ticks = []
    res = animate_run(r.net, "seed", r.prepared.train, r.history, r.traj, tmp_path / "learn.gif", frames=5,
                      dpi=30, progress=lambda done, total: ticks.append((done, total)))
    data = (tmp_path / "learn.gif").read_bytes()
    assert data[:6] in (b"GIF89a", b"GIF87a")
    assert (5, (0, 8, 15, 22, 30)) == (res.frames, res.epochs)
    assert [(i, 5) for i in range(0, 6)] == ticks
    with Image.open(tmp_path / "learn.gif") as im:
        assert 5 == im.n_frames
        im.seek(0)
        first = np.asarray(im.convert("RGB")).copy()
        im.seek(4)
        last = np.asarray(im.convert("RGB"))
    assert first.shape == last.shape and np.any(first != last)
    res = animate_run(r.net, "seed", r.prepared.train, r.history, r.traj, tmp_path / "learn.svg", frames=4)
    svg = (tmp_path / "learn.svg").read_bytes()
    ET.fromstring(svg)
    assert 4 == res.frames == frame_count(svg)
    assert [] == [p.name for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary file left
    import os
    umask = os.umask(0)
    os.umask(umask)
    assert {0o666 & ~umask} == {(tmp_path / f).stat().st_mode & 0o777 for f in ("learn.gif", "learn.svg")}


def test_an_unavailable_writer_or_format_is_one_clear_error(tmp_path, monkeypatch):
    from matplotlib import animation
    monkeypatch.setattr(animation.writers, "is_available", lambda name: False)
    with pytest.raises(BpcliError, match="needs ffmpeg"):
        check_out(tmp_path / "learn.mp4")
    with pytest.raises(BpcliError, match=r"\.gif, \.svg or \.mp4"):
        check_out(tmp_path / "learn.avi")
    with pytest.raises(BpcliError, match="does not exist"):
        check_out(tmp_path / "nowhere" / "learn.gif")


# --- the commands ------------------------------------------------------------------------------------

def _cli(*args: str):
    from typer.testing import CliRunner

    from bpcli.cli.app import app
    return CliRunner().invoke(app, list(args))


def test_animate_command_writes_the_gif_it_reports_and_latest_names_the_newest_run(seed_run, tmp_path,
                                                                                    monkeypatch):
    import json

    from PIL import Image
    monkeypatch.chdir(seed_run.run.parent.parent)  # runs/seed is the newest (the only) run in runs/
    out = _cli("animate", "latest", "--out", str(tmp_path / "a.gif"), "--frames", "3", "--dpi", "20", "--json")
    assert 0 == out.exit_code, out.output
    doc = json.loads(out.stdout)
    assert (3, [0, 15, 30], EPOCHS + 1) == (doc["frames"], doc["epochs"], doc["snapshots"])
    assert str(seed_run.run.name) == Path(doc["run_dir"]).name
    with Image.open(tmp_path / "a.gif") as im:
        assert 3 == im.n_frames
    assert (tmp_path / "a.gif").stat().st_size == doc["bytes"] > 0
    out = _cli("compare", "latest", "runs/seed", "--json")
    assert 0 == out.exit_code, out.output
    assert ["the configs are identical", "the same run folder is given more than once (1, 2)"] == json.loads(
        out.stdout)["notes"]


def test_plot_weights_command_draws_both_pictures_and_names_bad_input(seed_run, tmp_path):
    import json
    out = _cli("plot", str(seed_run.run), "--weights", "v1,w11", "--format", "png", "--dpi", "30", "--out",
               str(tmp_path), "--json")
    assert 0 == out.exit_code, out.output
    doc = json.loads(out.stdout)
    assert [("weights", [str(tmp_path / "weights.png")]), ("histograms", [str(tmp_path / "histograms.png")])] == [
        (p["kind"], p["files"]) for p in doc["plots"]]
    assert (tmp_path / "weights.png").read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    bad = _cli("plot", str(seed_run.run), "--weights", "v1,w13")
    assert 2 == bad.exit_code
    assert "--weight: unknown parameter 'w13' (did you mean" in bad.stderr
    bad = _cli("plot", str(seed_run.run), "--layer", "Q")
    assert 2 == bad.exit_code and "--layer: unknown layer 'Q'" in bad.stderr


def test_a_run_without_snapshots_or_ffmpeg_is_one_line(tmp_path, monkeypatch):
    cfg, ds = load_config(builtin_config_dir() / "seed.yaml")
    cfg = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, epochs=3, snapshots=False))
    run_training(cfg, ds, tmp_path / "bare")
    for args in (("animate", str(tmp_path / "bare")), ("plot", str(tmp_path / "bare"), "--weights", "v1")):
        out = _cli(*args)
        assert 2 == out.exit_code
        lines = [ln for ln in out.stderr.strip().splitlines() if not ln.startswith("plot: ")]  # progress lines
        assert 1 == len(lines) and "keeps no weight snapshots (train.snapshots: off)" in lines[0]
        assert "--epoch" not in lines[0]  # not an option the user gave
    from matplotlib import animation
    monkeypatch.setattr(animation.writers, "is_available", lambda name: False)
    out = _cli("animate", str(tmp_path / "bare"), "--out", str(tmp_path / "learn.mp4"))
    assert 2 == out.exit_code and "needs ffmpeg" in out.stderr and 1 == len(out.stderr.strip().splitlines())


def test_an_mp4_holds_every_frame_where_ffmpeg_is_installed(seed_run, tmp_path):
    import shutil
    import subprocess
    if shutil.which("ffmpeg") is None or shutil.which("ffprobe") is None:
        pytest.skip("ffmpeg is not installed")
    r = seed_run
    animate_run(r.net, "seed", r.prepared.train, r.history, r.traj, tmp_path / "learn.mp4", frames=6, dpi=25)
    data = (tmp_path / "learn.mp4").read_bytes()
    assert b"ftyp" == data[4:8]
    counted = subprocess.run(["ffprobe", "-v", "error", "-count_frames", "-select_streams", "v:0", "-show_entries",
                              "stream=nb_read_frames", "-of", "csv=p=0", str(tmp_path / "learn.mp4")],
                             capture_output=True, text=True, check=True).stdout.strip()
    assert "6" == counted


def test_the_pictures_keep_legends_off_the_data_and_nothing_is_cut_off(seed_run):
    from tests.plots.test_pictures import _check_layout  # plot's own layout check

    r = seed_run
    al = along(r.net, r.prepared.train, r.traj.epochs, r.traj.params)
    assert 1 == _check_layout(weights_figure(al, series(r.net, ["v1", "w11", "b_A2"]), "seed"))
    assert 0 == _check_layout(histograms_figure(al, ["A", "B"], "seed"))
    d = Diagram(r.net, along(r.net, r.prepared.train, r.traj.epochs, r.traj.params, [0, EPOCHS]), r.history,
                "seed", 80)
    for i in (0, 1):
        d.show(i)
        assert 0 == _check_layout(d.fig)
