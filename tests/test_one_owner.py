"""Rules with one owner (issue 23): each is checked in one place, with one message, whichever command asks."""

from __future__ import annotations

import dataclasses
import json
import math
import re

import numpy as np
import pytest
from typer.testing import CliRunner

from bpcli.nn.activations import ACTIVATIONS, get_activation
from bpcli.cli.app import app
from bpcli.config.loader import load_config
from bpcli.nn.engine import backward, forward
from bpcli.explain.chain import explain
from bpcli.explain.result import Update
from bpcli.errors import ArgumentError, ConfigError, sample_row
from bpcli.nn.losses import get_loss
from bpcli.nn.model import build
from bpcli.training.optim import TERMS, l2_penalty
from bpcli.render.numbers import fmt
from bpcli.render.explain_doc import tex_num
from bpcli.render.explain_update import update_lines, update_tex_lines
from bpcli.training.fit import saturation

runner = CliRunner()


@pytest.mark.parametrize("number", [0, -1, 5, 9])
def test_sample_range_is_one_message_for_every_command(tmp_path, number):
    answers = tmp_path / "answers.yaml"
    answers.write_text("v1: 0.1\n")
    expected = f"--sample: there is no sample {number}; the data has 4 samples, numbered from 1 to 4"
    for args in (["explain", "-w", "v1"], ["show"], ["diagnose", str(answers)]):
        r = runner.invoke(app, [*args, "--sample", str(number)])
        assert (2, expected) == (r.exit_code, r.stderr.strip().removeprefix("error: ")), args


def test_sample_row_counts_from_one_and_names_the_argument():
    assert 0 == sample_row(1, 4)
    assert 3 == sample_row(4, 4)
    with pytest.raises(ArgumentError) as err:
        sample_row(5, 4)
    assert "sample" == err.value.argument
    assert "sample: there is no sample 5; the data has 4 samples, numbered from 1 to 4" == str(err.value)
    with pytest.raises(ArgumentError, match="the data has 1 sample, numbered from 1 to 1"):
        sample_row(0, 1)


# --- the L2 penalty: one function for the epoch's records and the run's summary ----------------------------------

def test_l2_penalty_is_half_the_decay_times_the_squared_weights():
    W = [np.array([[0.5, -0.25], [0.75, 1.0]]), np.array([[1.5, -2.0]])]
    squares = 0.25 + 0.0625 + 0.5625 + 1.0 + 2.25 + 4.0
    assert 0.1 * squares == pytest.approx(l2_penalty(W, 0.2), rel=1e-15)
    assert 0.0 == l2_penalty(W, 0.0)


def test_history_and_summary_take_the_penalty_from_one_function():
    """The epoch records (train) and the run's summary (session) report the L2 term through optim.l2_penalty."""
    import bpcli.training.optim
    import bpcli.runs.session
    import bpcli.training.fit
    assert bpcli.training.optim.l2_penalty is bpcli.training.fit.l2_penalty is bpcli.runs.session.l2_penalty


# --- sigmoid-like activations: the derivative's peak comes from the registry --------------------------------------

@pytest.mark.parametrize("name", [n for n in ACTIVATIONS if get_activation(n).saturates == "sigmoid-like"])
def test_grad_peak_is_the_largest_derivative(name):
    act = get_activation(name)
    z = np.linspace(-8.0, 8.0, 160001)
    h = 1e-5
    numeric = (act.fn(z + h) - act.fn(z - h)) / (2 * h)  # central differences, independent of act.grad
    assert act.grad_peak == pytest.approx(float(numeric.max()), rel=1e-9)


def test_saturation_is_measured_against_the_registry_peak(tmp_path, monkeypatch):
    """f'(4.36) = 0.01246 is below 5% of sigmoid's peak 1/4 (0.0125): saturated; against a peak of 0.2 it is not."""
    (tmp_path / "c.yaml").write_text("inputs: 1\nlayers: [{size: 1, activation: sigmoid, weights: [[1.0]], "
                                     "biases: [0.0]}]\ndata: {x: [[0.0]], y: [[0.0]]}\n")
    net = build(load_config(tmp_path / "c.yaml")[0])
    z = 4.36
    s = 1.0 / (1.0 + math.exp(-z))
    assert 0.01 < s * (1.0 - s) < 0.0125
    _, tape = forward(net, np.full((4, 1), z))
    assert (1.0,) == saturation(net, tape)
    layer = net.layers[0]
    flatter = dataclasses.replace(layer, activation=dataclasses.replace(layer.activation, grad_peak=0.2))
    monkeypatch.setattr(net, "layers", [flatter])
    assert (0.0,) == saturation(net, tape)


# --- one lookup for activation and loss names ---------------------------------------------------------------------

@pytest.mark.parametrize("get, kind, typo, hint, word, entry, default", [
    (get_activation, "activation", "sigmod", "sigmoid", "parameter", "elu", "alpha"),
    (get_loss, "loss", "hubber", "huber", "option", "huber", "delta"),
])
def test_activation_and_loss_names_are_looked_up_alike(get, kind, typo, hint, word, entry, default):
    with pytest.raises(ConfigError) as err:
        get(typo, where="here")
    assert str(err.value).startswith(f"here: unknown {kind} '{typo}' (did you mean '{hint}'?); expected one of ")
    with pytest.raises(ConfigError) as err:
        get(entry.upper(), {"beta": 1.0}, where="here")
    assert f"here: {kind} '{entry}' has no {word} 'beta' ({word}s: '{default}')" == str(err.value)


# --- init copies the data file the config parser finds, however the YAML spells it ---------------------------------

def test_init_copies_the_csv_the_parser_reads(tmp_path, monkeypatch):
    shipped = tmp_path / "shipped"
    shipped.mkdir()
    (shipped / "flow.yaml").write_text(  # a flow mapping and a comment naming another file: only the parser knows
        "# csv: decoy.csv\ninputs: 1\nlayers: [{size: 1, activation: identity}]\n"
        "data: {csv: 'points.csv', features: [u], target: [v]}\n")
    (shipped / "points.csv").write_text("u,v\n0,1\n1,3\n")
    (shipped / "decoy.csv").write_text("a,b\n")
    import bpcli.config.loader
    monkeypatch.setattr(bpcli.config.loader, "builtin_config_dir", lambda: shipped)
    out = tmp_path / "out"
    out.mkdir()
    r = runner.invoke(app, ["init", "--example", "flow", str(out / "mine.yaml"), "--json"])
    assert 0 == r.exit_code, r.output
    assert [str(out / "points.csv")] == json.loads(r.stdout)["copied"]
    assert "u,v\n0,1\n1,3\n" == (out / "points.csv").read_text()
    assert not (out / "decoy.csv").exists()


# --- explain's upstream sum dL/da is the engine's, not a second computation -----------------------------------------

def test_explain_reads_the_upstream_sum_the_engine_computed():
    cfg, data = load_config(None)  # the seed network: 2-2-1, sigmoid
    net = build(cfg)
    x, y = data.x, data.y
    _, tape = forward(net, x)
    g = backward(net, tape, y)
    # dL_i/da_A1 = sum_q dL_i/dz_Bq * W_B[q, 0], written out with plain floats
    hand = [sum(float(g.dz[1][i, q]) * float(net.W[1][q, 0]) for q in range(net.W[1].shape[0]))
            for i in range(x.shape[0])]
    np.testing.assert_allclose(g.da[0][:, 0], hand, rtol=1e-14)
    assert g.da[1] is None
    e = explain(net, x, y, "w11", 0.5)
    (up,) = [f for f in e.compact if f.kind == "upstream"]
    assert tuple(float(v) for v in g.da[0][:, 0]) == up.values


# --- the optimiser's update: one term list, rendered as text and as LaTeX ------------------------------------------

def _adam_update() -> Update:
    """Adam's first step (t = 1, no history) with decay, by hand: g = 0.2 + 0.1 * 0.5 = 0.25, m = 0.1 * g,
    v = 0.001 * g^2, m_hat = g, v_hat = g^2, step = 0.01 * 0.25 / (0.25 + 1e-8)."""
    T = {"decay": 0.05, "g": 0.25, "m_prev": 0.0, "v_prev": 0.0, "m": 0.025, "v": 6.25e-05, "c1": 0.1, "c2": 0.001,
         "m_hat": 0.25, "v_hat": 0.0625, "denom": 0.25000001, "step": 0.01 * 0.25 / 0.25000001}
    return Update("adam", True, 0.5, 0.2, 0.5 - T["step"], 0.01, 1, 0.1, tuple(T.items()),
                  (("beta1", 0.9), ("beta2", 0.999), ("epsilon", 1e-8)), "")


def test_adam_update_reads_the_same_in_text_and_latex():
    assert [
        "g = dC/dw11 + wd * w11 = 0.2 + 0.1 * 0.5 = 0.2 + 0.05 = 0.25",
        "m = beta1 * m_prev + (1 - beta1) * g = 0.9 * 0 + (1 - 0.9) * 0.25 = 0.025",
        "v = beta2 * v_prev + (1 - beta2) * g^2 = 0.999 * 0 + (1 - 0.999) * 0.25^2 = 6.25e-05",
        "m_hat = m / (1 - beta1^t) = 0.025 / (1 - 0.9^1) = 0.025 / 0.1 = 0.25",
        "v_hat = v / (1 - beta2^t) = 6.25e-05 / (1 - 0.999^1) = 6.25e-05 / 0.001 = 0.0625",
        "w11 <- w11 - lr * m_hat / (sqrt(v_hat) + eps) = 0.5 - 0.01 * 0.25 / (sqrt(0.0625) + 1e-08) "
        "= 0.5 - 0.01 * 0.25 / 0.25 = 0.5 - 0.01 = 0.49",
    ] == update_lines("w11", _adam_update())
    assert [
        r"g = \frac{\partial C}{\partial w_{11}} + \lambda w_{11} = 0.2 + 0.1 \cdot 0.5 = 0.2 + 0.05 = 0.25",
        r"m = \beta_1 m_{\mathrm{prev}} + (1 - \beta_1)\, g = 0.9 \cdot 0 + (1 - 0.9) \cdot 0.25 = 0.025",
        r"v = \beta_2 v_{\mathrm{prev}} + (1 - \beta_2)\, g^2 = 0.999 \cdot 0 + (1 - 0.999) \cdot 0.25^2 "
        r"= 6.25 \times 10^{-5}",
        r"\hat m = \frac{m}{1 - \beta_1^{t}} = \frac{0.025}{1 - 0.9^{1}} = 0.25",
        r"\hat v = \frac{v}{1 - \beta_2^{t}} = \frac{6.25 \times 10^{-5}}{1 - 0.999^{1}} = 0.0625",
        r"\sqrt{\hat v} + \epsilon = \sqrt{0.0625} + 1 \times 10^{-8} = 0.25",
        r"w_{11} \leftarrow w_{11} - \eta\,\frac{\hat m}{\sqrt{\hat v} + \epsilon} = 0.5 - 0.01 \cdot \frac{0.25}{0.25} "
        r"= 0.5 - 0.01 = 0.49",
    ] == update_tex_lines("w_{11}", _adam_update(), tex_num)


def test_adamw_without_weight_decay_is_adams_step():
    """AdamW on a bias (or with weight_decay 0) decays nothing: no decay term is recorded and the lines are Adam's.
    First step by hand: g = 0.2, m = 0.1 * g, v = 0.001 * g^2, m_hat = g, v_hat = g^2, step = 0.01 * 0.2 / 0.2."""
    T = {"g": 0.2, "m_prev": 0.0, "v_prev": 0.0, "m": 0.02, "v": 4e-05, "c1": 0.1, "c2": 0.001, "m_hat": 0.2,
         "v_hat": 0.04, "denom": 0.20000001, "step": 0.01 * 0.2 / 0.20000001}
    u = Update("adamw", True, 0.5, 0.2, 0.5 - T["step"], 0.01, 1, 0.0, tuple(T.items()),
               (("beta1", 0.9), ("beta2", 0.999), ("epsilon", 1e-8)), "")
    assert [
        "m = beta1 * m_prev + (1 - beta1) * dC/db = 0.9 * 0 + (1 - 0.9) * 0.2 = 0.02",
        "v = beta2 * v_prev + (1 - beta2) * (dC/db)^2 = 0.999 * 0 + (1 - 0.999) * 0.2^2 = 4e-05",
        "m_hat = m / (1 - beta1^t) = 0.02 / (1 - 0.9^1) = 0.02 / 0.1 = 0.2",
        "v_hat = v / (1 - beta2^t) = 4e-05 / (1 - 0.999^1) = 4e-05 / 0.001 = 0.04",
        "b <- b - lr * m_hat / (sqrt(v_hat) + eps) = 0.5 - 0.01 * 0.2 / (sqrt(0.04) + 1e-08) "
        "= 0.5 - 0.01 * 0.2 / 0.2 = 0.5 - 0.01 = 0.49",
    ] == update_lines("b", u)
    assert r"b \leftarrow b - \eta\,\frac{\hat m}{\sqrt{\hat v} + \epsilon} = 0.5 - 0.01 \cdot \frac{0.2}{0.2} " \
        r"= 0.5 - 0.01 = 0.49" == update_tex_lines("b", u, tex_num)[-1]


def test_negative_factors_are_bracketed_in_both_forms():
    """Plain descent, 0.3 - 0.1 * (-2e-05) = 0.300002: a negative factor in parentheses, and in LaTeX a power of ten."""
    u = Update("gd", True, 0.3, -2e-05, 0.300002, 0.1, 1, 0.0, (("decay", 0.0), ("g", -2e-05), ("step", -2e-06)),
               (), "")
    assert ["b <- b - lr * dC/db = 0.3 - 0.1 * (-2e-05) = 0.300002"] == update_lines("b", u)
    assert [r"b \leftarrow b - \eta\,\frac{\partial C}{\partial b} = 0.3 - 0.1 \cdot (-2 \times 10^{-5}) = 0.300002"] \
        == update_tex_lines("b", u, tex_num)


_NUMBER = re.compile(r"(?<![\w.])-?\d+(?:\.\d+)?(?:e[-+]?\d+)?")


def _numbers(line: str, P: str) -> list[float]:
    """The numbers a line shows (the parameter's symbol left out; LaTeX's 1.2 \\times 10^{-5} read as 1.2e-5)."""
    line = re.sub(r"(-?\d+(?:\.\d+)?) \\times 10\^\{(-?\d+)\}", r"\1e\2", line.replace(P, "P"))
    return [float(s) for s in _NUMBER.findall(line)]


def _updates(optimizer: str):
    """The seed network's next update of w11 (a weight) and b_B (a bias) with `optimizer`, each with and without
    weight decay and the L1 term, at the third step with nonzero optimiser state (so every term has a number)."""
    cfg, data = load_config(None)
    net = build(cfg)
    buffers = {f"{kind}:{key}": np.full_like(p, 0.03 * (i + 1))
               for i, (kind, (key, p)) in enumerate((k, kp) for k in "mv" for kp in
                                                      (("A.W", net.W[0]), ("A.b", net.b[0]), ("B.W", net.W[1]),
                                                       ("B.b", net.b[1])))}
    for wd, l1 in ((0.0, 0.0), (0.01, 0.0), (0.0, 0.003), (0.01, 0.003)):
        train = dataclasses.replace(cfg.train, optimizer=optimizer, lr=0.05, weight_decay=wd, l1=l1)
        for name in ("w11", "b_B"):
            e = explain(net, data.x, data.y, name, train, buffers={k: v.copy() for k, v in buffers.items()}, step=2)
            yield f"{optimizer} wd={wd} l1={l1} {name}", e.update


@pytest.mark.parametrize("optimizer", sorted(TERMS))
def test_text_and_latex_show_the_same_steps_and_numbers(optimizer):
    """One list of pieces, two renderings: line for line the same numbers. The only steps one form has alone: the
    LaTeX writes sqrt(v) + eps = denom as its own line (the text inline in the update's line), and the text writes
    the bias corrections' division out (m / c1, v / c2); adamw's text goes from sqrt(v_hat) + eps to the step."""
    for case, u in _updates(optimizer):
        text, tex = update_lines("w11", u), update_tex_lines("w_{11}", u, tex_num)
        roots = [ln for ln in tex if ln.startswith(r"\sqrt")]
        assert len(roots) == (optimizer in ("rmsprop", "adagrad", "adam", "adamw")), case
        shared = [ln for ln in tex if ln not in roots]
        assert len(text) == len(shared) >= 1, case
        inline, denom = set(), set()  # sqrt(v) + eps's numbers, which the text writes in the update's line; = denom
        for ln in roots:
            *inline_numbers, result = _numbers(ln, "w_{11}")
            inline |= set(inline_numbers)
            denom.add(result)
        written_out = {float(fmt(u.term("c1"))), float(fmt(u.term("c2")))} if "c1" in dict(u.terms) else set()
        text_skips = denom if optimizer == "adamw" else set()  # adamw's text goes from the sqrt to the step
        for a, b in zip(text, shared):
            na, nb = set(_numbers(a, "w11")), set(_numbers(b, "w_{11}"))
            assert na - nb <= inline | written_out and nb - na <= text_skips, (case, a, b)


# --- the core names its argument; the command line says the flag ---------------------------------------------------

def test_core_names_out_and_the_cli_says_the_flag(tmp_path):
    from bpcli.plots.animate import check_out
    from bpcli.runs.claim import check_target
    from bpcli.plots.plot import make_folder

    afile = tmp_path / "afile"
    afile.write_text("x")
    for call, problem in ((lambda: check_target(afile, False), f"{afile} exists and is not a folder; choose another path"),
                          (lambda: make_folder(afile), f"{afile} is a file, not a folder"),
                          (lambda: check_out(tmp_path / "a.txt"), "give a file ending in .gif, .svg or .mp4; found 'a.txt'")):
        with pytest.raises(ArgumentError) as err:
            call()
        assert ("out", f"out: {problem}") == (err.value.argument, str(err.value))
    r = runner.invoke(app, ["train", "--out", str(afile)])
    assert (2, f"error: --out: {afile} exists and is not a folder; choose another path") == (r.exit_code, r.stderr.strip())
    r = runner.invoke(app, ["train", "--out", str(afile), "--json"])
    assert f"--out: {afile} exists and is not a folder; choose another path" == json.loads(r.stdout)["error"]["message"]


@pytest.mark.parametrize("kwargs, args, argument, problem", [
    ({"seed": -1}, ["--seed", "-1"], "seed", "must be 0 or more, found -1"),
    ({"size": "2-2"}, ["--size", "2-2"], "size",
     "give 2 to 4 layers after the inputs, each of 1 to 4 nodes (e.g. 2-2-1 or 2-3-2-1), found '2-2'"),
    ({"samples": 9}, ["--n-samples", "9"], "samples", "1 to 4 samples fit on a sheet, found 9"),
])
def test_exercise_names_its_argument_and_the_cli_the_flag(kwargs, args, argument, problem):
    from bpcli.teach.exercise import make_sheet
    with pytest.raises(ArgumentError) as err:
        make_sheet(**kwargs)
    assert (argument, f"{argument}: {problem}") == (err.value.argument, str(err.value))
    r = runner.invoke(app, ["exercise", *args])
    flag = args[0]  # the core names its argument (samples); the command line says its flag (--n-samples)
    assert (2, f"error: {flag}: {problem}") == (r.exit_code, r.stderr.strip())
