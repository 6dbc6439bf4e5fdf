"""The newer optimisers (nesterov, rmsprop, adagrad, adamw) and Adam, pinned to torch.optim over five steps.

Both sides are independent: bpcli trains through its CLI and saves its weights; PyTorch builds the same 2-3-2
network from the same initial weights, takes its gradients with autograd and steps torch.optim with them.
Weight decay: bpcli's `weight_decay` adds wd * W to each weight's gradient (the gradient of the L2 term
wd/2 ||W||^2 of the objective) and leaves the biases alone; torch's coupled `weight_decay` (SGD, RMSprop,
Adagrad) adds the same wd * p, so the weights go in a parameter group with weight_decay=wd and the biases in one
with 0.  AdamW's decay is decoupled in both (p <- p - lr * wd * p before the Adam step), again on weights only.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import yaml
from typer.testing import CliRunner

from bpcli.cli.app import app
from bpcli.runs.store import checkpoint_dir

X = [[0.5, -1.0], [1.5, 0.25], [-0.75, 2.0], [0.1, 0.3], [-1.2, -0.4]]
Y = [[1.0, 0.0], [0.0, 1.0], [1.0, 0.0], [0.0, 1.0], [1.0, 0.0]]
W1 = [[0.3, -0.6], [0.8, 0.2], [-0.45, 0.55]]
B1 = [0.1, -0.2, 0.05]
W2 = [[0.7, -0.3, 0.25], [-0.5, 0.9, 0.4]]
B2 = [0.02, -0.04]
STEPS = 5


def config(train: dict) -> dict:
    return {
        "name": "opt", "inputs": 2,
        "layers": [{"size": 3, "activation": "tanh", "weights": W1, "biases": B1},
                   {"size": 2, "activation": "sigmoid", "weights": W2, "biases": B2}],
        "loss": "squared_error",
        "data": {"x": X, "y": Y},
        "train": {"epochs": STEPS, "seed": 3, **train},
    }


def bpcli_weights(tmp_path, train: dict) -> dict[str, np.ndarray]:
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(config(train)))
    out = tmp_path / "run"
    res = CliRunner().invoke(app, ["train", str(path), "--out", str(out), "-q", "--json"])
    assert res.exit_code == 0, res.output
    with np.load(checkpoint_dir(out) / "weights.npz", allow_pickle=False) as z:
        return {k: z[k].copy() for k in ("A.W", "A.b", "B.W", "B.b")}


def torch_weights(make, wd: float = 0.0, lrs: list[float] | None = None) -> dict[str, np.ndarray]:
    """Five full-batch steps of torch.optim (make(groups) builds it) on C = 1/m sum_i 1/2 ||y_i - y'_i||^2;
    lrs: the learning rate of each step (a schedule), set into the optimiser's group before the step."""
    t = lambda v: torch.tensor(v, dtype=torch.float64, requires_grad=True)
    W1_, b1_, W2_, b2_ = t(W1), t(B1), t(W2), t(B2)
    x, y = torch.tensor(X, dtype=torch.float64), torch.tensor(Y, dtype=torch.float64)
    opt = make([{"params": [W1_, W2_], "weight_decay": wd}, {"params": [b1_, b2_], "weight_decay": 0.0}])
    for k in range(STEPS):
        if lrs is not None:
            for group in opt.param_groups:
                group["lr"] = lrs[k]
        opt.zero_grad()
        y_hat = torch.sigmoid(torch.tanh(x @ W1_.T + b1_) @ W2_.T + b2_)
        C = 0.5 * ((y_hat - y) ** 2).sum() / len(X)
        C.backward()
        opt.step()
    return {k: v.detach().numpy() for k, v in (("A.W", W1_), ("A.b", b1_), ("B.W", W2_), ("B.b", b2_))}


CASES = [
    ({"optimizer": "nesterov", "lr": 0.4, "momentum": 0.8},
     lambda g: torch.optim.SGD(g, lr=0.4, momentum=0.8, nesterov=True)),
    ({"optimizer": "rmsprop", "lr": 0.03, "alpha": 0.95, "epsilon": 1e-6},
     lambda g: torch.optim.RMSprop(g, lr=0.03, alpha=0.95, eps=1e-6)),
    ({"optimizer": "adagrad", "lr": 0.2},
     lambda g: torch.optim.Adagrad(g, lr=0.2)),  # eps 1e-10 both sides by default
    ({"optimizer": "adamw", "lr": 0.05, "beta1": 0.85, "beta2": 0.99},
     lambda g: torch.optim.AdamW(g, lr=0.05, betas=(0.85, 0.99), eps=1e-8)),
    ({"optimizer": "adam", "lr": 0.05},
     lambda g: torch.optim.Adam(g, lr=0.05)),
    ({"optimizer": "momentum", "lr": 0.4, "momentum": 0.8},
     lambda g: torch.optim.SGD(g, lr=0.4, momentum=0.8)),
]


@pytest.mark.parametrize("wd", [0.0, 0.05])
@pytest.mark.parametrize("train,make", CASES, ids=[c[0]["optimizer"] for c in CASES])
def test_five_steps_equal_torch_optim(tmp_path, train, make, wd):
    got = bpcli_weights(tmp_path, {**train, "weight_decay": wd})
    want = torch_weights(make, wd)
    for k in want:
        np.testing.assert_allclose(got[k], want[k], rtol=1e-12, atol=1e-14, err_msg=k)
    # the steps moved the weights well beyond the tolerance: the comparison has something to see
    assert np.max(np.abs(want["A.W"] - np.array(W1))) > 1e-3


def test_adamw_decay_is_not_adam_with_l2(tmp_path):
    """Must-fail guard: AdamW's decoupled decay and Adam's L2 in the gradient part far beyond the tolerance."""
    got = bpcli_weights(tmp_path, {"optimizer": "adamw", "lr": 0.05, "weight_decay": 0.5})
    coupled = torch_weights(lambda g: torch.optim.Adam(g, lr=0.05), 0.5)
    assert np.max(np.abs(got["A.W"] - coupled["A.W"])) > 1e-4


def test_a_misspelt_optimiser_and_an_alpha_out_of_range_are_one_line_each(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(config({"optimizer": "rmsprp", "alpha": 1.0, "lr": 0.1})))
    res = CliRunner().invoke(app, ["train", str(path), "--out", str(tmp_path / "run"), "-q"])
    assert 2 == res.exit_code
    lines = res.stderr.strip().splitlines()
    at = path.read_text().splitlines().index("  optimizer: rmsprp") + 1
    assert [ln for ln in lines if "train.optimizer" in ln] == [
        f"error: {path}:{at}: train.optimizer: unknown value 'rmsprp' (did you mean 'rmsprop'?); expected 'gd', "
        "'sgd', 'momentum', 'nesterov', 'rmsprop', 'adagrad', 'adam' or 'adamw'"]
    assert any("train.alpha: must be < 1, found 1" in ln for ln in lines), lines
    assert "Traceback" not in res.output and not (tmp_path / "run").exists()


def test_adagrad_defaults_to_pytorchs_epsilon_and_rmsprop_keeps_its_alpha_in_the_saved_config(tmp_path):
    from bpcli.config.loader import load_config
    for opt, eps in (("adagrad", 1e-10), ("rmsprop", 1e-8), ("adam", 1e-8)):
        path = tmp_path / f"{opt}.yaml"
        path.write_text(yaml.safe_dump(config({"optimizer": opt, "lr": 0.1})))
        cfg, _ = load_config(path)
        assert (eps, 0.99) == (cfg.train.epsilon, cfg.train.alpha)
        assert ("alpha" in cfg.to_dict()["train"]) == (opt == "rmsprop")


@pytest.mark.parametrize("train,make", CASES[:4], ids=[c[0]["optimizer"] for c in CASES[:4]])
def test_step_takes_torchs_five_steps_and_shows_each_term_of_the_first(tmp_path, train, make):
    import json
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(config({**train, "weight_decay": 0.05})))
    r = CliRunner().invoke(app, ["step", str(path), "--steps", str(STEPS), "--json"])
    assert 0 == r.exit_code, r.output
    doc = json.loads(r.stdout)
    want = torch_weights(make, 0.05)
    by_name = {p["name"]: p for p in doc["parameters"]}
    np.testing.assert_allclose([by_name[n]["new"] for n in ("w11", "w32", "v23")],
                               [want["A.W"][0, 0], want["A.W"][2, 1], want["B.W"][1, 2]], rtol=1e-12)
    own = {"nesterov": {"v_prev", "v", "look"}, "rmsprop": {"v_prev", "v", "denom"}, "adagrad": {"s_prev", "s", "denom"},
           "adamw": {"m", "v", "m_hat", "v_hat", "denom", "decay"}}[train["optimizer"]]
    first = by_name["w11"]["first_step"]
    assert own | {"g", "step"} <= set(first)
    # the first step's terms against its formula in plain floats (state zero before it)
    g, lr, w = first["g"], train["lr"], by_name["w11"]["value"]
    coupled = 0.0 if train["optimizer"] == "adamw" else 0.05  # adamw's decay is not in g
    assert g == pytest.approx(by_name["w11"]["gradient"] + coupled * w, rel=1e-13)
    expected = {
        "nesterov": {"v": g, "look": g + train.get("momentum", 0.9) * g, "step": lr * (g + train.get("momentum", 0.9) * g)},
        "rmsprop": {"v": (1 - 0.95) * g * g, "denom": math.sqrt((1 - 0.95) * g * g) + 1e-6,
                    "step": lr * g / (math.sqrt((1 - 0.95) * g * g) + 1e-6)},
        "adagrad": {"s": g * g, "denom": abs(g) + 1e-10, "step": lr * g / (abs(g) + 1e-10)},
        "adamw": {"decay": lr * 0.05 * w, "m_hat": g, "v_hat": g * g, "step": lr * g / (abs(g) + 1e-8)},
    }[train["optimizer"]]
    for term, value in expected.items():
        assert first[term] == pytest.approx(value, rel=1e-12), term
