"""Exact numbers where networks saturate: the sigmoid in both tails, and the fused log losses from z.

Every expected value is written out here with Python's math module in the textbook stable forms
(softplus(z) = max(z, 0) + log1p(e^-|z|), logsumexp = max + log1p(sum of the rest)).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from bpcli.nn.activations import get_activation
from bpcli.cli.app import app
from bpcli.nn.engine import cost, forward
from bpcli.nn.losses import get_loss
from bpcli.nn.model import Layer, Network


def exact_sigmoid(z: float) -> float:
    return 1.0 / (1.0 + math.exp(-z)) if z >= 0 else math.exp(z) / (1.0 + math.exp(z))


def softplus(z: float) -> float:
    return max(z, 0.0) + math.log1p(math.exp(-abs(z)))


@pytest.mark.parametrize("z", [-745.0, -720.0, -40.0, -37.4, -35.0, -30.0, -1.0, 0.0, 2.5, 30.0, 37.0, 800.0])
def test_sigmoid_is_exact_in_both_tails(z):
    got = float(get_activation("sigmoid").fn(np.array([[z]]))[0, 0])
    want = exact_sigmoid(z)
    assert got == pytest.approx(want, rel=1e-15, abs=0.0) if want >= 1e-300 else got == want


def test_sigmoid_negative_tail_pinned_values():
    s = get_activation("sigmoid").fn(np.array([[-40.0, -30.0, 0.0]]))[0]
    # e^-40 / (1 + e^-40) and e^-30 / (1 + e^-30), to 16 digits
    assert s[0] == pytest.approx(4.248354255291589e-18, rel=1e-15)
    assert s[1] == pytest.approx(9.357622968839299e-14, rel=1e-15)
    assert s[2] == 0.5


def one_node(act: str, loss: str, w: np.ndarray) -> Network:
    n_out, n_in = w.shape
    layer = Layer("A", n_in, n_out, get_activation(act), "off", "w")
    return Network(tuple(f"x{k + 1}" for k in range(n_in)), (layer,), [w.astype(float)], [None], get_loss(loss))


@pytest.mark.parametrize("z", [30.0, 37.0, 50.0, 100.0, 709.0, 1000.0, -30.0, -100.0, -1000.0])
@pytest.mark.parametrize("y", [0.0, 1.0, 0.25])
def test_binary_cross_entropy_from_z_is_exact(z, y):
    net = one_node("sigmoid", "binary_cross_entropy", np.array([[z]]))
    _, tape = forward(net, np.array([[1.0]]))
    # -(y ln s(z) + (1 - y) ln(1 - s(z))) = y softplus(-z) + (1 - y) softplus(z)
    want = y * softplus(-z) + (1 - y) * softplus(z)
    assert cost(net, tape, np.array([[y]])) == pytest.approx(want, rel=1e-12, abs=0.0)


@pytest.mark.parametrize("t", [30.0, 37.0, 100.0, 745.0, 1000.0])
@pytest.mark.parametrize("k", [0, 1, 2])
def test_cross_entropy_from_z_is_exact(t, k):
    """z = (t, 0, -t) from an identity input: L = logsumexp(z) - z_k."""
    net = one_node("softmax", "cross_entropy", np.array([[t], [0.0], [-t]]))
    _, tape = forward(net, np.array([[1.0]]))
    rest = math.log1p(math.exp(-t) + math.exp(-2 * t))  # logsumexp(z) = t + rest
    want = (rest, t + rest, 2 * t + rest)[k]  # logsumexp(z) - z_k, without cancelling t - t
    y = np.zeros((1, 3))
    y[0, k] = 1.0
    assert cost(net, tape, y) == pytest.approx(want, rel=1e-12, abs=0.0)


def test_cross_entropy_with_a_tie_at_the_top():
    net = one_node("softmax", "cross_entropy", np.array([[50.0], [50.0], [0.0]]))
    _, tape = forward(net, np.array([[1.0]]))
    want = math.log(2.0) + math.log1p(math.exp(-50.0) / 2.0)  # logsumexp - 50
    assert cost(net, tape, np.array([[1.0, 0.0, 0.0]])) == pytest.approx(want, rel=1e-12)


def test_non_fused_log_loss_clips_at_the_dtype_epsilon():
    """BCE after a tanh output (not the fused pair): y' = 1 is clipped to 1 - eps, as scikit-learn does."""
    loss = get_loss("binary_cross_entropy")
    eps = np.finfo(np.float64).eps
    got = loss.value(np.array([[1.0]]), np.array([[0.0]]))[0]
    assert got == pytest.approx(-math.log1p(-(1.0 - eps)), rel=1e-12)  # -ln(eps) = 36.04
    assert got == pytest.approx(-math.log(eps), rel=1e-9)


SATURATED = {
    "name": "saturated", "inputs": 1,
    "layers": [{"size": 1, "activation": "sigmoid", "weights": [[10.0]], "biases": [0.0]}],
    "loss": "binary_cross_entropy",
    "data": {"x": [[5.0], [-1.0], [0.5]], "y": [[0.0], [0.0], [1.0]]},
    "train": {"epochs": 1, "lr": 0.001},
}


def test_training_reports_the_exact_saturated_loss(tmp_path):
    """Epoch 1's loss is the cost at the initial weights: z = 50, -10, 5 (it was 690.8 from probabilities)."""
    path = tmp_path / "sat.yaml"
    path.write_text(yaml.safe_dump(SATURATED))
    res = CliRunner().invoke(app, ["train", str(path), "--out", str(tmp_path / "run"), "-q", "--json"])
    assert res.exit_code == 0, res.output
    import json
    history = json.loads(res.stdout)["history"]["first"]
    want = (softplus(50.0) + softplus(-10.0) + softplus(5.0) - 5.0) / 3
    assert history["loss"] == pytest.approx(want, rel=1e-12)


def test_cross_entropy_finds_a_tied_row_among_others_and_beside_a_nan_row():
    """The tie correction is taken only when some row has several entries at its max; a NaN row (no entry at its
    max) must not hide a tied row from the count."""
    loss = get_loss("cross_entropy")
    z = np.array([[50.0, 50.0, 0.0], [3.0, 1.0, 2.0], [np.nan, 1.0, 2.0], [-1.0, -1.0, -1.0]])
    y = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    got = loss.value_z(z, y)
    assert got[0] == pytest.approx(math.log(2.0) + math.log1p(math.exp(-50.0) / 2.0), rel=1e-15)
    assert got[1] == pytest.approx(3.0 + math.log1p(math.exp(-2.0) + math.exp(-1.0)) - 1.0, rel=1e-15)
    assert math.isnan(got[2])
    assert got[3] == pytest.approx(math.log(3.0), rel=1e-15)
    for rows in ([0, 2], [2, 0], [1, 3], [2, 3]):  # the tied rows beside a NaN row, and without one
        assert np.array_equal(loss.value_z(z[rows], y[rows]), got[rows], equal_nan=True)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("m,n", [(127, 10), (128, 10), (2049, 10), (5000, 3), (300, 32), (300, 33), (300, 1),
                                 (300, 2), (4096, 17)])
def test_row_max_is_numpys_row_maximum(m, n, dtype):
    """softmax and the cross-entropy take each row's maximum column by column over row blocks when that is faster:
    the same numbers as numpy's reduction, NaN rows, infinities and ties included."""
    from bpcli.nn.activations import row_max

    rng = np.random.default_rng(m * 100 + n)
    z = rng.normal(scale=30.0, size=(m, n)).astype(dtype)
    z[::7, -1] = z[::7, 0]  # ties
    z[3, n // 2] = np.nan
    z[5, 0] = np.inf
    z[11, :] = -np.inf
    z[13, -1] = -np.inf
    got = row_max(z)
    want = np.maximum.reduce(z, axis=1, keepdims=True)
    assert got.shape == (m, 1) and got.dtype == dtype
    assert np.array_equal(got, want, equal_nan=True)
