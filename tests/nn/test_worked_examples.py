"""Hand-derived numbers: the seed's 2-2-1 network at fixed weights, and the classic 2-2-2 walk-through."""

from __future__ import annotations

import math

import numpy as np
import pytest

from bpcli.config.loader import load_config
from bpcli.nn.engine import backward, cost, forward
from bpcli.nn.model import build
from bpcli.data.dataset import prepare

SEED_YAML = """
inputs: [x1, x2]
bias: off
layers:
  - {size: 2, activation: sigmoid}
  - {size: 1, activation: sigmoid}
loss: squared_error
init:
  values: {w11: 0.5, w12: -0.3, w21: 0.8, w22: 0.2, v1: 1.2, v2: -0.7}
data:
  x: [[1.0, 0.0], [0.5, 1.0]]
  y: [[1.0], [0.0]]
train: {lr: 0.5}
"""


def sig(t: float) -> float:
    return 1.0 / (1.0 + math.exp(-t))


def seed_by_hand():
    """dC/dv1 and dC/dw11 exactly as the seed writes them, with plain floats."""
    w11, w12, w21, w22, v1, v2 = 0.5, -0.3, 0.8, 0.2, 1.2, -0.7
    samples = [((1.0, 0.0), 1.0), ((0.5, 1.0), 0.0)]
    m = len(samples)
    dv1 = dw11 = c = 0.0
    for (x1, x2), y in samples:
        o1, o2 = sig(w11 * x1 + w12 * x2), sig(w21 * x1 + w22 * x2)
        zB = v1 * o1 + v2 * o2
        yp = sig(zB)
        c += 0.5 * (y - yp) ** 2 / m
        dL_dyp = yp - y  # L = 1/2 (y - y')^2  =>  dL/dy' = -(y - y') = y' - y
        fB = yp * (1 - yp)
        dv1 += dL_dyp * fB * o1 / m  # Steps 1-4
        dw11 += dL_dyp * fB * v1 * o1 * (1 - o1) * x1 / m  # one layer further back
    return c, dv1, dw11


@pytest.fixture
def seed_net(tmp_path):
    p = tmp_path / "seed.yaml"
    p.write_text(SEED_YAML)
    cfg, data = load_config(p)
    return build(cfg), data


def test_seed_network_gradients_match_the_hand_derivation(seed_net):
    net, data = seed_net
    c, dv1, dw11 = seed_by_hand()
    y_hat, tape = forward(net, data.x)
    g = backward(net, tape, data.y)
    assert cost(net, tape, data.y) == pytest.approx(c, abs=1e-15)
    assert g.dW[1][0, 0] == pytest.approx(dv1, abs=1e-12)
    assert g.dW[0][0, 0] == pytest.approx(dw11, abs=1e-12)
    assert net.resolve("v1").layer == 1 and net.resolve("w11").layer == 0


def test_seed_names_resolve_in_every_spelling(seed_net):
    net, _ = seed_net
    assert net.param_names() == ["w11", "w12", "w21", "w22", "v1", "v2"]
    assert net.resolve("w[1,2]") == net.resolve("w12") == net.resolve("w1_2")
    assert net.resolve("v[2]").index == (0, 1)


WORKED = "src/bpcli/configs/worked_example.yaml"


def test_classic_walkthrough_numbers():
    """The well-known 2-2-2 example: E_total = 0.298371109, dE/dw5 = 0.082167041, dE/dw1 = 0.000438568."""
    cfg, data = load_config(WORKED)
    net = build(cfg)
    y_hat, tape = forward(net, data.x)
    np.testing.assert_allclose(y_hat, [[0.75136507, 0.772928465]], atol=1e-9)
    assert cost(net, tape, data.y) == pytest.approx(0.298371109, abs=1e-9)
    g = backward(net, tape, data.y)
    assert g.dW[1][0, 0] == pytest.approx(0.082167041, abs=1e-9)  # w5 = v11
    assert g.dW[0][0, 0] == pytest.approx(0.000438568, abs=1e-9)  # w1 = w11
    # one gradient-descent step with lr 0.5 gives the published updated weights
    assert net.get(net.resolve("v11")) - 0.5 * g.dW[1][0, 0] == pytest.approx(0.35891648, abs=1e-8)
    assert net.get(net.resolve("w11")) - 0.5 * g.dW[0][0, 0] == pytest.approx(0.149780716, abs=1e-9)


def test_shared_bias_is_one_parameter_per_layer():
    cfg, data = load_config(WORKED)
    net = build(cfg)
    assert [n for n in net.param_names() if n.startswith("b")] == ["b_A", "b_B"]
    assert net.get(net.resolve("b_A")) == 0.35
    p = prepare(cfg, data)
    assert p.val is None and p.scaling is None


def _trained(tmp_path, epochs: int) -> dict:
    from typer.testing import CliRunner

    from bpcli.cli.app import app
    out = tmp_path / f"mazur{epochs}"
    res = CliRunner().invoke(app, ["train", WORKED, "--epochs", str(epochs), "--out", str(out), "-q", "--json"])
    assert res.exit_code == 0, res.output
    from bpcli.runs.store import checkpoint_dir
    with np.load(checkpoint_dir(out) / "weights.npz", allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


def test_the_published_first_step_after_training_one_epoch(tmp_path):
    """`bpcli train` itself takes Mazur's step: w5 -> 0.35891648, w1 -> 0.149780716, biases unchanged."""
    w = _trained(tmp_path, 1)
    assert w["B.W"][0, 0] == pytest.approx(0.35891648, abs=1e-8)  # w5
    assert w["A.W"][0, 0] == pytest.approx(0.149780716, abs=1e-9)  # w1
    assert w["A.b"].tolist() == [0.35] and w["B.b"].tolist() == [0.60]


def test_the_shared_biases_stay_put_for_the_whole_run(tmp_path):
    w = _trained(tmp_path, 1000)
    assert w["A.b"].tolist() == [0.35] and w["B.b"].tolist() == [0.60]
    assert w["B.W"][0, 0] != pytest.approx(0.40, abs=1e-3)  # while the weights did train


def test_shared_frozen_bias_is_one_parameter_that_gradcheck_and_explain_still_see():
    cfg, data = load_config(WORKED)
    net = build(cfg)
    assert [layer.bias for layer in net.layers] == ["shared_frozen", "shared_frozen"]
    assert [n for n in net.param_names() if n.startswith("b")] == ["b_A", "b_B"]
    assert net.n_params == 2 * 4 + 2
