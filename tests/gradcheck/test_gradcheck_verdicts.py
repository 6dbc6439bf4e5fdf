"""A checker never says "good" about nothing: not finite, inconclusive, the option ranges, the time estimate.

Every network here is built directly; expected numbers come from plain-float formulas written in the test.
"""

from __future__ import annotations

import io
import json
import math

import numpy as np
import pytest
from rich.console import Console
from typer.testing import CliRunner

from bpcli.nn.activations import get_activation
from bpcli.cli.app import app
from bpcli.explain.chain import explain_many
from bpcli.gradcheck.report import GradcheckOptions
from bpcli.gradcheck.check import check, estimate_seconds
from bpcli.gradcheck.verdict import VERDICTS, judge
from bpcli.nn.losses import get_loss
from bpcli.nn.model import LETTERS, SYMBOLS, Layer, Network
from bpcli.render.gradcheck import gradcheck_view

runner = CliRunner()
ENTRIES = GradcheckOptions(mode="entries", all_entries=True)
X = [[0.5], [-1.0], [2.0]]
Y = [[1.0], [0.0], [-1.0]]


def identity_net(Ws: list[list[list[float]]], bias: float | None = None) -> Network:
    """Identity layers with the given weights, half-sum squared error; one bias on the last layer if given."""
    layers, bs = [], []
    for i, W in enumerate(Ws):
        layers.append(Layer(LETTERS[i], len(W[0]), len(W), get_activation("identity"),
                            "on" if bias is not None and i == len(Ws) - 1 else "off", SYMBOLS[i]))
        bs.append(np.array([bias]) if bias is not None and i == len(Ws) - 1 else None)
    return Network(tuple(f"x{k + 1}" for k in range(len(Ws[0][0]))), tuple(layers), [np.array(W, dtype=float) for W in Ws], bs, get_loss("squared_error"))


def render(report) -> str:
    buf = io.StringIO()
    Console(file=buf, width=120, highlight=False, color_system=None).print(gradcheck_view(report))
    return buf.getvalue()


def by_name(report) -> dict:
    return {r.name: r for r in report.entries}


# --- the rule itself, on plain numbers ---------------------------------------------------------------


def test_judge_names_each_case():
    """fail when |a - n| > tol max(|a|, |n|) + 4 bound; pass when |a - n| and the bound are both within
    tol max(|a|, |n|); inconclusive in between (the bound: what rounding and truncation alone can explain)."""
    cases = [  # (analytic, numeric, bound, expected)
        (0.3, 0.3 * (1 + 1e-9), 1e-12, "good"),
        (0.3, 0.3 * (1 + 1e-5), 1e-9, "ok"),  # within tol 1e-4, bound 1e-9 <= 3e-5
        (0.3, 0.3 * (1 + 1e-9), 1e-4, "inconclusive"),  # agree, but the bound could hide a disagreement of tol
        (0.3, 0.33, 1e-3, "wrong"),  # 0.03 > 3.3e-5 + 4e-3
        (0.3, 0.33, 1e-2, "inconclusive"),  # 0.03 <= 3.3e-5 + 4e-2: the errors could explain it
        (2.58e-8, 1.72e-8, 7e-11, "wrong"),  # issue 20's planted derivative: judged in its own terms
        (1e-12, 3e-12, 0.0, "wrong"),  # no floor from elsewhere: small is not excused
        (0.0, 0.0, 1e-3, "good"),  # a dead unit: the move changed nothing and backprop agrees
        (math.inf, 1.0, 1e-3, "not finite"),
        (1.0, math.nan, 1e-3, "not finite"),
        (math.nan, math.nan, 1e-3, "not finite"),
    ]
    for a, n, bound, expected in cases:
        _, code, passed = judge(a, n, bound, 1e-4)
        assert expected == VERDICTS[int(code)], (a, n, bound)
        assert (expected in ("good", "ok")) == bool(passed)
    # the step not taken (w +- h == w): inconclusive however well the values agree
    assert "inconclusive" == VERDICTS[int(judge(1.0, 1.0, 0.0, 1e-4, resolved=False)[1])]
    # a kink no step could avoid is never excused, and never a pass; a non-finite value still fails there
    rel, code, passed = judge(0.3, 0.1, 0.0, 1e-4, kink=True)
    assert "kink" == VERDICTS[int(code)] and not passed
    assert "not finite" == VERDICTS[int(judge(math.inf, 0.1, 0.0, 1e-4, kink=True)[1])]


# --- weights too large for the step -----------------------------------------------------------------


def test_weights_of_1e60_are_inconclusive_not_good():
    # one layer, y' = w1 * x: dC/dw1 = 1/m sum_i (w1 x_i - y_i) x_i, in plain floats
    w1 = 1e60
    exact = sum((w1 * x[0] - y[0]) * x[0] for x, y in zip(X, Y)) / len(X)
    report = check(identity_net([[[w1]]]), np.array(X), np.array(Y), ENTRIES)
    e = by_name(report)["w1"]
    assert exact == pytest.approx(e.analytic, rel=1e-12)
    assert "inconclusive" == e.verdict and not e.passed
    assert 1e-5 + w1 == w1  # the reason: float64 cannot take the step there
    assert "inconclusive" == report.verdict and 3 == report.exit_code
    text = render(report)
    assert "PASS" not in text and "INCONCLUSIVE" in text and "w1" in text


# two inputs, y' = w1 x1 + w2 x2 with x1 = 0 everywhere: w1 = 1e60 cannot be stepped, w2 = 0.5 can
X2 = [[0.0, 0.5], [0.0, -1.0], [0.0, 2.0]]


def test_good_and_inconclusive_entries_together_are_not_pass():
    report = check(identity_net([[[1e60, 0.5]]]), np.array(X2), np.array(Y), ENTRIES)
    got = by_name(report)
    assert "inconclusive" == got["w1"].verdict and "good" == got["w2"].verdict
    # dC/dw2 = 1/m sum_i (w2 x2_i - y_i) x2_i (x1 = 0 takes w1 out of the sum), in plain floats
    exact = sum((0.5 * x[1] - y[0]) * x[1] for x, y in zip(X2, Y)) / len(X2)
    assert exact == pytest.approx(got["w2"].analytic, rel=1e-12)
    assert exact == pytest.approx(got["w2"].numeric, rel=1e-8)
    assert not report.passed and "inconclusive" == report.verdict
    assert "PASS" not in render(report)
    doc = report.to_dict()
    assert 3 == doc["exit_code"] and 1 == doc["inconclusive"]["entries"] and 0 == doc["failed"]["entries"]


def test_directions_at_huge_weights_are_inconclusive():
    report = check(identity_net([[[1e60]]], bias=0.5), np.array(X), np.array(Y),
                   GradcheckOptions(mode="directional", directions=2))
    w = [d for d in report.directions if d.array == "A.W"]
    assert w and all("inconclusive" == d.verdict for d in w)
    assert 3 == report.exit_code


def test_a_wrong_gradient_still_fails_beside_inconclusive_entries(monkeypatch):
    from bpcli.nn import engine
    real = engine.output_delta
    monkeypatch.setattr(engine, "output_delta", lambda net, tape, y: (real(net, tape, y)[0] * 1.5, None))
    report = check(identity_net([[[1e60, 0.5]]]), np.array(X2), np.array(Y), ENTRIES)
    assert "wrong" == by_name(report)["w2"].verdict and "inconclusive" == by_name(report)["w1"].verdict
    assert "fail" == report.verdict and 1 == report.exit_code
    assert "FAIL" in render(report)


# --- not finite -------------------------------------------------------------------------------------


def test_overflowing_forward_pass_is_not_finite_and_fails():
    # y' = v1 * w1 * x with w1 = v1 = 1e200: (w1 x)^2 overflows in the second layer's product and the cost
    report = check(identity_net([[[1e200]], [[1e200]]]), np.array(X), np.array(Y), ENTRIES)
    assert report.entries and all("not finite" == r.verdict and not r.passed for r in report.entries)
    assert "fail" == report.verdict and 1 == report.exit_code
    text = render(report)
    assert "PASS" not in text and "not finite" in text
    directional = check(identity_net([[[1e200]], [[1e200]]]), np.array(X), np.array(Y),
                        GradcheckOptions(mode="directional", directions=1))
    assert all("not finite" == d.verdict for d in directional.directions) and 1 == directional.exit_code


def test_diverged_run_is_not_finite_through_the_cli(tmp_path):
    cfg = tmp_path / "boom.yaml"
    cfg.write_text("name: boom\ninputs: 1\nlayers:\n  - {size: 1, activation: identity, weights: [[1.0e+150]],"
                   " biases: [0.0]}\n  - {size: 1, activation: identity, weights: [[1.0e+160]], biases: [0.0]}\n"
                   "loss: squared_error\ndata: {x: [[3.0], [-1.0]], y: [[1.0], [0.0]]}\n")
    res = runner.invoke(app, ["gradcheck", str(cfg), "--json"])
    assert 1 == res.exit_code, res.output
    doc = json.loads(res.stdout)
    assert "fail" == doc["verdict"] and all(e["verdict"] == "not finite" for e in doc["entries"])
    assert "RuntimeWarning" not in res.output


@pytest.mark.filterwarnings("ignore:overflow encountered in matmul:RuntimeWarning")  # the overflow is the case
def test_explain_never_agrees_about_a_non_finite_or_unresolved_value():
    x, y = np.array(X), np.array(Y)
    report = explain_many(identity_net([[[1e200]], [[1e200]]]), x, y, ["w1"], 0.1)
    nc = report.explanations[0].numeric
    assert not nc.agrees and "not finite" == nc.verdict and 1 == report.exit_code
    # w1 = 1e60: no step float64 can take at w1 (w1 +- h == w1 for every candidate), so nothing can be said
    report = explain_many(identity_net([[[1e60, 0.5]]]), np.array(X2), y, ["w1"], 0.1)
    nc = report.explanations[0].numeric
    assert not nc.agrees and "inconclusive" == nc.verdict and 3 == report.exit_code
    assert "cannot check" in report.problems()[0]
    # y' = w1 x with x = 1e-10: dC/dw1 is about 1e-10 and C(w1 +- h) differ by a few ulps of C at the default
    # step; a larger step (and extended precision) resolves it: it agrees, at the exact value
    tiny = np.array(X) * 1e-10
    report = explain_many(identity_net([[[0.5]]]), tiny, y, ["w1"], 0.1)
    nc = report.explanations[0].numeric
    exact_tiny = sum((0.5 * xi[0] - yi[0]) * xi[0] for xi, yi in zip(tiny, Y)) / len(Y)
    assert nc.agrees and 0 == report.exit_code
    assert exact_tiny == pytest.approx(nc.gradient, rel=1e-4)
    ok = explain_many(identity_net([[[0.5]], [[2.0]]]), x, y, ["w1"], 0.1)
    # y' = v1 w1 x: dC/dw1 = 1/m sum_i (v1 w1 x_i - y_i) v1 x_i
    exact = sum((2.0 * 0.5 * xi[0] - yi[0]) * 2.0 * xi[0] for xi, yi in zip(X, Y)) / len(X)
    assert exact == pytest.approx(ok.explanations[0].engine, rel=1e-12)
    assert ok.explanations[0].numeric.agrees and "good" == ok.explanations[0].numeric.verdict
    assert 0 == ok.exit_code


# --- the options' ranges ------------------------------------------------------------------------------


@pytest.mark.parametrize("args,message", [
    (["--eps", "1e-300"], "--eps: must be from 1e-09 to 0.001"), (["--eps", "0.1"], "--eps: must be from"),
    (["--directions", "1000000000"], "--directions: must be from 1 to 1000"),
    (["--directions", "100000000000000000000"], "--directions: must be from 1 to 1000"),
    (["--tol", "0.5"], "--tol: must be from 1e-10 to 0.01"), (["--tol", "1e-12"], "--tol"),
    (["--n-samples", "1000000"], "--n-samples: must be from 1 to 100000"),
])
def test_options_outside_their_range_are_refused_with_the_range(args, message):
    res = runner.invoke(app, ["gradcheck", *args])
    assert 2 == res.exit_code, res.output
    assert message in res.stderr and 1 == len(res.stderr.strip().splitlines())
    assert "Traceback" not in res.output


def test_the_ends_of_the_eps_range_still_pass_the_seed():
    for eps in ("1e-9", "1e-3"):
        assert 0 == runner.invoke(app, ["gradcheck", "--eps", eps]).exit_code, eps


# --- large networks: an estimate and progress ---------------------------------------------------------


def test_estimate_counts_the_checks_and_progress_reaches_the_total():
    rng = np.random.default_rng(0)
    Ws = [rng.normal(size=(20, 1)).tolist(), rng.normal(size=(20, 20)).tolist(), rng.normal(size=(1, 20)).tolist()]
    net = identity_net(Ws)
    x, y = rng.normal(size=(16, 1)), rng.normal(size=(16, 1))
    checks, seconds = estimate_seconds(net, 16, ENTRIES)
    assert net.n_params == checks and 0 < seconds < 1
    bigger = identity_net([Ws[0], rng.normal(size=(20, 20)).tolist(), *Ws[1:]])
    assert estimate_seconds(bigger, 16, ENTRIES)[1] > seconds
    seen = []
    check(net, x, y, ENTRIES, progress=lambda done, total: seen.append((done, total)))
    assert seen[-1] == (net.n_params, net.n_params)
    assert all(a[0] <= b[0] for a, b in zip(seen, seen[1:]))
    seen.clear()
    check(net, x, y, GradcheckOptions(mode="directional", directions=3), progress=lambda d, t: seen.append((d, t)))
    assert seen[-1] == (3 * 3, 3 * 3)  # three arrays (no biases), three directions each
