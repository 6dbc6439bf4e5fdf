"""A saturated sigmoid + binary cross-entropy network: gradcheck passes and explain agrees, with the exact
gradient worked out here in plain floats; a planted wrong output derivative still fails both."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from typer.testing import CliRunner

from bpcli.nn import engine
from bpcli.cli.app import app

runner = CliRunner()

SATURATED = """\
name: saturated
inputs: 1
layers:
  - {size: 1, activation: sigmoid, weights: [[10.0]], biases: [0.0]}
loss: binary_cross_entropy
data: {x: [[5.0], [-1.0], [0.5]], y: [[0.0], [0.0], [1.0]]}
"""
X = [5.0, -1.0, 0.5]
Y = [0.0, 0.0, 1.0]
W1 = 10.0


def plain_sigmoid(z: float) -> float:
    """1 / (1 + e^-z), written for both signs so neither tail rounds."""
    if z >= 0:
        return 1.0 / (1.0 + math.exp(-z))
    e = math.exp(z)
    return e / (1.0 + e)


def exact_dC_dw1() -> float:
    """dC/dw1 = mean_i (sigmoid(w1 x_i) - y_i) x_i (the bias is 0)."""
    return sum((plain_sigmoid(W1 * x) - y) * x for x, y in zip(X, Y)) / len(X)


@pytest.fixture
def sat(tmp_path):
    p = tmp_path / "sat.yaml"
    p.write_text(SATURATED)
    return str(p)


def test_exact_value_is_the_one_the_issue_quotes():
    assert 1.6655360589 == pytest.approx(exact_dC_dw1(), abs=1e-10)


def test_saturated_config_passes_gradcheck_at_the_exact_gradient(sat):
    res = runner.invoke(app, ["gradcheck", sat, "--json"])
    assert 0 == res.exit_code, res.output
    doc = json.loads(res.stdout)
    assert "pass" == doc["verdict"]
    w1 = next(e for e in doc["entries"] if e["name"] == "w1")
    exact = exact_dC_dw1()
    assert exact == pytest.approx(w1["analytic"], rel=1e-12)
    assert exact == pytest.approx(w1["numeric"], rel=1e-8)
    assert "good" == w1["verdict"]
    table = runner.invoke(app, ["gradcheck", sat])
    assert 0 == table.exit_code and "PASS" in table.stdout and "1.66554" in table.stdout  # six digits, as explain


def test_saturated_config_explain_agrees(sat):
    res = runner.invoke(app, ["explain", sat, "-w", "w1", "--json"])
    assert 0 == res.exit_code, res.output
    e = json.loads(res.stdout)["explanations"][0]
    exact = exact_dC_dw1()
    assert exact == pytest.approx(e["engine_gradient"], rel=1e-12)
    assert exact == pytest.approx(e["mean"], rel=1e-12)
    assert exact == pytest.approx(e["numeric_check"]["gradient"], rel=1e-8)
    assert e["numeric_check"]["agrees"] is True
    assert 0 == runner.invoke(app, ["explain", sat, "-w", "w1"]).exit_code


def test_a_wrong_output_derivative_still_fails_on_the_saturated_config(sat, monkeypatch):
    real = engine.output_delta

    def planted(net, tape, y):  # the fused shortcut y' - y, off by 2 % at every sample
        dz, dy_hat = real(net, tape, y)
        return dz * 1.02, dy_hat

    monkeypatch.setattr(engine, "output_delta", planted)
    res = runner.invoke(app, ["gradcheck", sat, "--json"])
    assert 1 == res.exit_code, res.output
    doc = json.loads(res.stdout)
    failed = {e["name"] for e in doc["entries"] if not e["passed"]}
    assert "w1" in failed
    w1 = next(e for e in doc["entries"] if e["name"] == "w1")
    assert 1.02 * exact_dC_dw1() == pytest.approx(w1["analytic"], rel=1e-12)
    ex = runner.invoke(app, ["explain", sat, "-w", "w1"])
    assert 1 == ex.exit_code
    assert "w1: the gradient" in ex.stderr and "disagrees" in ex.stderr
    assert np.isfinite(w1["numeric"])


@pytest.mark.parametrize("output, loss, w, y, exact", [
    # sigmoid + BCE, z = 50, y = 0: L = softplus(50) - 0 = 50 + log1p(e^-50)
    ("{size: 1, activation: sigmoid, weights: [[50.0]], biases: [0.0]}", "binary_cross_entropy", 50.0, "[[0.0]]",
     50.0 + math.log1p(math.exp(-50.0))),
    # softmax + CE, z = (60, 0), y = (0, 1): L = logsumexp(z) - z2 = 60 + log1p(e^-60)
    ("{size: 2, activation: softmax, weights: [[60.0], [0.0]], biases: [0.0, 0.0]}", "cross_entropy", 60.0,
     "[[0.0, 1.0]]", 60.0 + math.log1p(math.exp(-60.0))),
])
def test_show_sample_reports_the_exact_loss_of_a_fused_pair_far_in_its_tail(tmp_path, output, loss, w, y, exact):
    p = tmp_path / "tail.yaml"
    p.write_text(f"name: tail\ninputs: 1\nlayers:\n  - {output}\nloss: {loss}\ndata: {{x: [[1.0]], y: {y}}}\n")
    res = runner.invoke(app, ["show", str(p), "--sample", "1", "--json"])
    assert 0 == res.exit_code, res.output
    assert exact == json.loads(res.stdout)["sample"]["loss"]
    text = runner.invoke(app, ["show", str(p), "--sample", "1"], terminal_width=100).output
    assert f"loss L = {w:g} " in text, text
