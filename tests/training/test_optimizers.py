"""Every optimiser's first three steps, written out in plain Python floats, against what `bpcli train` saves.

The reference here shares nothing with bpcli: the 2-2-1 network's forward pass and chain rule are spelled out
per weight with math.exp, and each optimiser is its textbook update (Adam with bias-corrected m_hat and
v_hat, as in Kingma & Ba and PyTorch).  Only the mini-batch order comes from numpy: it is the documented
shuffle (numpy.random.default_rng(train.seed).permutation(m) at each epoch), data order, not maths.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from bpcli.cli.app import app
from bpcli.runs.store import checkpoint_dir

X = [[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]]
Y = [0.0, 1.0, 1.0, 0.0]
W1 = [[0.15, -0.2], [0.25, 0.3]]  # w11 w12 / w21 w22
B1 = [0.35, -0.1]
V = [0.4, -0.45]
BB = 0.6


def sig(z: float) -> float:
    return 1.0 / (1.0 + math.exp(-z))


def grads(p: dict, rows: list[int]) -> dict:
    """dC/dparam for C = 1/m sum_i 1/2 (y_i - y'_i)^2 over `rows`, by the chain rule, one weight at a time."""
    g = {k: 0.0 for k in ("w11", "w12", "w21", "w22", "b1", "b2", "v1", "v2", "bB")}
    for i in rows:
        x1, x2 = X[i]
        o = [sig(p[f"w{j}1"] * x1 + p[f"w{j}2"] * x2 + p[f"b{j}"]) for j in (1, 2)]
        yh = sig(p["v1"] * o[0] + p["v2"] * o[1] + p["bB"])
        dz_b = (yh - Y[i]) * yh * (1.0 - yh)  # dL/dy' * f_B'(z_B)
        g["v1"] += dz_b * o[0]
        g["v2"] += dz_b * o[1]
        g["bB"] += dz_b
        for j in (1, 2):
            dz_a = dz_b * p[f"v{j}"] * o[j - 1] * (1.0 - o[j - 1])  # ... * v_j * f_Aj'(z_Aj)
            g[f"w{j}1"] += dz_a * x1
            g[f"w{j}2"] += dz_a * x2
            g[f"b{j}"] += dz_a
    return {k: v / len(rows) for k, v in g.items()}


WEIGHTS = ("w11", "w12", "w21", "w22", "v1", "v2")  # weight decay applies to these, not to the biases


def reference(optimizer: str, steps_rows: list[list[int]], lr: float, wd: float = 0.0, mu: float = 0.9,
              b1: float = 0.9, b2: float = 0.999, eps: float = 1e-8) -> dict:
    p = {"w11": W1[0][0], "w12": W1[0][1], "w21": W1[1][0], "w22": W1[1][1], "b1": B1[0], "b2": B1[1],
         "v1": V[0], "v2": V[1], "bB": BB}
    m = {k: 0.0 for k in p}
    v = {k: 0.0 for k in p}
    for t, rows in enumerate(steps_rows, start=1):
        g = grads(p, rows)
        for k in p:
            gk = g[k] + (wd * p[k] if k in WEIGHTS else 0.0)
            if optimizer in ("gd", "sgd"):
                p[k] -= lr * gk
            elif optimizer == "momentum":
                m[k] = mu * m[k] + gk
                p[k] -= lr * m[k]
            else:  # adam
                m[k] = b1 * m[k] + (1 - b1) * gk
                v[k] = b2 * v[k] + (1 - b2) * gk * gk
                m_hat = m[k] / (1 - b1**t)
                v_hat = v[k] / (1 - b2**t)
                p[k] -= lr * m_hat / (math.sqrt(v_hat) + eps)
    return p


def config(optimizer: str, lr: float, epochs: int, batch_size: int | None = None, wd: float = 0.0) -> dict:
    train = {"optimizer": optimizer, "lr": lr, "epochs": epochs, "seed": 11, "weight_decay": wd}
    if batch_size:
        train["batch_size"] = batch_size
    return {
        "name": "opt", "inputs": 2,
        "layers": [{"size": 2, "activation": "sigmoid", "weights": W1, "biases": B1},
                   {"size": 1, "activation": "sigmoid", "weights": [V], "biases": [BB]}],
        "loss": "squared_error",
        "data": {"x": X, "y": [[v] for v in Y]},
        "train": train,
    }


def trained(tmp_path, cfg: dict) -> dict:
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(cfg))
    out = tmp_path / "run"
    res = CliRunner().invoke(app, ["train", str(path), "--out", str(out), "-q", "--json"])
    assert res.exit_code == 0, res.output
    with np.load(checkpoint_dir(out) / "weights.npz", allow_pickle=False) as z:
        A_W, A_b, B_W, B_b = z["A.W"], z["A.b"], z["B.W"], z["B.b"]
    return {"w11": A_W[0, 0], "w12": A_W[0, 1], "w21": A_W[1, 0], "w22": A_W[1, 1], "b1": A_b[0], "b2": A_b[1],
            "v1": B_W[0, 0], "v2": B_W[0, 1], "bB": B_b[0]}


def assert_same(got: dict, want: dict) -> None:
    for k in want:
        assert got[k] == pytest.approx(want[k], rel=1e-12, abs=1e-15), k


FULL = [[0, 1, 2, 3]] * 3


@pytest.mark.parametrize("optimizer,lr,wd", [
    ("gd", 2.0, 0.0),
    ("gd", 0.5, 0.01),
    ("momentum", 0.5, 0.0),
    ("momentum", 0.3, 0.02),
    ("adam", 0.05, 0.0),
    ("adam", 0.05, 0.01),
])
def test_three_full_batch_steps_match_the_textbook_update(tmp_path, optimizer, lr, wd):
    assert_same(trained(tmp_path, config(optimizer, lr, 3, wd=wd)), reference(optimizer, FULL, lr, wd))


def test_sgd_steps_follow_the_documented_shuffle(tmp_path):
    rng = np.random.default_rng(11)  # train.seed
    steps = []
    for _ in range(2):  # two epochs of two batches of 2: four steps
        order = [int(i) for i in rng.permutation(4)]
        steps += [order[:2], order[2:]]
    want = reference("sgd", steps, 0.7)
    assert_same(trained(tmp_path, config("sgd", 0.7, 2, batch_size=2)), want)


def test_the_reference_is_sharp_enough_to_catch_a_missing_bias_correction(tmp_path):
    """Must-fail: Adam without bias correction differs from the saved weights far beyond the tolerance."""
    got = trained(tmp_path, config("adam", 0.05, 3))
    p = {"w11": W1[0][0], "w12": W1[0][1], "w21": W1[1][0], "w22": W1[1][1], "b1": B1[0], "b2": B1[1],
         "v1": V[0], "v2": V[1], "bB": BB}
    m = {k: 0.0 for k in p}
    v = {k: 0.0 for k in p}
    for _ in range(3):
        g = grads(p, [0, 1, 2, 3])
        for k in p:
            m[k] = 0.9 * m[k] + 0.1 * g[k]
            v[k] = 0.999 * v[k] + 0.001 * g[k] ** 2
            p[k] -= 0.05 * m[k] / (math.sqrt(v[k]) + 1e-8)
    with pytest.raises(AssertionError):
        assert_same(got, p)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("optimizer", ["sgd", "momentum", "nesterov", "rmsprop", "adagrad", "adam"])
def test_a_step_over_blocks_is_the_per_array_step_to_the_bit(optimizer, dtype):
    """Training hands the optimiser its gradients as one block (Buffers.grad): the step is computed once over the
    blocks and subtracted array by array. Five steps of it equal five per-array steps, bit for bit, parameters and
    state alike; a state read back as separate arrays (a resumed run) takes the per-array way."""
    import dataclasses

    from bpcli.nn.engine import Buffers, backward, forward
    from bpcli.schema import TrainConfig
    from bpcli.training.optim import Optimizer
    from tests.conftest import random_data, random_net

    rng = np.random.default_rng(3)
    net = random_net(rng, 3, [4, 2], hidden="tanh", output="sigmoid")
    net = dataclasses.replace(net, W=[W.astype(dtype) for W in net.W], b=[b.astype(dtype) for b in net.b],
                              dtype=dtype)
    x, y = (a.astype(dtype) for a in random_data(rng, net, 8))
    settings = TrainConfig(optimizer=optimizer, lr=0.05, momentum=0.9)
    nets = [net.copy(), net.copy()]
    opts = [Optimizer(n, settings) for n in nets]
    assert opts[0]._block is not None
    bufs = [Buffers(n, 8) for n in nets]
    for t in range(1, 6):
        for n, opt, buf, block in zip(nets, opts, bufs, (True, False)):
            grads = backward(n, forward(n, x, buf)[1], y, buf)
            opt.step(opt.gradients(grads), t, spent=True, block=buf.grad if block else None)
    for a, b in zip(nets[0].W + nets[0].b, nets[1].W + nets[1].b):
        assert a.dtype == dtype and np.array_equal(a, b)
    assert opts[0].buffers.keys() == opts[1].buffers.keys()
    for k in opts[0].buffers:
        assert np.array_equal(opts[0].buffers[k], opts[1].buffers[k]), k
    if optimizer != "sgd":  # state arrays that are not views of one block (read from a checkpoint): per array
        loaded = {k: v.copy() for k, v in opts[0].buffers.items()}
        assert Optimizer(nets[0].copy(), settings, loaded)._block is None
