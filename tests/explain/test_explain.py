"""bpcli explain: every factor against a hand derivation, the total against the engine, the views and the CLI."""

from __future__ import annotations

import dataclasses
import io
import json
import math
import re

import numpy as np
import pytest
from rich.console import Console
from typer.testing import CliRunner

from bpcli.nn.activations import ACTIVATIONS
from bpcli.cli.app import app
from bpcli.cli.common import split_names
from bpcli.config.loader import load_config
from bpcli.nn.engine import backward, forward
from bpcli.errors import NameError_
from bpcli.explain.chain import PATH_LIMIT, explain, explain_many, relative_error
from bpcli.explain.result import tex_symbol
from bpcli.nn.losses import LOSSES
from bpcli.nn.model import build
from bpcli.render.numbers import fmt, fmt_error
from bpcli.render.explain import explain_view

from tests.conftest import random_data, random_net

# --- the seed network at fixed weights, derived by hand ----------------------------------------

W = {"w11": 0.15, "w12": -0.2, "w21": 0.25, "w22": 0.3, "b_A1": 0.1, "b_A2": -0.1, "v1": 0.4, "v2": -0.5, "b_B": 0.05}
X = [(0.5, 1.0), (-1.0, 0.5), (2.0, -0.5)]
Y = [1.0, 0.0, 1.0]
LR = 0.5

SEED_FIXED = f"""
version: 1
name: seed-fixed
inputs: [x1, x2]
layers:
  - {{size: 2, activation: sigmoid, weights: [[{W['w11']}, {W['w12']}], [{W['w21']}, {W['w22']}]],
      biases: [{W['b_A1']}, {W['b_A2']}]}}
  - {{size: 1, activation: sigmoid, weights: [[{W['v1']}, {W['v2']}]], biases: [{W['b_B']}]}}
loss: squared_error
data:
  x: {[list(r) for r in X]}
  y: {[[v] for v in Y]}
train: {{lr: {LR}, epochs: 1}}
"""


def sig(z: float) -> float:
    return 1.0 / (1.0 + math.exp(-z))


def hand_forward(w: dict, x1: float, x2: float) -> dict:
    """The seed's forward pass in plain floats."""
    zA1 = w["w11"] * x1 + w["w12"] * x2 + w["b_A1"]
    zA2 = w["w21"] * x1 + w["w22"] * x2 + w["b_A2"]
    o1, o2 = sig(zA1), sig(zA2)
    zB = w["v1"] * o1 + w["v2"] * o2 + w["b_B"]
    return {"zA1": zA1, "zA2": zA2, "o1": o1, "o2": o2, "zB": zB, "yp": sig(zB)}


def hand_cost(w: dict) -> float:
    return sum(0.5 * (y - hand_forward(w, *x)["yp"]) ** 2 for x, y in zip(X, Y)) / len(X)


def hand_factors(name: str) -> list[list[float]]:
    """For each sample, the factors of dL_i/d(name), loss first, by the chain rule on paper."""
    rows = []
    for (x1, x2), y in zip(X, Y):
        h = hand_forward(W, x1, x2)
        dLdy = h["yp"] - y  # L = 1/2 (y - y')^2
        fB = h["yp"] * (1 - h["yp"])  # sigmoid'
        fA1 = h["o1"] * (1 - h["o1"])
        fA2 = h["o2"] * (1 - h["o2"])
        rows.append({
            "v1": [dLdy, fB, h["o1"]], "v2": [dLdy, fB, h["o2"]], "b_B": [dLdy, fB, 1.0],
            "w11": [dLdy, fB, W["v1"], fA1, x1], "w12": [dLdy, fB, W["v1"], fA1, x2],
            "w21": [dLdy, fB, W["v2"], fA2, x1], "b_A1": [dLdy, fB, W["v1"], fA1, 1.0],
            "b_A2": [dLdy, fB, W["v2"], fA2, 1.0],
        }[name])
    return rows


@pytest.fixture(scope="module")
def seed_cfg(tmp_path_factory):
    p = tmp_path_factory.mktemp("cfg") / "seed_fixed.yaml"
    p.write_text(SEED_FIXED)
    return p


@pytest.fixture(scope="module")
def seed_net(seed_cfg):
    cfg, data = load_config(seed_cfg)
    return build(cfg), data


SEED_SYMBOLS = {
    "v1": ["dL/dy'", "f_B'(z_B)", "o1"],
    "v2": ["dL/dy'", "f_B'(z_B)", "o2"],
    "b_B": ["dL/dy'", "f_B'(z_B)", "1"],
    "w11": ["dL/dy'", "f_B'(z_B)", "v1", "f_A1'(z_A1)", "x1"],
    "w12": ["dL/dy'", "f_B'(z_B)", "v1", "f_A1'(z_A1)", "x2"],
    "w21": ["dL/dy'", "f_B'(z_B)", "v2", "f_A2'(z_A2)", "x1"],
    "b_A1": ["dL/dy'", "f_B'(z_B)", "v1", "f_A1'(z_A1)", "1"],
    "b_A2": ["dL/dy'", "f_B'(z_B)", "v2", "f_A2'(z_A2)", "1"],
}


@pytest.mark.parametrize("name", list(SEED_SYMBOLS))
def test_seed_factors_equal_the_hand_derivation(seed_net, name):
    net, data = seed_net
    e = explain(net, data.x, data.y, name, LR)
    hand = hand_factors(name)
    assert SEED_SYMBOLS[name] == [f.symbol for f in e.columns]
    for i, row in enumerate(hand):
        for f, v in zip(e.columns, row):
            assert abs(f.values[i] - v) <= 1e-12, (name, i, f.symbol)
        assert abs(e.products[i] - math.prod(row)) <= 1e-12
    mean = sum(math.prod(r) for r in hand) / len(hand)
    # central difference on the hand-written cost, independent of the engine
    hd = 1e-6
    up, down = dict(W), dict(W)
    up[name] += hd
    down[name] -= hd
    fd = (hand_cost(up) - hand_cost(down)) / (2 * hd)
    assert abs(e.mean - mean) <= 1e-12
    assert abs(e.mean - e.engine) <= 1e-9
    assert abs(e.mean - e.numeric.gradient) <= 1e-9
    assert abs(e.mean - fd) <= 1e-9
    assert e.numeric.agrees and e.agrees
    assert abs(e.update.new - (W[name] - LR * e.engine)) <= 1e-15
    assert e.update.old == W[name]


def test_seed_v1_steps_use_the_seed_symbols(seed_net):
    net, data = seed_net
    e = explain(net, data.x, data.y, "v1", LR)
    assert ["dC/dv1 = 1/m * sum_i dL_i/dv1", "dL_i/dv1 = dL_i/dy' * dy'/dv1", "dy'/dv1 = f_B'(z_B) * dz_B/dv1",
            "dz_B/dv1 = o1"] == [s.text for s in e.steps]
    assert "dL/dy' = (y' - y)" in e.steps[1].note
    assert "f'(z) = f(z) * (1 - f(z))" in e.steps[2].note
    assert "dL_i/dv1 = dL/dy' * f_B'(z_B) * o1" == e.chain.text
    w = explain(net, data.x, data.y, "w11", LR)
    assert "dL_i/dw11 = dL/dy' * f_B'(z_B) * v1 * f_A1'(z_A1) * x1" == w.chain.text


def render(report_or_view, width: int) -> str:
    buf = io.StringIO()
    Console(file=buf, width=width, highlight=False, color_system=None).print(
        report_or_view if not hasattr(report_or_view, "explanations") else explain_view(report_or_view))
    return buf.getvalue()


def test_printed_seed_rows_are_the_hand_values(seed_net):
    net, data = seed_net
    for name in ("v1", "w11"):
        report = explain_many(net, data.x, data.y, [name], LR, title="seed-fixed", source="test")
        text = render(report, 120)
        lines = text.splitlines()
        for i, ((x1, x2), y, row) in enumerate(zip(X, Y, hand_factors(name))):
            yp = hand_forward(W, x1, x2)["yp"]
            expected = [str(i + 1), fmt(x1), fmt(x2), fmt(y), fmt(yp)] + [fmt(v) for v in row] + [fmt(math.prod(row))]
            found = [ln.split() for ln in lines if ln.split()[:1] == [str(i + 1)] and len(ln.split()) == len(expected)]
            assert [expected] == found, name
        mean = sum(math.prod(r) for r in hand_factors(name)) / 3
        assert [["mean", fmt(mean)]] == [ln.split() for ln in lines if ln.split()[:1] == ["mean"] and len(ln.split()) == 2]
        assert f"dC/d{name} = 1/3 * sum_i dL_i/d{name} = {fmt(mean)}" in text


# --- the checkers fail on wrong input -----------------------------------------------------------


def broken_sigmoid_net(net):
    """The same network with a wrong derivative (2x too big) for the output sigmoid."""
    act = net.layers[-1].activation
    bad = dataclasses.replace(act, grad=lambda z, a: 2 * a * (1 - a))
    layers = net.layers[:-1] + (dataclasses.replace(net.layers[-1], activation=bad),)
    out = net.copy()
    out.layers = layers
    return out


def test_numeric_check_fails_on_a_wrong_derivative(seed_net):
    net, data = seed_net
    e = explain(broken_sigmoid_net(net), data.x, data.y, "v1", LR)
    assert not e.numeric.agrees
    assert e.numeric.rel_error > 0.1
    assert "disagree" in e.numeric.note
    report = explain_many(broken_sigmoid_net(net), data.x, data.y, ["v1"], LR)
    assert not report.ok
    assert "DISAGREES" in render(report, 100)


def test_engine_agreement_fails_when_the_mean_differs(seed_net):
    net, data = seed_net
    e = explain(net, data.x, data.y, "v1", LR)
    assert e.agrees
    wrong = dataclasses.replace(e, engine=e.engine * 1.001)
    assert not wrong.agrees
    assert "differs from the mean" in render(explain_view_of(wrong), 100)


def test_paths_verdict_fails_when_the_paths_do_not_add_up(seed_net):
    net, data = seed_net
    e = explain(net, data.x, data.y, "w11", LR, paths=True)
    assert "the paths add up" in render(explain_view_of(e), 100)
    wrong = dataclasses.replace(e, paths=dataclasses.replace(e.paths, total=e.paths.total + 1e-3))
    assert "do NOT add up" in render(explain_view_of(wrong), 100)


def explain_view_of(e):
    from bpcli.explain.result import ExplainReport
    return explain_view(ExplainReport("t", "t", False, (e,)))


def test_cli_exits_1_when_the_numeric_check_fails(monkeypatch):
    import bpcli.nn.model as config_mod
    real = config_mod.get_activation

    def broken(name, params=None, where="activation"):
        act = real(name, params, where)
        return dataclasses.replace(act, grad=lambda z, a: 2 * a * (1 - a)) if act.name == "sigmoid" else act

    monkeypatch.setattr(config_mod, "get_activation", broken)
    r = CliRunner().invoke(app, ["explain", "--weight", "v1"])
    assert 1 == r.exit_code
    assert "v1: the gradient" in r.stderr and "disagrees" in r.stderr


# --- random networks: the total is the engine's gradient, the paths add up to it -----------------


def outputs_for(loss: str) -> list[str]:
    if loss == "cross_entropy":
        return ["softmax", "sigmoid"]
    if loss == "binary_cross_entropy":
        return ["sigmoid", "softmax"]
    return ["identity", "tanh", "softmax"]


HIDDEN = [h for h in ACTIVATIONS if h != "softmax"]
COMBOS = [(o, l) for l in LOSSES for o in outputs_for(l)]
# every hidden activation 4 times, every output/loss pair 2 or 3 times, every depth 9 times
CASES = [(HIDDEN[k % len(HIDDEN)], *COMBOS[k % len(COMBOS)]) for k in range(4 * len(HIDDEN))]
SIZES = {1: [], 2: [3], 3: [3, 2], 4: [2, 3, 2]}


def engine_grads(net, x, y) -> dict[str, float]:
    g = backward(net, forward(net, x)[1], y)
    return {r.name: float((g.dW[r.layer] if r.kind == "W" else g.db[r.layer])[r.index]) for r in net.param_refs()}


def _in_the_noise(e) -> bool:
    """Inconclusive only for a gradient that is 0 in exact arithmetic (a shared bias under softmax, a symmetric
    sum of absolute-error signs): both values within the 1e-9 the check allows, so it cannot say."""
    return e.numeric.verdict == "inconclusive" and max(abs(e.engine), abs(e.numeric.gradient)) <= 1e-9


@pytest.mark.parametrize("hidden,output,loss", CASES)
def test_random_networks_total_equals_engine_gradient(hidden, output, loss):
    k = CASES.index((hidden, output, loss))
    depth = 1 + k % 4
    rng = np.random.default_rng(100 + k)
    n_out = 3 if output == "softmax" else 2
    net = random_net(rng, 2, SIZES[depth] + [n_out], hidden=hidden, output=output, loss=loss,
                     bias=("on", "shared", "on", "frozen")[k % 4])
    x, y = random_data(rng, net, 4)
    if loss in ("absolute_error", "huber"):
        y = y * 3  # away from the kink at y' = y
    expected = engine_grads(net, x, y)
    for ref in net.param_refs():
        e = explain(net, x, y, ref.name, 0.1, paths=True)
        assert e.paths.count <= PATH_LIMIT and e.paths.listed is not None
        scale = max(abs(expected[ref.name]), 1e-12)
        assert abs(e.mean - expected[ref.name]) <= 1e-12 * scale + 1e-15, ref.name
        assert abs(e.paths.total - expected[ref.name]) <= 1e-12 * scale + 1e-15, ref.name
        assert e.engine_samples_diff <= 1e-12
        assert e.numeric.agrees or _in_the_noise(e), (ref.name, e.numeric)


@pytest.mark.parametrize("depth", [1, 2, 3, 4])
@pytest.mark.parametrize("bias", ["on", "off", "shared", "frozen"])
def test_every_depth_and_bias_mode_with_fused_softmax(depth, bias):
    rng = np.random.default_rng(depth * 10 + len(bias))
    net = random_net(rng, 3, SIZES[depth] + [3], hidden="tanh", output="softmax", loss="cross_entropy", bias=bias)
    x, y = random_data(rng, net, 6)
    expected = engine_grads(net, x, y)
    for ref in net.param_refs():
        e = explain(net, x, y, ref.name, 0.1, paths=True)
        assert abs(e.mean - expected[ref.name]) <= 1e-12 * max(abs(expected[ref.name]), 1e-12) + 1e-15
        assert abs(e.paths.total - expected[ref.name]) <= 1e-12 * max(abs(expected[ref.name]), 1e-12) + 1e-15
        if ref.kind == "b" and net.layers[ref.layer].bias == "frozen":
            assert not e.update.trainable and e.update.new == e.update.old


def test_more_than_64_paths_are_counted_not_listed():
    rng = np.random.default_rng(5)
    net = random_net(rng, 2, [5, 5, 5], hidden="tanh", output="softmax", loss="squared_error")
    x, y = random_data(rng, net, 3)
    e = explain(net, x, y, "w11", 0.1, paths=True)
    assert 125 == e.paths.count  # 5 nodes in B, 5 outputs, 5 through the softmax Jacobian
    assert e.paths.listed is None
    assert abs(e.mean - e.engine) <= 1e-12


def test_softmax_says_which_derivative_it_uses():
    rng = np.random.default_rng(2)
    fused = random_net(rng, 2, [3, 3], output="softmax", loss="cross_entropy")
    full = random_net(rng, 2, [3, 3], output="softmax", loss="squared_error")
    xf, yf = random_data(rng, fused, 4)
    e = explain(fused, xf, yf, "v21", 0.1)
    assert "fused" == e.output_mode and "dL_i/dz_B2 = y'2 - y2" == e.steps[2].text
    assert "shortcut" in e.steps[2].note
    xs, ys = random_data(rng, full, 4)
    e = explain(full, xs, ys, "v21", 0.1, sample=1)
    assert "softmax_jacobian" == e.output_mode and "full softmax Jacobian" in e.steps[2].note
    jac = e.sums[0]
    assert 3 == len(jac.rows)
    assert abs(sum(r.product for r in jac.rows) - jac.total) <= 1e-15
    assert abs(jac.total * e.compact[-1].values[1] - e.products[1]) <= 1e-15


def test_upstream_sum_table_collects_the_downstream_deltas():
    rng = np.random.default_rng(4)
    net = random_net(rng, 2, [2, 3, 1], hidden="tanh", output="sigmoid")
    x, y = random_data(rng, net, 5)
    e = explain(net, x, y, "w12", 0.1, sample=2)
    up = e.sums[0]
    _, tape = forward(net, x)
    g = backward(net, tape, y)
    assert [float(g.dz[1][2, q]) for q in range(3)] == [r.delta for r in up.rows]
    assert [float(net.W[1][q, 0]) for q in range(3)] == [r.weight for r in up.rows]
    assert ["v11", "v21", "v31"] == [r.weight_symbol for r in up.rows]
    assert abs(up.total - sum(r.product for r in up.rows)) <= 1e-15
    fp, delta, inp = up.combine
    assert abs(fp.value * up.total - delta.value) <= 1e-15
    assert abs(delta.value * inp.value - e.products[2]) <= 1e-15


def test_unknown_name_raises_with_valid_names(seed_net):
    net, data = seed_net
    with pytest.raises(NameError_, match="w11, w12"):
        explain(net, data.x, data.y, "w33", LR)


def test_helpers():
    assert ["v1", "w[1,2]", "b_A1"] == split_names(["v1,w[1,2]", "b_A1", "v1"])
    assert "w_{11}" == tex_symbol("w11") and "b_{A1}" == tex_symbol("b_A1") and "y'_{2}" == tex_symbol("y'2")
    assert r"\mathrm{rate[1]}" == tex_symbol("rate[1]")
    assert 0.0 == relative_error(0.0, 0.0) and 0.5 == relative_error(1.0, 2.0)


# --- the CLI ---------------------------------------------------------------------------------------


runner = CliRunner()


def test_cli_unknown_weight_exits_2_and_lists_names():
    r = runner.invoke(app, ["explain", "--weight", "[v1]"])
    assert 2 == r.exit_code
    assert "unknown parameter '[v1]'" in r.stderr
    assert "w11, w12, w21, w22, b_A1, b_A2, v1, v2, b_B" in r.stderr
    r = runner.invoke(app, ["explain"])
    assert 2 == r.exit_code and "--weight" in r.stderr
    r = runner.invoke(app, ["explain", "-w", "v1", "--sample", "9"])
    assert 2 == r.exit_code and "no sample 9" in r.stderr


NUMBER = re.compile(r"(?<![\w/.'^])-?\d+(?:\.\d+)?(?:e[-+]\d+)?(?![\w/])")


def json_numbers(obj) -> list[float]:
    if isinstance(obj, bool):
        return []
    if isinstance(obj, (int, float)):
        return [float(obj)]
    if isinstance(obj, dict):
        return [v for x in obj.values() for v in json_numbers(x)]
    if isinstance(obj, list):
        return [v for x in obj for v in json_numbers(x)]
    return []


@pytest.mark.parametrize("args", [["-w", "v1"], ["-w", "w11", "--paths", "--sample", "3"], ["-w", "b_A2,w12"]])
def test_json_parses_and_carries_every_number_the_table_shows(seed_cfg, args):
    r = runner.invoke(app, ["explain", str(seed_cfg), *args, "--json"])
    assert 0 == r.exit_code, r.output
    doc = json.loads(r.stdout)
    assert "explain" == doc["command"]
    shown = set()
    for v in json_numbers(doc):
        shown |= {fmt(v, d) for d in (6, 4, 3, 2)} | {fmt(-v, d) for d in (6, 4)} | {fmt_error(v)}  # errors: 1 decimal
    text = runner.invoke(app, ["explain", str(seed_cfg), *args], env={"COLUMNS": "200"}).stdout
    missing = [tok for tok in NUMBER.findall(text) if tok not in shown and not (tok.isdigit() and int(tok) <= 10)]
    assert [] == missing
    e = doc["explanations"][0]
    assert len(X) == len(e["samples"])
    assert {"weight", "location", "steps", "factors", "samples", "mean", "engine_gradient", "numeric_check",
            "update"} <= set(e)


def test_markdown_and_latex_carry_the_numbers(seed_cfg, seed_net):
    net, data = seed_net
    e = explain(net, data.x, data.y, "w11", LR)
    md = runner.invoke(app, ["explain", str(seed_cfg), "-w", "w11", "--format", "markdown"])
    tex = runner.invoke(app, ["explain", str(seed_cfg), "-w", "w11", "--format", "latex"])
    assert 0 == md.exit_code and 0 == tex.exit_code
    assert "$$" in md.stdout and "| **mean** |" in md.stdout
    assert r"\begin{align*}" in tex.stdout and r"\begin{tabular}" in tex.stdout
    for out in (md.stdout, tex.stdout):
        for f in e.columns:
            for v in f.values:
                assert fmt(v) in out, f.symbol
        for v in (e.mean, e.engine, e.update.new, e.update.old):
            assert fmt(v) in out
    assert r"w_{11} &\leftarrow w_{11}" in tex.stdout and r"w_{11} \leftarrow w_{11}" in md.stdout and r"f_{A1}'(z_{A1})" in md.stdout
    bad = runner.invoke(app, ["explain", "-w", "v1", "--format", "html"])
    assert 2 == bad.exit_code and "unknown format" in bad.stderr


BRACKETS = """
version: 1
name: brackets
inputs: ["[b]x", "rate[1]"]
layers:
  - {size: 3, activation: relu}
  - {size: 2, activation: tanh}
  - {size: 3, activation: softmax}
loss: squared_error
init: {scheme: xavier_uniform, seed: 2}
data:
  x: [[0.1, 0.9], [1.0, -1.0], [0.5, 0.3], [2.0, 0.0], [-1.0, 1.0], [0.0, 0.5], [0.7, 0.2], [1.5, 1.0],
      [2.0, 2.0], [-2.0, 0.3], [0.0, -1.0], [3.0, 1.0]]
  y: [[1,0,0],[0,1,0],[0,0,1],[1,0,0],[0,1,0],[0,0,1],[1,0,0],[0,1,0],[0,0,1],[1,0,0],[0,1,0],[0,0,1]]
train: {lr: 0.1, epochs: 1}
"""


@pytest.mark.parametrize("width", [80, 120])
@pytest.mark.parametrize("args", [
    ["-w", "v1"], ["-w", "w11", "--paths", "--sample", "2"], ["-w", "b_B,v2"],
    ["BRACKETS", "-w", "w12", "--paths"], ["BRACKETS", "-w", "u21", "--sample", "12"], ["BRACKETS", "-w", "v11"],
])
def test_views_fit_the_width_and_keep_bracketed_names(tmp_path, width, args):
    if args[0] == "BRACKETS":
        p = tmp_path / "brackets.yaml"
        p.write_text(BRACKETS)
        args = [str(p)] + args[1:]
    r = runner.invoke(app, ["explain", *args], env={"COLUMNS": str(width)})
    assert 0 == r.exit_code, r.output
    lines = r.stdout.splitlines()
    assert [] == [ln for ln in lines if len(ln) > width]
    assert not any("…" in ln for ln in lines)  # nothing cut off with an ellipsis
    if "brackets" in args[0]:
        if args[-1] != "v11":  # v11's factors come from layer A's outputs: the inputs are no factor and may go
            assert "[b]x" in r.stdout and "rate[1]" in r.stdout
        assert "dL_i/d" in r.stdout


def test_run_folder_explains_the_trained_weights(tmp_path, seed_cfg):
    out = tmp_path / "run"
    r = runner.invoke(app, ["train", str(seed_cfg), "--epochs", "5", "--out", str(out), "-q", "--json"])
    assert 0 == r.exit_code, r.output
    doc = json.loads(runner.invoke(app, ["explain", "--run", str(out), "-w", "v1", "--json"]).stdout)
    from bpcli.runs.store import load_run
    loaded = load_run(out)
    e = doc["explanations"][0]
    assert loaded.net.get(loaded.net.resolve("v1")) == e["value"]
    assert W["v1"] != e["value"]  # trained, not the initial weight
    expected = engine_grads(loaded.net, loaded.prepared.train.x, loaded.prepared.train.y)["v1"]
    assert abs(expected - e["engine_gradient"]) <= 1e-15
    assert str(out) == doc["source"]
