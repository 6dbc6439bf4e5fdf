"""The pure-Python path for very small networks (tiny.py) trains like the numpy path, to rounding."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from bpcli import tiny, train
from bpcli.config import builtin_config_dir, load_config
from bpcli.model import build
from bpcli.schema import TrainConfig
from bpcli.data import Dataset
from bpcli.data import prepare

from conftest import random_data, random_net

FIELDS = ("epoch", "loss", "val_loss", "metric", "val_metric", "grad_norm", "weight_norm", "update_ratio",
          "saturation")
RTOL = 2e-12  # relative to the scale of each quantity over the run (see _scale)


def _dataset(x, y, task):
    return Dataset(x, y, tuple(f"x{i}" for i in range(x.shape[1])), tuple(f"y{i}" for i in range(y.shape[1])),
                   None, task)


def _run(net, data, val, settings, fast, state=None, stop=lambda: False):
    """Train a copy of net with the tiny path on or off; (net, history, state)."""
    net = net.copy()
    state = state or train.TrainState()
    old = tiny.ENABLED
    tiny.ENABLED = fast
    try:
        history = [tuple(getattr(r, f) for f in FIELDS) for r in train.fit(net, data, val, settings, state, stop)]
    finally:
        tiny.ENABLED = old
    return net, history, state


def _near(a, b, scale, what):
    """a and b equal (NaN and inf included) or within RTOL * scale."""
    if a is None or b is None:
        assert a is None and b is None, what
    elif not (a == b or (math.isnan(a) and math.isnan(b))):
        assert abs(a - b) <= RTOL * scale, f"{what}: {a!r} vs {b!r} (scale {scale:.3g})"


def _scale(values) -> float:
    """The largest finite magnitude a quantity takes over the run: rounding differences are relative to it.

    A gradient norm or an update ratio near the end of a run is a small difference of large terms (the
    per-sample gradients, W and W0); its rounding error is that of the terms, not of the small result.
    """
    finite = [abs(v) for v in values if v is not None and math.isfinite(v)]
    return max(finite, default=0.0) or 1e-300


def assert_close_training(fast, slow):
    """Two (net, history, state) runs agree to rounding: every record field, weights, buffers; steps, RNG and
    status exactly."""
    (na, ha, sa), (nb, hb, sb) = fast, slow
    assert len(ha) == len(hb)
    for i, f in enumerate(FIELDS):
        cols = [(ra[i], rb[i]) if isinstance(ra[i], tuple) else ((ra[i],), (rb[i],)) for ra, rb in zip(ha, hb)]
        for l in range(len(cols[0][0]) if cols else 0):
            scale = _scale(b[l] for _, b in cols)
            for e, (a, b) in enumerate(cols):
                if f == "saturation":
                    assert a[l] == b[l], f"epoch {e + 1} {f}"
                else:
                    _near(a[l], b[l], scale, f"epoch {e + 1} {f}[{l}]")
    for a, b in zip(na.W + na.b, nb.W + nb.b):
        if a is None:
            assert b is None
        else:
            assert a.dtype == b.dtype and a.shape == b.shape
            np.testing.assert_allclose(a, b, rtol=0, atol=RTOL * np.max(np.abs(b)))
    g = max((max(r[FIELDS.index("grad_norm")]) for r in hb), default=1.0)
    assert sa.buffers.keys() == sb.buffers.keys()
    for k in sa.buffers:
        assert isinstance(sa.buffers[k], np.ndarray) and sa.buffers[k].shape == sb.buffers[k].shape
        scale = g if k.startswith("m:") else g * g  # momentum: sums of gradients; adam's v: of their squares
        np.testing.assert_allclose(sa.buffers[k], sb.buffers[k], rtol=0, atol=RTOL * scale)
    assert (sa.epoch, sa.step, sa.status, sa.message, sa.rng_state, sa.bad_epochs) == \
        (sb.epoch, sb.step, sb.status, sb.message, sb.rng_state, sb.bad_epochs)


def compare(net, data, val, settings, **kw):
    fast = _run(net, data, val, settings, True, **kw)
    slow = _run(net, data, val, settings, False, **kw)
    assert_close_training(fast, slow)
    return fast


@pytest.mark.parametrize("name", ["seed", "xor"])
def test_shipped_tiny_configs_take_the_fast_path_and_match_numpy(name, monkeypatch):
    cfg, data = load_config(builtin_config_dir() / f"{name}.yaml")
    p = prepare(cfg, data)
    settings = dataclasses.replace(cfg.train, epochs=300)
    net = build(cfg)
    assert tiny.applies(net, p.train, settings)
    slow = _run(net, p.train, p.val, settings, False)

    def no_numpy(*args, **kwargs):
        raise AssertionError("the numpy path ran")

    monkeypatch.setattr(train, "_fit_numpy", no_numpy)
    fast = _run(net, p.train, p.val, settings, True)
    assert_close_training(fast, slow)
    assert fast[1][-1][1] < fast[1][0][1]


def test_the_fast_path_is_deterministic_bit_for_bit():
    cfg, data = load_config(None)
    p = prepare(cfg, data)
    settings = dataclasses.replace(cfg.train, epochs=200)
    a, b = (_run(build(cfg), p.train, None, settings, True) for _ in range(2))
    assert a[1] == b[1]
    for u, v in zip(a[0].W + a[0].b, b[0].W + b[0].b):
        np.testing.assert_array_equal(u, v)


CASES = [
    # hidden, output, loss, optimizer, batch, bias, weight_decay, task
    ("sigmoid", "sigmoid", "squared_error", "gd", None, "on", 0.0, "classification"),
    ("tanh", "sigmoid", "binary_cross_entropy", "adam", None, "on", 0.0, "classification"),
    ("tanh", "sigmoid", "binary_cross_entropy", "sgd", 3, "frozen", 0.0, "classification"),
    ("relu", "identity", "squared_error", "momentum", 4, "shared", 0.01, "regression"),
    ("leaky_relu", "tanh", "huber", "adam", None, "off", 0.001, "regression"),
    ("elu", "identity", "absolute_error", "sgd", 5, "on", 0.0, "regression"),
    ("softplus", "sigmoid", "cross_entropy", "gd", None, "on", 0.0, "classification"),
    ("silu", "identity", "squared_error", "gd", None, "shared", 0.0, "regression"),
    ("gelu", "sigmoid", "squared_error", "momentum", None, "on", 0.0, "classification"),
    ("identity", "relu", "squared_error", "adam", 6, "on", 0.0, "regression"),
    ("tanh", "elu", "huber", "momentum", None, "frozen", 0.0, "regression"),
    ("sigmoid", "softplus", "absolute_error", "gd", None, "on", 0.0, "regression"),
    ("relu", "sigmoid", "binary_cross_entropy", "gd", None, "on", 0.0, "classification"),
]


@pytest.mark.parametrize("hidden,output,loss,opt,batch,bias,wd,task", CASES)
def test_random_tiny_networks_match_the_numpy_path(hidden, output, loss, opt, batch, bias, wd, task):
    rng = np.random.default_rng(7)
    n_out = 2 if loss in ("cross_entropy",) or (task == "regression" and opt == "adam") else 1
    net = random_net(rng, 2, [3, n_out], hidden=hidden, output=output, loss=loss, bias=bias)
    x, y = random_data(rng, net, 14)
    if loss == "cross_entropy":
        y = np.eye(n_out)[rng.integers(0, n_out, size=14)]
    data, val = _dataset(x[:10], y[:10], task), _dataset(x[10:], y[10:], task)
    settings = TrainConfig(optimizer=opt, lr=0.01 if opt == "adam" else 0.2, epochs=300, batch_size=batch, seed=3,
                           weight_decay=wd, patience=40)
    assert tiny.applies(net, data, settings)
    compare(net, data, val, settings)


@pytest.mark.parametrize("convention", ["half_sum", "mean", "sklearn", "sum"])
def test_every_squared_error_convention_and_two_hidden_layers_match(convention):
    rng = np.random.default_rng(3)
    net = random_net(rng, 3, [3, 2, 2], hidden="tanh", output="identity", loss="squared_error",
                     loss_params={"convention": convention})
    x, y = random_data(rng, net, 9)
    compare(net, _dataset(x, y, "regression"), None, TrainConfig(optimizer="sgd", lr=0.05, epochs=100, batch_size=4))


def test_dead_relu_units_are_counted_like_the_numpy_path():
    rng = np.random.default_rng(2)
    net = random_net(rng, 2, [4, 1], hidden="relu", output="sigmoid", loss="squared_error")
    net.b[0][:2] = -50.0  # two dead units
    x = rng.normal(size=(12, 2))
    y = (x[:, :1] * x[:, 1:] > 0).astype(float)
    for batch in (None, 5):  # full batch: counted in the step; mini-batch: on the first samples after the epoch
        _, hist, _ = compare(net, _dataset(x, y, "classification"), None,
                             TrainConfig(optimizer="gd", lr=0.5, epochs=20, batch_size=batch))
        assert hist[-1][-1][0] == 0.5


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@pytest.mark.parametrize("hidden", ["identity", "gelu", "elu"])
def test_divergence_is_reported_by_the_numpy_rules(hidden):
    """A huge learning rate: inf in Python floats (identity) or OverflowError in math (gelu's z**3)."""
    rng = np.random.default_rng(4)
    net = random_net(rng, 2, [3, 1], hidden=hidden, output="identity", loss="squared_error")
    x, y = random_data(rng, net, 12)
    data = _dataset(x * 100, y, "regression")
    fast, hist, state = compare(net, data, None, TrainConfig(optimizer="gd", lr=50.0, epochs=40))
    assert state.status == "diverged" and f"at epoch {len(hist) + 1}" in state.message
    assert all(np.all(np.isfinite(a)) for a in fast.W + fast.b)


def test_interruption_rolls_back_to_the_last_whole_epoch():
    rng = np.random.default_rng(5)
    net = random_net(rng, 2, [3, 1], hidden="tanh", output="identity", loss="squared_error")
    x, y = random_data(rng, net, 12)
    data = _dataset(x, y, "regression")
    for batch, opt in ((4, "momentum"), (None, "adam")):
        calls = {"n": 0}

        def stop():
            calls["n"] += 1
            return calls["n"] == 8

        settings = TrainConfig(optimizer=opt, lr=0.01, epochs=10, batch_size=batch, seed=3)
        runs = []
        for fast in (True, False):
            calls["n"] = 0
            runs.append(_run(net, data, None, settings, fast, stop=stop))
        assert_close_training(*runs)
        assert runs[0][2].status == "interrupted" and runs[0][2].epoch == (2 if batch else 7)


def test_resuming_from_the_state_continues_bit_for_bit():
    rng = np.random.default_rng(6)
    net = random_net(rng, 2, [3, 1], hidden="tanh", output="sigmoid", loss="binary_cross_entropy")
    x, y = random_data(rng, net, 12)
    data = _dataset(x, y, "classification")
    settings = TrainConfig(optimizer="adam", lr=0.05, epochs=30, batch_size=5, seed=9)
    whole, hist, _ = _run(net, data, None, settings, True)
    half, first, state = _run(net, data, None, dataclasses.replace(settings, epochs=12), True)
    rest, second, _ = _run(half, data, None, settings, True, state=state)
    assert first + second == hist
    for a, b in zip(whole.W + whole.b, rest.W + rest.b):
        np.testing.assert_array_equal(a, b)


def test_the_network_and_buffers_are_current_at_every_record():
    cfg, data = load_config(builtin_config_dir() / "xor.yaml")
    p = prepare(cfg, data)
    net = build(cfg)
    state = train.TrainState()
    for rec in train.fit(net, p.train, None, dataclasses.replace(cfg.train, epochs=20), state):
        assert rec.weight_norm == pytest.approx([np.linalg.norm(W) for W in net.W], rel=1e-14)
        assert np.any(state.buffers["m:A.W"] != 0)
    assert state.step == 20


def test_applies_only_to_small_float64_elementwise_networks():
    rng = np.random.default_rng(0)
    net = random_net(rng, 2, [2, 1], hidden="sigmoid", output="sigmoid")
    x, y = random_data(rng, net, 4)
    data = _dataset(x, y, "regression")
    gd = TrainConfig(optimizer="gd")
    assert tiny.applies(net, data, gd)
    assert not tiny.applies(net.astype(np.float32), data, gd)
    soft = random_net(rng, 2, [2, 2], hidden="sigmoid", output="softmax", loss="cross_entropy")
    assert not tiny.applies(soft, _dataset(x, np.eye(2)[[0, 1, 0, 1]], "classification"), gd)
    big = random_net(rng, 8, [16, 1])
    bx, by = random_data(rng, big, 50)
    assert not tiny.applies(big, _dataset(bx, by, "regression"), gd)
    assert tiny.applies(big, _dataset(bx, by, "regression"), TrainConfig(optimizer="sgd", batch_size=1))
    tiny.ENABLED = False
    try:
        assert not tiny.applies(net, data, gd)
    finally:
        tiny.ENABLED = True


def test_the_comparison_catches_a_wrong_derivative(monkeypatch):
    """Must fail: sigmoid's f'(z) off by one part in 10^9 in the generated code is caught."""
    real = tiny._derivative

    def off(name, params, z, a):
        d = real(name, params, z, a)
        return f"({d} * 1.000000001)" if name == "sigmoid" else d

    cfg, data = load_config(None)
    p = prepare(cfg, data)
    settings = dataclasses.replace(cfg.train, epochs=50)
    net = build(cfg)
    slow = _run(net, p.train, None, settings, False)
    monkeypatch.setattr(tiny, "_derivative", off)
    tiny._code.cache_clear()
    fast = _run(net, p.train, None, settings, True)
    tiny._code.cache_clear()
    with pytest.raises(AssertionError):
        assert_close_training(fast, slow)


def test_resumed_buffers_that_are_not_float64_go_to_the_numpy_path(monkeypatch):
    cfg, data = load_config(builtin_config_dir() / "xor.yaml")
    p = prepare(cfg, data)
    settings = dataclasses.replace(cfg.train, epochs=5)
    half, _, state = _run(build(cfg), p.train, None, dataclasses.replace(settings, epochs=2), True)
    state.buffers = {k: v.astype(np.float32) for k, v in state.buffers.items()}
    calls = []
    real = train._fit_numpy

    def spy(*args):
        calls.append(args[4].epoch)
        yield from real(*args)

    monkeypatch.setattr(train, "_fit_numpy", spy)
    _, hist, state = _run(half, p.train, None, settings, True, state=state)
    assert calls == [2] and [h[0] for h in hist] == [3, 4, 5] and state.status == "completed"
