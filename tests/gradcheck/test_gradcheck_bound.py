"""The verdict judged per entry against its own error bound: the planted mistakes of issue 20 fail, correct
networks at a kink or near zero never do.  Expected gradients come from plain-float chain rules written here."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from typer.testing import CliRunner

from bpcli.nn.activations import get_activation
from bpcli.cli.app import app
from bpcli.gradcheck.report import GradcheckOptions
from bpcli.gradcheck.check import check
from bpcli.nn.losses import get_loss
from bpcli.nn.model import Layer, Network

runner = CliRunner()

PLANTED = """\
name: planted
inputs: 1
layers:
  - {{size: 1, activation: {{name: mytanh, f: "tanh(z)", df: "{df}"}}, weights: [[0.5]], biases: [0.1]}}
  - {{size: 1, activation: sigmoid, weights: [[1.0]], biases: [{b}]}}
loss: squared_error
data: {{x: [[1.0], [1.0]], y: [[{y}], [{y}]]}}
"""
WRONG, RIGHT = "(1 - a**2) * 1.5", "1 - a**2"


def sig(z: float) -> float:
    return 1.0 / (1.0 + math.exp(-z))


def exact_dC_dw1(b: float, y: float) -> float:
    """C = mean 1/2 (y' - y)^2 over two equal samples: dC/dw1 = (y' - y) y'(1 - y') * 1 * (1 - tanh(0.6)^2) * 1."""
    a = math.tanh(0.5 + 0.1)
    yh = sig(a + b)
    return (yh - y) * yh * (1 - yh) * (1 - a * a)


def run(tmp_path, text: str, *args: str):
    p = tmp_path / "c.yaml"
    p.write_text(text)
    res = runner.invoke(app, ["gradcheck", str(p), "--json", *args])
    return res.exit_code, json.loads(res.stdout)


@pytest.mark.parametrize("b,y", [(17, 0), (10, 1000)], ids=["planted", "targets-1000"])
def test_planted_derivative_fails_naming_w1_and_b_A(tmp_path, b, y):
    code, doc = run(tmp_path, PLANTED.format(df=WRONG, b=b, y=y))
    assert 1 == code
    assert {"w1", "b_A"} == {e["name"] for e in doc["entries"] if not e["passed"]}
    w1 = next(e for e in doc["entries"] if e["name"] == "w1")
    assert 1.5 * exact_dC_dw1(b, y) == pytest.approx(w1["analytic"], rel=1e-9)
    assert abs(exact_dC_dw1(b, y) - w1["numeric"]) <= w1["bound"]  # the bound holds the true error
    assert 4 * w1["bound"] < abs(w1["analytic"] - w1["numeric"])


@pytest.mark.parametrize("b,y", [(17, 0), (10, 1000)], ids=["planted", "targets-1000"])
def test_correct_derivative_passes(tmp_path, b, y):
    code, doc = run(tmp_path, PLANTED.format(df=RIGHT, b=b, y=y))
    assert 0 == code, [e for e in doc["entries"] if not e["passed"]]
    w1 = next(e for e in doc["entries"] if e["name"] == "w1")
    assert exact_dC_dw1(b, y) == pytest.approx(w1["numeric"], rel=1e-4)


def test_explain_and_gradcheck_agree_on_the_planted_entry(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text(PLANTED.format(df=WRONG, b=17, y=0))
    ex = runner.invoke(app, ["explain", str(p), "-w", "w1", "--json"])
    e = json.loads(ex.stdout)["explanations"][0]["numeric_check"]
    code, doc = run(tmp_path, PLANTED.format(df=WRONG, b=17, y=0))
    w1 = next(e for e in doc["entries"] if e["name"] == "w1")
    assert (e["agrees"], e["verdict"]) == (w1["passed"], w1["verdict"]) == (False, "wrong")


def _net(sizes, acts, loss, rng, scale=1.0):
    layers, W, b = [], [], []
    for i in range(len(sizes) - 1):
        act = acts[i] if not isinstance(acts[i], str) else get_activation(acts[i])
        layers.append(Layer("ABCDEFG"[i], sizes[i], sizes[i + 1], act, "on", "wvuts"[i]))
        W.append(rng.normal(0, scale / np.sqrt(sizes[i]), (sizes[i + 1], sizes[i])))
        b.append(rng.normal(0, 0.1, sizes[i + 1]))
    return Network(tuple(f"x{j + 1}" for j in range(sizes[0])), tuple(layers), W, b, get_loss(loss))


def _wide(df: str) -> tuple[Network, np.ndarray, np.ndarray]:
    """7201 parameters: 4 inputs, 1200 tanh nodes written as a formula, a sigmoid output with BCE.  Node A1 (bias
    6, tiny weights) is the only one whose z goes above 4."""
    rng = np.random.default_rng(3)
    act = get_activation("mytanh", {"f": "tanh(z)", "df": df})
    layers = (Layer("A", 4, 1200, act, "on", "w"), Layer("B", 1200, 1, get_activation("sigmoid"), "on", "v"))
    W = [rng.normal(0, 0.3, (1200, 4)), rng.normal(0, 1 / np.sqrt(1200), (1, 1200))]
    b = [rng.normal(0, 0.1, 1200), rng.normal(0, 0.1, 1)]
    W[0][0] *= 0.01
    b[0][0] = 6.0
    net = Network(("x1", "x2", "x3", "x4"), layers, W, b, get_loss("binary_cross_entropy"))
    x = rng.normal(size=(64, 4))
    return net, x, (rng.random((64, 1)) < 0.5).astype(float)


def test_sampled_default_fails_a_derivative_wrong_for_one_node_and_names_it():
    """tanh's derivative written 1.5x too large where z > 4, which only node A1 reaches: the default check
    (1000 sampled entries, 4 random directions per array, and one direction per node) fails and names A1."""
    net, x, y = _wide("where(z > 4, 1.5 * (1 - a**2), 1 - a**2)")
    z = x @ net.W[0].T + net.b[0]
    assert [0] == sorted(set(np.nonzero(z > 4)[1]))  # the premise: only node A1 is affected
    rep = check(net, x, y, GradcheckOptions(seed=1))  # seed 1: no sampled entry belongs to node A1
    assert rep.sampled and rep.failed
    assert not any(r.name in ("w11", "w12", "w13", "w14", "b_A1") for r in rep.entries)
    assert [] == rep.failed_entries  # the sample missed it; the node check did not
    assert ["A1"] == [d.node for d in rep.failed_directions if d.node]
    ok = _wide("1 - a**2")
    assert "pass" == check(*ok, GradcheckOptions(seed=1)).verdict


KINK_LAYER = """\
name: kinked
inputs: 1
layers:
  - {{size: 2, activation: {{name: mytanh, f: "tanh(z)", df: "{df}"}}, weights: [[0.5], [0.5]], biases: [0.1, 0.1]}}
  - {{size: 2, activation: relu, weights: [[1.0, -1.0], [0.3, 0.7]], biases: [0.0, 0.2]}}
  - {{size: 1, activation: identity, weights: [[0.8, -0.6]], biases: [0.0]}}
loss: squared_error
data: {{x: [[1.0], [2.0], [0.5]], y: [[1.0], [0.0], [0.5]]}}
"""


def test_a_layer_whose_every_entry_crosses_a_kink_never_passes_a_wrong_derivative(tmp_path):
    """Relu node B1 sits at z = a_A1 - a_A2 = 0 for every sample: every step of layer A crosses its kink."""
    code, doc = run(tmp_path, KINK_LAYER.format(df=WRONG))
    assert code in (1, 3) and doc["verdict"] != "pass"
    a_entries = [e for e in doc["entries"] if e["layer"] == "A"]
    assert not any(e["passed"] for e in a_entries)


def test_the_kinked_layer_passes_with_the_right_derivative(tmp_path):
    code, doc = run(tmp_path, KINK_LAYER.format(df=RIGHT))
    assert 0 == code
    # every layer-A step crosses B1's kink one way only: the difference on the other side decides, no excuse
    assert all(e["passed"] and e["verdict"] != "kink" for e in doc["entries"] if e["layer"] == "A")


RELU_FORMULA = """\
name: frelu
inputs: 1
layers:
  - {{size: 2, activation: {act}, weights: [[1.0], [0.5]], biases: [0.0, 0.2]}}
  - {{size: 1, activation: identity, weights: [[0.7, -0.4]], biases: [0.1]}}
loss: squared_error
data: {{x: [[0.0], [1.0], [-2.0]], y: [[1.0], [0.0], [0.5]]}}
"""
FRELU = '{name: frelu, f: "where(z > 0, z, 0)", df: "where(z > 0, 1, 0)"}'


def test_a_correct_relu_formula_at_z_exactly_zero_never_fails_and_units_do_not_call_it_broken(tmp_path):
    code, doc = run(tmp_path, RELU_FORMULA.format(act=FRELU), "--units")
    assert 1 != code, [e for e in doc["entries"] if not e["passed"]]
    assert [] == [u["name"] for u in doc["units"] if not u["passed"] and u["verdict"] not in ("kink", "inconclusive")]
    code_builtin, _ = run(tmp_path, RELU_FORMULA.format(act="relu"))
    assert (0, 0) == (code, code_builtin)


def test_saturated_correct_networks_never_fail_and_mostly_pass():
    """A fixed seeded family: sigmoid + BCE, softmax + CE, sigmoid and tanh + squared error, peak |z| 20..200."""
    rng = np.random.default_rng(20)
    results = []
    for i in range(24):
        kind = i % 4
        peak = [20, 50, 100, 200][(i // 4) % 4]
        hidden = "tanh" if kind == 3 else "sigmoid"
        out, loss, n_out = [("sigmoid", "binary_cross_entropy", 1), ("softmax", "cross_entropy", 3),
                            ("sigmoid", "squared_error", 1), ("tanh", "squared_error", 1)][kind]
        net = _net([2, 4, n_out], [hidden, out], loss, rng)
        x = rng.normal(size=(8, 2))
        z = np.abs(x @ net.W[0].T + net.b[0]).max()
        net.W[0] *= peak / z
        y = (rng.random((8, n_out)) < 0.5).astype(float)
        if kind == 1:
            y = np.eye(3)[rng.integers(0, 3, 8)]
        rep = check(net, x, y, GradcheckOptions(mode="entries", all_entries=True, samples=None))
        results.append(rep.verdict)
    assert "fail" not in results
    assert results.count("pass") >= 0.9 * len(results), results


def test_a_correct_network_near_its_minimum_never_fails():
    """Cost 7e-13 (targets the network's own outputs plus 1e-6 noise): gradients of 1e-8, judged in their own
    terms against their own bounds, pass; no floor borrowed from the cost either way."""
    rng = np.random.default_rng(7)
    net = _net([3, 5, 2], ["tanh", "identity"], "squared_error", rng)
    x = rng.normal(size=(16, 3))
    from bpcli.nn.engine import cost, forward
    y = forward(net, x)[0] + 1e-6 * rng.normal(size=(16, 2))
    assert cost(net, forward(net, x)[1], y) < 1e-12
    rep = check(net, x, y, GradcheckOptions(mode="entries", all_entries=True, samples=None))
    assert not rep.failed and "pass" == rep.verdict


def sat_exact(w: tuple[float, float], b: float, x, y, k: int) -> float:
    """dC/dtheta_k = mean_i (sigmoid(z_i) - y_i) * (x_ik, or 1 for the bias), each sigmoid in its stable form."""
    total = 0.0
    for xi, yi in zip(x, y):
        z = w[0] * xi[0] + w[1] * xi[1] + b
        s = 1 / (1 + math.exp(-z)) if z >= 0 else math.exp(z) / (1 + math.exp(z))
        r = (math.exp(-z) / (1 + math.exp(-z)) * -1 if (yi[0] == 1 and z > 0) else s - yi[0])  # 1 - s, unrounded
        total += r * (xi[k] if k < 2 else 1.0)
    return total / len(x)


def test_a_correct_network_in_saturation_never_fails():
    """sigmoid + BCE at |z| of 47 to 57, labels equal to the predictions (gradients about 1e-21): backprop's
    y' - y rounds where y' is 1 - 1e-25, and the bound says so: inconclusive, never a failure."""
    net = Network(("x1", "x2"), (Layer("A", 2, 1, get_activation("sigmoid"), "on", "w"),),
                  [np.array([[30.0, -20.0]])], [np.array([2.0])], get_loss("binary_cross_entropy"))
    x = np.array([[1.5, -0.5], [-1.0, 1.0], [2.0, 0.5], [-1.5, 0.2]])
    y = np.array([[1.0], [0.0], [1.0], [0.0]])
    rep = check(net, x, y, GradcheckOptions(mode="entries", all_entries=True, samples=None))
    assert not rep.failed and 1 != rep.exit_code
    for r in rep.entries:
        k = {"w1": 0, "w2": 1, "b_A": 2}[r.name]
        exact = sat_exact((30.0, -20.0), 2.0, x.tolist(), y.tolist(), k)
        assert abs(r.numeric - exact) <= r.bound  # the numeric side is right, within its bound
        assert abs(r.analytic - r.numeric) <= 4 * r.bound  # and the gap is what the bound explains
