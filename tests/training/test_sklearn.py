"""bpcli reproduces scikit-learn's MLP training exactly: same initial weights and data, three partial_fit steps.

scikit-learn is the reference here (installed by the dev extra, so this runs in CI). Its MLPs use plain SGD
with momentum 0, alpha (L2) 0 or not, full batches, no shuffling: each partial_fit is one gradient step.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from bpcli.cli.app import app

sk = pytest.importorskip("sklearn.neural_network", reason="scikit-learn is the reference (pip install -e '.[dev]')")

SK_ACT = {"tanh": "tanh", "relu": "relu", "sigmoid": "logistic", "identity": "identity"}


def sk_model(kind: str, hidden: str, n_hidden: int, lr: float, alpha: float, m: int):
    cls = sk.MLPRegressor if kind == "regressor" else sk.MLPClassifier
    return cls(hidden_layer_sizes=(n_hidden,), activation=SK_ACT[hidden], solver="sgd", learning_rate_init=lr,
               learning_rate="constant", momentum=0.0, nesterovs_momentum=False, alpha=alpha, batch_size=m,
               shuffle=False, random_state=0)


def run_sklearn(model, X, y, W1, b1, W2, b2, steps: int, classes=None):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        kw = {"classes": classes} if classes is not None else {}
        model.partial_fit(X, y, **kw)  # builds the layers; its weights are replaced next
    model.coefs_ = [W1.T.copy(), W2.T.copy()]
    model.intercepts_ = [b1.copy(), b2.copy()]
    losses = []
    for _ in range(steps):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model.partial_fit(X, y)
        losses.append(model.loss_)
    return model, losses


def run_bpcli(tmp_path, X, Y, hidden, output, loss, W1, b1, W2, b2, lr, wd, steps):
    cfg = {"name": "sk", "inputs": X.shape[1],
           "layers": [{"size": W1.shape[0], "activation": hidden, "weights": W1.tolist(), "biases": b1.tolist()},
                      {"size": W2.shape[0], "activation": output, "weights": W2.tolist(), "biases": b2.tolist()}],
           "loss": loss, "data": {"x": X.tolist(), "y": Y.tolist(), "task": "regression" if output == "identity"
                                  else "classification"},
           "train": {"optimizer": "gd", "lr": lr, "epochs": steps, "weight_decay": wd}}
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(cfg))
    res = CliRunner().invoke(app, ["train", str(tmp_path / "c.yaml"), "--out", str(tmp_path / "r"), "-q", "--json"])
    assert res.exit_code == 0, res.output
    from bpcli.runs.store import checkpoint_dir
    with np.load(checkpoint_dir(tmp_path / "r") / "weights.npz", allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


def init(rng, n_in, n_hidden, n_out):
    return (rng.normal(size=(n_hidden, n_in)) * 0.5, rng.normal(size=n_hidden) * 0.1,
            rng.normal(size=(n_out, n_hidden)) * 0.5, rng.normal(size=n_out) * 0.1)


def assert_same(model, w):
    np.testing.assert_allclose(w["A.W"], model.coefs_[0].T, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(w["A.b"], model.intercepts_[0], rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(w["B.W"], model.coefs_[1].T, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(w["B.b"], model.intercepts_[1], rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("alpha", [0.0, 0.3])
def test_sklearn_convention_trains_like_mlp_regressor_with_three_outputs(tmp_path, alpha):
    rng = np.random.default_rng(0)
    X, Y = rng.normal(size=(6, 2)), rng.normal(size=(6, 3))
    W1, b1, W2, b2 = init(rng, 2, 4, 3)
    model, _ = run_sklearn(sk_model("regressor", "tanh", 4, 0.1, alpha, 6), X, Y, W1, b1, W2, b2, 3)
    # scikit-learn's L2 term alpha / (2 m) ||W||^2 is bpcli's weight_decay = alpha / m
    w = run_bpcli(tmp_path, X, Y, "tanh", "identity", {"name": "squared_error", "convention": "sklearn"},
                  W1, b1, W2, b2, 0.1, alpha / 6, 3)
    assert_same(model, w)


def test_the_former_sklearn_scale_would_not_reproduce_it(tmp_path):
    """Must-fail: the reported-loss scale 1/(2n) (convention mean / 2) trains 3 times slower at the output."""
    rng = np.random.default_rng(0)
    X, Y = rng.normal(size=(6, 2)), rng.normal(size=(6, 3))
    W1, b1, W2, b2 = init(rng, 2, 4, 3)
    model, losses = run_sklearn(sk_model("regressor", "tanh", 4, 0.1, 0.0, 6), X, Y, W1, b1, W2, b2, 3)
    w = run_bpcli(tmp_path, X, Y, "tanh", "identity", {"name": "squared_error", "convention": "mean"},
                  W1, b1, W2, b2, 0.1 / 2, 0.0, 3)  # mean is 1/n sum_k; half of it is 1/(2n) sum_k
    with pytest.raises(AssertionError):
        assert_same(model, w)


def test_reported_loss_is_the_objective_sklearn_differentiates(tmp_path):
    """scikit-learn's loss_ is 1/(2n) sum_k mean over samples; bpcli's sklearn convention reports n times it."""
    rng = np.random.default_rng(0)
    X, Y = rng.normal(size=(6, 2)), rng.normal(size=(6, 3))
    W1, b1, W2, b2 = init(rng, 2, 4, 3)
    _, losses = run_sklearn(sk_model("regressor", "tanh", 4, 0.1, 0.0, 6), X, Y, W1, b1, W2, b2, 3)
    run_bpcli(tmp_path, X, Y, "tanh", "identity", {"name": "squared_error", "convention": "sklearn"},
              W1, b1, W2, b2, 0.1, 0.0, 3)
    from tests.conftest import read_history
    history = read_history(tmp_path / "r")
    for h, sk_loss in zip(history, losses):  # both measured before each step's update
        assert h["loss"] == pytest.approx(3 * sk_loss, rel=1e-12)


def test_softmax_cross_entropy_trains_like_mlp_classifier(tmp_path):
    rng = np.random.default_rng(1)
    X = rng.normal(size=(9, 3))
    labels = np.array([0, 1, 2, 0, 1, 2, 0, 1, 2])
    W1, b1, W2, b2 = init(rng, 3, 5, 3)
    model, _ = run_sklearn(sk_model("classifier", "relu", 5, 0.2, 0.0, 9), X, labels, W1, b1, W2, b2, 3,
                           classes=[0, 1, 2])
    w = run_bpcli(tmp_path, X, np.eye(3)[labels], "relu", "softmax", "cross_entropy", W1, b1, W2, b2, 0.2, 0.0, 3)
    assert_same(model, w)


def test_sigmoid_binary_cross_entropy_trains_like_a_binary_mlp_classifier(tmp_path):
    rng = np.random.default_rng(2)
    X = rng.normal(size=(8, 2))
    labels = np.array([0, 1, 1, 0, 1, 0, 0, 1])
    W1, b1, W2, b2 = init(rng, 2, 3, 1)
    model, _ = run_sklearn(sk_model("classifier", "sigmoid", 3, 0.5, 0.0, 8), X, labels, W1, b1, W2, b2, 3,
                           classes=[0, 1])
    w = run_bpcli(tmp_path, X, labels[:, None].astype(float), "sigmoid", "sigmoid", "binary_cross_entropy",
                  W1, b1, W2, b2, 0.5, 0.0, 3)
    assert_same(model, w)
