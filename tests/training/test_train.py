"""bpcli train, show and init end to end: run folders, reproducibility, every shipped config, divergence."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from bpcli import __version__
from bpcli.cli.app import app
from bpcli.config.loader import builtin_config_dir, load_config
from bpcli.runs.store import checkpoint_dir
from bpcli.yamlsrc import read_yaml

runner = CliRunner()
CONFIGS = sorted(builtin_config_dir().glob("*.yaml"))


def weights(run_dir: Path) -> dict[str, np.ndarray]:
    with np.load(checkpoint_dir(run_dir) / "weights.npz", allow_pickle=False) as npz:
        return {k: npz[k] for k in npz.files}


def test_default_train_writes_a_complete_run_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["train", "--epochs", "50"])
    assert result.exit_code == 0, result.output
    run = tmp_path / "runs" / "seed"
    assert sorted(p.name for p in run.iterdir()) == ["epoch-50", "history.csv", "run.json", "snapshots"]
    ck = checkpoint_dir(run)
    assert ck == run / "epoch-50"
    for name in ("weights.npz", "state.npz", "config.yaml", "history-sample.json", "metrics.json"):
        assert (ck / name).is_file(), name
    assert set(weights(run)) == {"A.W", "A.b", "B.W", "B.b"}
    history = json.loads((ck / "history-sample.json").read_text())
    assert [h["epoch"] for h in history] == list(range(1, 51))
    assert len(history[0]["grad_norm"]) == 2  # one gradient norm per layer
    rows = (run / "history.csv").read_text().splitlines()
    assert [r.split(",")[0] for r in rows] == ["epoch"] + [str(e) for e in range(1, 51)]
    metrics = json.loads((ck / "metrics.json").read_text())
    assert metrics["status"] == "completed" and metrics["epochs"] == 50
    assert "x1, x2 -> A1, A2 -> B" in result.stdout  # the network is shown first
    # a second run never overwrites the first
    assert runner.invoke(app, ["train", "--epochs", "5", "-q"]).exit_code == 0
    assert (checkpoint_dir(tmp_path / "runs" / "seed-2") / "weights.npz").is_file()
    assert json.loads((ck / "metrics.json").read_text())["epochs"] == 50


def test_default_seed_network_learns_xor(tmp_path):
    result = runner.invoke(app, ["train", "--json", "--out", str(tmp_path / "r")])
    doc = json.loads(result.stdout)
    assert result.exit_code == 0
    assert doc["final"]["metric"] == "accuracy" and doc["final"]["train_metric"] == 1.0
    assert doc["history"]["last"]["loss"] < doc["history"]["first"]["loss"] / 10
    assert doc["history"]["file"] == f"{tmp_path / 'r'}/history.csv"  # the whole history stays there


def test_same_config_and_seed_give_bit_for_bit_the_same_weights(tmp_path):
    cfg = str(builtin_config_dir() / "iris.yaml")
    for name in ("a", "b"):
        assert runner.invoke(app, ["train", cfg, "-q", "--epochs", "20", "--out", str(tmp_path / name)]).exit_code == 0
    wa, wb = weights(tmp_path / "a"), weights(tmp_path / "b")
    assert all(np.array_equal(wa[k], wb[k]) for k in wa)
    assert runner.invoke(app, ["train", cfg, "-q", "--epochs", "20", "--seed", "5", "--out", str(tmp_path / "c")]).exit_code == 0
    assert not np.array_equal(weights(tmp_path / "c")["A.W"], wa["A.W"])


@pytest.mark.parametrize("config", CONFIGS, ids=[c.stem for c in CONFIGS])
def test_every_shipped_config_loads_trains_and_its_loss_goes_down(config, tmp_path):
    cfg, data = load_config(config)
    epochs = min(cfg.train.epochs, 30)
    result = runner.invoke(app, ["train", str(config), "--json", "--epochs", str(epochs), "--out", str(tmp_path / "r")])
    assert result.exit_code == 0, result.stderr
    history = json.loads(result.stdout)["history"]
    assert history["last"]["loss"] < history["first"]["loss"]


def test_diverging_run_stops_with_the_epoch_and_keeps_finite_weights(tmp_path):
    cfg = tmp_path / "div.yaml"
    cfg.write_text("layers: [{size: 8, activation: relu}, {size: 1, activation: identity}]\n"
                   "init: {scheme: he_normal}\ndata: {generator: sine, samples: 50}\n"
                   "train: {lr: 1000, epochs: 500}\n")
    result = runner.invoke(app, ["train", str(cfg), "-q", "--out", str(tmp_path / "r")])
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    assert "at epoch" in result.stderr and "smaller learning rate" in result.stderr
    w = weights(tmp_path / "r")
    assert all(np.all(np.isfinite(a)) for a in w.values())
    assert json.loads((checkpoint_dir(tmp_path / "r") / "metrics.json").read_text())["status"] == "diverged"


def test_out_refuses_to_overwrite_unless_asked(tmp_path):
    out = tmp_path / "r"
    assert runner.invoke(app, ["train", "-q", "--epochs", "2", "--out", str(out)]).exit_code == 0
    again = runner.invoke(app, ["train", "-q", "--epochs", "2", "--out", str(out)])
    assert again.exit_code == 2 and "already exists" in again.stderr
    assert runner.invoke(app, ["train", "-q", "--epochs", "3", "--out", str(out), "--overwrite"]).exit_code == 0
    assert json.loads((checkpoint_dir(out) / "metrics.json").read_text())["epochs"] == 3


def test_resolved_config_in_the_run_folder_reloads_to_the_same_network(tmp_path):
    out = tmp_path / "r"
    cfg = str(builtin_config_dir() / "iris.yaml")
    assert runner.invoke(app, ["train", cfg, "-q", "--epochs", "3", "--out", str(out)]).exit_code == 0
    saved = read_yaml((checkpoint_dir(out) / "config.yaml").read_text(), "config.yaml")[0]
    assert Path(saved["data"]["csv"]).is_absolute()
    assert (checkpoint_dir(out) / "scaling.json").is_file()
    result = runner.invoke(app, ["show", str(out), "--json"])
    assert result.exit_code == 0
    shown = json.loads(result.stdout)
    w = weights(out)
    assert shown["parameters"][0]["name"] == "w11"
    assert shown["parameters"][0]["value"] == w["A.W"][0, 0]


def test_show_lists_every_parameter_name():
    result = runner.invoke(app, ["show", "--json"])
    doc = json.loads(result.stdout)
    assert [p["name"] for p in doc["parameters"]] == ["w11", "w12", "w21", "w22", "b_A1", "b_A2", "v1", "v2", "b_B"]
    assert doc["diagram"].startswith("x1, x2 -> A1, A2 -> B")


@pytest.mark.parametrize("width", [80, 120])
def test_show_fits_the_terminal(width):
    result = runner.invoke(app, ["show"], env={"COLUMNS": str(width)})
    assert result.exit_code == 0
    assert max(len(line) for line in result.stdout.splitlines()) <= width
    assert "b_A1" in result.stdout and "v2" in result.stdout


def test_names_of_wide_layers_use_underscores():
    from bpcli.nn.model import build
    cfg, _ = load_config(builtin_config_dir() / "sine.yaml")
    net = build(cfg)
    assert "v16" in net.param_names() and net.resolve("v[16]").from_node == 15
    assert "w10_1" in net.param_names() and net.resolve("w10_1").to_node == 9


def test_init_writes_a_config_that_trains(tmp_path):
    target = tmp_path / "mine.yaml"
    result = runner.invoke(app, ["init", str(target), "--example", "iris"])
    assert result.exit_code == 0
    assert (tmp_path / "iris.csv").is_file()  # the data file travels with the example
    cfg, data = load_config(target)
    assert data.m == 150 and cfg.name == "iris"
    assert runner.invoke(app, ["init", str(target)]).exit_code == 2  # never overwrites silently
    listing = runner.invoke(app, ["init", "--list"])
    assert "seed" in listing.stdout and "iris" in listing.stdout
    bad = runner.invoke(app, ["init", str(tmp_path / "x.yaml"), "--example", "iriss"])
    assert bad.exit_code == 2 and "did you mean 'iris'" in bad.stderr


def test_version_and_help():
    assert runner.invoke(app, ["--version"]).stdout.strip() == f"bpcli {__version__}"
    for cmd in (["--help"], ["train", "--help"], ["show", "--help"], ["init", "--help"]):
        result = runner.invoke(app, cmd)
        assert result.exit_code == 0 and "Usage" in result.stdout


def test_history_r2_is_the_same_number_as_the_final_r2(tmp_path):
    """Two outputs, a learning rate too small to move the weights: the last epoch's R^2 (accumulated batch by
    batch) equals r2_score at the final weights, computed independently from the predictions."""
    from bpcli.nn.model import build
    from bpcli.nn.engine import forward
    from bpcli.runs.store import load_run

    cfg = tmp_path / "two.yaml"
    cfg.write_text("inputs: 2\nlayers: [{size: 3, activation: tanh}, {size: 2, activation: identity}]\n"
                   "data: {x: [[0, 1], [1, 0], [1, 1], [0, 0], [2, 1]], y: [[1, 0], [0, 3], [2, 1], [0, 0], [5, 1]]}\n"
                   "train: {lr: 1.0e-300, epochs: 2}\n")
    result = runner.invoke(app, ["train", str(cfg), "--json", "-q", "--out", str(tmp_path / "r")])
    doc = json.loads(result.stdout)
    run = load_run(tmp_path / "r")
    y = run.prepared.train.y
    y_hat = forward(run.net, run.prepared.train.x)[0]
    independent = 1.0 - np.sum((y - y_hat) ** 2) / np.sum((y - y.mean(axis=0)) ** 2)
    assert doc["history"]["last"]["metric"] == pytest.approx(independent, rel=1e-12)
    assert doc["final"]["train_metric"] == pytest.approx(independent, rel=1e-12)


def test_a_diverged_momentum_run_folder_still_loads(tmp_path):
    """Divergence rolls back the optimiser buffers and step with the weights, so the folder stays usable."""
    cfg = tmp_path / "div.yaml"
    cfg.write_text("layers: [{size: 8, activation: tanh}, {size: 1, activation: identity}]\n"
                   "data: {generator: sine, samples: 50}\ntrain: {optimizer: momentum, lr: 100, epochs: 300}\n")
    out = tmp_path / "r"
    assert runner.invoke(app, ["train", str(cfg), "-q", "--out", str(out)]).exit_code == 1
    shown = runner.invoke(app, ["show", str(out), "--json"])
    assert shown.exit_code == 0, shown.stderr
    with np.load(checkpoint_dir(out) / "state.npz", allow_pickle=False) as npz:
        assert all(np.all(np.isfinite(npz[k])) for k in npz.files)
