"""The fast training path (kernels.StepPlan, in-place optimiser) gives bit for bit the plain implementation's numbers."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

import reference_train as ref
from bpcli import tiny, train
from bpcli.config import load_config
from bpcli.model import build
from bpcli.schema import TrainConfig
from bpcli.data import Dataset
from bpcli.data import prepare

from conftest import random_data, random_net

@pytest.fixture(autouse=True)
def numpy_path_only(monkeypatch):
    """These tests compare the numpy path with the reference bit for bit: no pure-Python tiny path."""
    monkeypatch.setattr(tiny, "ENABLED", False)


FIELDS = ("epoch", "loss", "val_loss", "metric", "val_metric", "grad_norm", "weight_norm", "update_ratio",
          "saturation")


def _dataset(x, y, task):
    return Dataset(x, y, tuple(f"x{i}" for i in range(x.shape[1])), tuple(f"y{i}" for i in range(y.shape[1])),
                   None, task)


def _run(fit, net, data, val, settings, state=None, stop=lambda: False):
    net = net.copy()
    state = state or fit.__globals__["TrainState"]()
    history = [tuple(getattr(r, f) for f in FIELDS) for r in fit(net, data, val, settings, state, stop)]
    return net, history, state


GRAD_NORM = FIELDS.index("grad_norm")


def assert_same_history(hist_a, hist_b, dtype):
    """Every field equal, except grad_norm (a BLAS dot instead of np.sum(dW * dW)): equal to rounding."""
    assert len(hist_a) == len(hist_b)
    for a, b in zip(hist_a, hist_b):
        assert a[:GRAD_NORM] + a[GRAD_NORM + 1:] == b[:GRAD_NORM] + b[GRAD_NORM + 1:]
        rtol = 1e-5 if dtype == np.float32 else 1e-13
        np.testing.assert_allclose(a[GRAD_NORM], b[GRAD_NORM], rtol=rtol)


def assert_same_training(net, data, val, settings):
    """Weights, every EpochRecord field but seconds, optimiser buffers and RNG state: all identical."""
    net_a, hist_a, st_a = _run(ref.fit, net, data, val, settings)
    net_b, hist_b, st_b = _run(train.fit, net, data, val, settings)
    assert_same_history(hist_a, hist_b, net.dtype)
    for a, b in zip(net_a.W + net_a.b, net_b.W + net_b.b):
        if a is None:
            assert b is None
        else:
            assert a.dtype == b.dtype
            np.testing.assert_array_equal(a, b)
    assert st_a.buffers.keys() == st_b.buffers.keys()
    for k in st_a.buffers:
        np.testing.assert_array_equal(st_a.buffers[k], st_b.buffers[k])
    assert (st_a.epoch, st_a.step, st_a.status, st_a.rng_state) == (st_b.epoch, st_b.step, st_b.status, st_b.rng_state)
    return hist_b


def test_seed_network_trains_bit_for_bit_like_the_plain_loop():
    cfg, data = load_config(None)
    p = prepare(cfg, data)
    settings = dataclasses.replace(cfg.train, epochs=300)
    hist = assert_same_training(build(cfg), p.train, p.val, settings)
    assert hist[-1][1] < hist[0][1]


CASES = [
    # hidden, output, loss, optimizer, batch, dtype, bias, weight_decay
    ("sigmoid", "sigmoid", "squared_error", "gd", None, "float64", "on", 0.0),
    ("tanh", "softmax", "cross_entropy", "sgd", 7, "float64", "on", 0.0),
    ("relu", "softmax", "cross_entropy", "sgd", 8, "float32", "on", 0.0),
    ("relu", "identity", "squared_error", "momentum", 5, "float64", "shared", 0.01),
    ("tanh", "sigmoid", "binary_cross_entropy", "adam", 6, "float32", "frozen", 0.0),
    ("gelu", "identity", "huber", "adam", None, "float64", "off", 0.001),
    ("elu", "tanh", "squared_error", "sgd", 4, "float32", "on", 0.0),
    ("leaky_relu", "softmax", "squared_error", "momentum", 9, "float64", "on", 0.0),
    ("silu", "sigmoid", "cross_entropy", "gd", None, "float64", "on", 0.0),
    ("softplus", "identity", "absolute_error", "sgd", 10, "float64", "on", 0.0),
]


@pytest.mark.parametrize("hidden,output,loss,opt,batch,dtype,bias,wd", CASES)
def test_every_kind_of_network_trains_bit_for_bit_like_the_plain_loop(hidden, output, loss, opt, batch, dtype, bias,
                                                                        wd):
    rng = np.random.default_rng(11)
    net = random_net(rng, 3, [5, 4, 3], hidden=hidden, output=output, loss=loss, bias=bias)
    if dtype == "float32":
        net = net.astype(np.float32)
    x, y = random_data(rng, net, 23)
    task = "classification" if loss in ("cross_entropy", "binary_cross_entropy") else "regression"
    data, val = _dataset(x[:18], y[:18], task), _dataset(x[18:], y[18:], task)
    lr = 0.01 if opt == "adam" else 0.1
    settings = TrainConfig(optimizer=opt, lr=lr, epochs=6, batch_size=batch, seed=5, weight_decay=wd, dtype=dtype,
                           patience=3)
    assert_same_training(net, data, val, settings)


def test_one_output_classification_and_float32_relu_dead_units_match():
    rng = np.random.default_rng(2)
    net = random_net(rng, 2, [6, 1], hidden="relu", output="sigmoid", loss="squared_error").astype(np.float32)
    net.b[0][:3] = -50.0  # three dead relu units: saturation must count them the same way
    x = rng.normal(size=(20, 2))
    y = (x[:, :1] * x[:, 1:] > 0).astype(float)
    assert_same_training(net, _dataset(x, y, "classification"), None,
                         TrainConfig(optimizer="sgd", lr=0.5, epochs=5, batch_size=6, seed=1, dtype="float32"))


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_divergence_and_interruption_roll_back_like_the_plain_loop():
    rng = np.random.default_rng(4)
    net = random_net(rng, 2, [3, 1], hidden="identity", output="identity", loss="squared_error")
    x, y = random_data(rng, net, 12)
    data = _dataset(x * 100, y, "regression")
    settings = TrainConfig(optimizer="gd", lr=50.0, epochs=40)
    hist = assert_same_training(net, data, None, settings)
    assert 0 < len(hist) < 40  # diverged after a few epochs, rolled back the same way
    calls = {"n": 0}

    def stop():
        calls["n"] += 1
        return calls["n"] == 9

    settings = TrainConfig(optimizer="momentum", lr=0.01, epochs=10, batch_size=4, seed=3)
    results = []
    for fit in (ref.fit, train.fit):
        calls["n"] = 0
        results.append(_run(fit, net, _dataset(x, y, "regression"), None, settings, stop=stop))
    (na, ha, sa), (nb, hb, sb) = results
    assert_same_history(ha, hb, np.float64)
    assert sa.status == sb.status == "interrupted"
    assert (sa.epoch, sa.step, sa.rng_state) == (sb.epoch, sb.step, sb.rng_state)
    for a, b in zip(na.W + na.b, nb.W + nb.b):
        np.testing.assert_array_equal(a, b)
    for k in sa.buffers:
        np.testing.assert_array_equal(sa.buffers[k], sb.buffers[k])


def test_the_comparison_fails_when_one_update_differs():
    """A must-fail check: a training run that differs in one ulp is caught."""
    cfg, data = load_config(None)
    p = prepare(cfg, data)
    settings = dataclasses.replace(cfg.train, epochs=3)
    net = build(cfg)
    nudged = net.copy()
    nudged.W[1][0, 0] = np.nextafter(nudged.W[1][0, 0], np.inf)
    _, ha, _ = _run(ref.fit, net, p.train, None, settings)
    _, hb, _ = _run(train.fit, nudged, p.train, None, settings)
    assert ha != hb
