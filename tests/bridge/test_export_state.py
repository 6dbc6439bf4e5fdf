"""export --optimizer-state and --epoch: PyTorch loads the model and its optimiser and takes bpcli's next step."""

from __future__ import annotations

import csv
import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from bpcli.cli.app import app
from bpcli.config.loader import builtin_config_dir
from bpcli.runs.store import checkpoint_dir

torch = pytest.importorskip("torch")
runner = CliRunner()
IRIS = builtin_config_dir() / "iris.csv"

CONFIGS = {
    # softmax + cross_entropy, weight decay on the weights only (the biases are a group of their own)
    "adam_ce": ("[{size: 5, activation: tanh}, {size: 3, activation: softmax}]", "cross_entropy",
                "{optimizer: adam, lr: 0.05, weight_decay: 0.01}"),
    # bpcli's squared error is 1/2 sum_k (y - y')^2, averaged over the samples: the exported cost is the same
    "adam_se": ("[{size: 4, activation: sigmoid}, {size: 3, activation: sigmoid}]", "squared_error",
                "{optimizer: adam, lr: 0.1, beta1: 0.8, beta2: 0.99, epsilon: 1e-6}"),
    "momentum": ("[{size: 4, activation: tanh}, {size: 3, activation: softmax}]", "cross_entropy",
                 "{optimizer: momentum, lr: 0.1, momentum: 0.7, weight_decay: 0.001}"),
    "nesterov": ("[{size: 4, activation: tanh}, {size: 3, activation: softmax}]", "cross_entropy",
                 "{optimizer: nesterov, lr: 0.1, momentum: 0.8, weight_decay: 0.002}"),
    "rmsprop": ("[{size: 4, activation: tanh}, {size: 3, activation: softmax}]", "cross_entropy",
                "{optimizer: rmsprop, lr: 0.01, alpha: 0.9, epsilon: 1e-7, weight_decay: 0.003}"),
    "adagrad": ("[{size: 4, activation: sigmoid}, {size: 3, activation: sigmoid}]", "squared_error",
                "{optimizer: adagrad, lr: 0.05, weight_decay: 0.001}"),
    # AdamW's decay is decoupled and on the weights only: the biases' group has weight_decay 0
    "adamw": ("[{size: 5, activation: tanh}, {size: 3, activation: softmax}]", "cross_entropy",
              "{optimizer: adamw, lr: 0.05, weight_decay: 0.1}"),
}


def train(tmp_path: Path, which: str, epochs: int) -> Path:
    layers, loss, opt = CONFIGS[which]
    cfg = tmp_path / f"{which}.yaml"
    cfg.write_text(f"name: {which}\nlayers: {layers}\nloss: {loss}\ninit: {{seed: 3}}\n"
                   f"data: {{csv: {IRIS}, target: species, standardize: true}}\n"
                   f"train: {{epochs: {epochs}, {opt[1:-1]}}}\n")
    out = tmp_path / f"{which}-{epochs}"
    result = runner.invoke(app, ["train", str(cfg), "-q", "--out", str(out)])
    assert result.exit_code == 0, result.output
    return out


def export(run: Path, out: Path, *extra: str):
    result = runner.invoke(app, ["export", str(run), "--out", str(out), "--optimizer-state", *extra])
    assert result.exit_code == 0, result.output
    spec = importlib.util.spec_from_file_location(f"model_{out.name}", out / "model.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def iris() -> tuple:
    with open(IRIS, newline="") as fh:
        rows = list(csv.DictReader(fh))
    x = np.array([[float(r[c]) for c in ("sepal_length", "sepal_width", "petal_length", "petal_width")] for r in rows])
    species = sorted({r["species"] for r in rows})
    y = np.eye(3)[[species.index(r["species"]) for r in rows]]
    return torch.tensor(x, dtype=torch.float64), torch.tensor(y, dtype=torch.float64)


def one_torch_step(module) -> dict[str, np.ndarray]:
    net = module.load()
    opt = module.load_optimizer(net)
    x, y = iris()
    opt.zero_grad()
    module.cost(net, x, y).backward()  # autograd's gradients of bpcli's cost
    opt.step()
    return {k: v.detach().numpy() for k, v in net.state_dict().items()}


def bpcli_weights(run: Path) -> dict[str, np.ndarray]:
    with np.load(checkpoint_dir(run) / "weights.npz", allow_pickle=False) as npz:
        return {k.replace(".W", ".weight").replace(".b", ".bias"): npz[k] for k in npz.files}


@pytest.mark.parametrize("which", sorted(CONFIGS))
def test_torch_continues_five_epochs_to_bpcli_sixth(tmp_path, which):
    five, six = train(tmp_path, which, 5), train(tmp_path, which, 6)
    after = one_torch_step(export(five, tmp_path / "ex5"))
    expected = bpcli_weights(six)
    assert expected.keys() <= after.keys()
    for k, w in expected.items():
        np.testing.assert_allclose(after[k], w, rtol=0, atol=1e-12, err_msg=k)
    before = bpcli_weights(five)
    assert max(float(np.abs(expected[k] - before[k]).max()) for k in expected) > 1e-3  # the step did move them


def test_epoch_n_exports_that_snapshot_with_its_state(tmp_path):
    six = train(tmp_path, "adam_ce", 6)
    after = one_torch_step(export(six, tmp_path / "ex", "--epoch", "5"))
    doc = json.loads(runner.invoke(app, ["export", str(six), "--epoch", "5", "--out", str(tmp_path / "ex2"),
                                         "--json"]).stdout)
    assert doc["source"] == f"{six}, epoch 5"
    for k, w in bpcli_weights(six).items():
        np.testing.assert_allclose(after[k], w, rtol=0, atol=1e-12, err_msg=k)


def test_state_has_the_layout_of_torch_adam_state_dict(tmp_path):
    module = export(train(tmp_path, "adam_ce", 2), tmp_path / "ex")
    net = module.load()
    ours = module.load_optimizer(net).state_dict()
    own = torch.optim.Adam(net.parameters(), lr=0.05)  # torch's own, after one step: the keys it writes
    net(iris()[0]).sum().backward()
    own.step()
    theirs = own.state_dict()
    assert set(ours["state"][0]) == set(theirs["state"][0]) == {"step", "exp_avg", "exp_avg_sq"}
    assert {"lr", "betas", "eps", "weight_decay"} <= set(ours["param_groups"][0]) & set(theirs["param_groups"][0])
    assert float(ours["state"][0]["step"]) == 2.0
    meta = json.loads((tmp_path / "ex" / "optimizer.json").read_text())
    assert [g["weight_decay"] for g in meta["param_groups"]] == [0.01, 0.0]
    assert meta["param_groups"][0]["param_names"] == ["A.weight", "B.weight"]


def test_state_of_best_weights_without_epoch_is_refused(tmp_path):
    cfg = tmp_path / "es.yaml"
    cfg.write_text(f"layers: [{{size: 3, activation: tanh}}, {{size: 3, activation: softmax}}]\nloss: cross_entropy\n"
                   f"data: {{csv: {IRIS}, target: species, validation: 0.3, standardize: true}}\n"
                   "train: {optimizer: adam, lr: 0.5, epochs: 200, early_stopping: {patience: 2}}\n")
    assert runner.invoke(app, ["train", str(cfg), "-q", "--out", str(tmp_path / "r")]).exit_code == 0
    result = runner.invoke(app, ["export", str(tmp_path / "r"), "--out", str(tmp_path / "ex"), "--optimizer-state"])
    assert result.exit_code == 2
    assert "--optimizer-state: the saved weights are epoch" in result.stderr
    assert not (tmp_path / "ex").exists()
