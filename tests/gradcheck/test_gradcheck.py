"""bpcli gradcheck: the structured central differences, verdicts, kinks, broken derivatives, the CLI and the view."""

from __future__ import annotations

import dataclasses
import io
import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rich.console import Console
from typer.testing import CliRunner

from bpcli.nn import activations, losses
from bpcli.nn.activations import ACTIVATIONS, ActivationSpec
from bpcli.cli.app import app
from bpcli.config.loader import builtin_config_dir, load_config
from bpcli.nn.engine import cost, forward
from bpcli.gradcheck.report import DEFAULT_EPS, GradcheckOptions
from bpcli.gradcheck.numeric import naive_numeric_gradient
from bpcli.gradcheck.check import check
from bpcli.gradcheck.units import check_units
from bpcli.gradcheck.verdict import relative_error
from bpcli.gradcheck.verdict import VERDICTS, judge
from bpcli.nn.losses import LOSSES, SQUARED_CONVENTIONS, LossSpec
from bpcli.nn.model import build
from bpcli.render.gradcheck import gradcheck_view
from bpcli.data.dataset import prepare

from tests.conftest import activation_loss_triples, random_data, random_net

runner = CliRunner()
CONFIGS = sorted(builtin_config_dir().glob("*.yaml"))
ALL = GradcheckOptions(mode="entries", all_entries=True, samples=None)


def naive_numeric(net, x, y, eps=DEFAULT_EPS):
    """Central differences the slow, obvious way, by parameter name."""
    return dict(zip(net.param_names(), naive_numeric_gradient(net, x, y, eps)))


def write(tmp_path: Path, text: str, name: str = "net.yaml") -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


def run_cli(*args: str):
    return runner.invoke(app, ["gradcheck", *args])


def assert_nothing_fails(report):
    """No entry fails, and an entry is inconclusive only for being in the rounding noise: random networks have
    gradients that are exactly 0 or 1e-16 (a symmetric sum, a saturated unit), which no difference can check."""
    assert not report.failed, [r for r in report.entries if not r.passed][:3]
    tol = report.options.tol
    noise = [r for r in report.entries if r.verdict == "inconclusive"]
    assert all(r.bound > tol * max(abs(r.analytic), abs(r.numeric)) for r in noise), noise[:3]


# --- the numbers ------------------------------------------------------------------------------


def test_relative_error_uses_the_larger_magnitude_and_the_floor():
    np.testing.assert_allclose(relative_error([1.0, -2.0, 0.0], [1.1, -2.0, 0.0]), [0.1 / 1.1, 0.0, 0.0])
    # below the floor, the error is measured against the floor
    assert relative_error(1e-9, 2e-9, floor=1e-6) == pytest.approx(1e-3)
    assert relative_error(1e-3, 2e-3, floor=1e-6) == pytest.approx(0.5)


def test_verdict_bands_and_pass_line():
    # numeric = 1 + rel: relative errors 1e-9, 1e-5, 1e-3, 0.5 (twice, the second at a kink)
    rel, code, passed = judge(np.ones(5), 1 + np.array([1e-9, 1e-5, 1e-3, 1.0, 1.0]), 0.0, tol=1e-4,
                              kink=np.array([False, False, False, False, True]))
    assert ["good", "ok", "suspicious", "wrong", "kink"] == [VERDICTS[c] for c in code]
    assert [True, True, False, False, False] == passed.tolist()  # a kink is never excused


def test_structured_differences_equal_the_naive_loop():
    """Same central differences as perturbing each parameter and running two full forward passes."""
    rng = np.random.default_rng(11)
    for hidden, output, loss, bias in [("tanh", "softmax", "cross_entropy", "on"),
                                       ("gelu", "sigmoid", "binary_cross_entropy", "shared"),
                                       ("elu", "identity", "huber", "on"), ("silu", "tanh", "squared_error", "off")]:
        net = random_net(rng, 3, [5, 4, 3], hidden=hidden, output=output, loss=loss, bias=bias)
        x, y = random_data(rng, net, 7)
        report = check(net, x, y, ALL)
        naive = naive_numeric(net.copy(), x, y)
        got = {r.name: r.numeric for r in report.entries}
        assert set(got) == set(naive)
        for name, n in naive.items():
            assert got[name] == pytest.approx(n, rel=1e-6, abs=1e-10), (hidden, name)


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.stem)
def test_every_shipped_config_passes(path):
    cfg, data = load_config(path)
    net = build(cfg)
    train = prepare(cfg, data).train
    report = check(net, train.x, train.y, ALL)
    assert report.passed
    assert report.n_entries == net.n_params
    assert all(abs(r.analytic - r.numeric) <= r.bound for r in report.entries)  # the bound holds the gap
    kinks = [r for r in report.entries if r.verdict == "kink"]
    assert len(kinks) < 0.05 * len(report.entries)


PAIRS = activation_loss_triples()


@pytest.mark.parametrize("hidden,output,loss", PAIRS)
def test_random_networks_of_every_activation_and_loss_pass(hidden, output, loss):
    rng = np.random.default_rng(5)
    net = random_net(rng, 3, [5, 4, 3], hidden=hidden, output=output, loss=loss)
    x, y = random_data(rng, net, 8)
    if loss in ("absolute_error", "huber"):
        y = y * 3  # residuals away from the loss's kink
    report = check(net, x, y, ALL)
    assert_nothing_fails(report)
    # the gradients are right, so every gap between backprop and the numeric value is one the bound explains
    assert all(abs(r.analytic - r.numeric) <= r.bound for r in report.entries if r.passed)
    if hidden not in ("relu", "leaky_relu"):
        assert report.n_kinks == 0


@pytest.mark.parametrize("convention", list(SQUARED_CONVENTIONS))
@pytest.mark.parametrize("bias", ["on", "off", "shared", "frozen"])
def test_bias_modes_and_squared_conventions_pass(convention, bias):
    rng = np.random.default_rng(3)
    net = random_net(rng, 2, [3, 2], hidden="sigmoid", output="identity", loss_params={"convention": convention},
                     bias=bias)
    x, y = random_data(rng, net, 6)
    report = check(net, x, y, ALL)
    assert report.passed and report.n_entries == net.n_params
    if bias == "shared":
        assert {"b_A", "b_B"} <= {r.name for r in report.entries}


HIDDEN = [h for h in ACTIVATIONS if h != "softmax"]


@settings(max_examples=25, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(sizes=st.lists(st.integers(1, 5), min_size=1, max_size=3), n_in=st.integers(1, 4),
       hidden=st.sampled_from(HIDDEN), out_loss=st.sampled_from(
           [("identity", "squared_error"), ("tanh", "huber"), ("sigmoid", "binary_cross_entropy"),
            ("softmax", "cross_entropy"), ("identity", "absolute_error"), ("softplus", "squared_error")]),
       bias=st.sampled_from(["on", "off", "shared", "frozen"]), m=st.integers(1, 6), seed=st.integers(0, 2**16))
def test_random_architectures_pass(sizes, n_in, hidden, out_loss, bias, m, seed):
    output, loss = out_loss
    n_out = 2 if output == "softmax" else 1 + seed % 3  # a softmax layer needs two nodes
    rng = np.random.default_rng(seed)
    net = random_net(rng, n_in, [*sizes, n_out], hidden=hidden, output=output, loss=loss, bias=bias)
    x, y = random_data(rng, net, m)
    if loss in ("absolute_error", "huber"):
        y = y * 3
    report = check(net, x, y, ALL)
    assert_nothing_fails(report)
    assert report.n_entries == net.n_params


def test_float32_config_is_checked_in_float64(tmp_path):
    cfg, data = load_config(write(tmp_path, (builtin_config_dir() / "seed.yaml").read_text().replace(
        "  seed: 0\n", "  seed: 0\n  dtype: float32\n")))
    net = build(cfg)
    assert net.dtype == np.float32
    report = check(net, data.x, data.y, ALL)
    assert report.passed and max(r.rel_error for r in report.entries) < 1e-6


# --- kinks --------------------------------------------------------------------------------------

RELU_KINK = """\
version: 1
name: relu_kink
inputs: [x1, x2]
layers:
  - {size: 3, activation: relu}
  - {size: 1, activation: sigmoid}
loss: squared_error
init: {scheme: xavier_uniform, seed: 1, bias: 0.0}
data: {generator: xor}
"""


def test_relu_step_across_a_kink_is_checked_on_the_side_that_does_not_cross(tmp_path):
    # XOR's sample (0, 0) with zero biases puts every z of layer A exactly at relu's kink: moving a bias
    # by +eps crosses it, by -eps does not (relu is flat left of 0), and backprop takes relu'(0) = 0, the left
    # slope: the one-sided difference on the left decides each bias, nothing is excused.
    cfg, data = load_config(write(tmp_path, RELU_KINK))
    net = build(cfg)
    _, tape = forward(net, data.x)
    assert np.all(tape[0].z[0] == 0.0)
    report = check(net, data.x, data.y, ALL)
    rows = {r.name: r for r in report.entries}
    naive_left = {}
    for name in ("b_A1", "b_A2", "b_A3"):
        ref = net.resolve(name)
        h = 1e-6
        c0 = cost(net, forward(net, data.x)[1], data.y)
        v = net.get(ref)
        net.set(ref, v - h)
        naive_left[name] = (c0 - cost(net, forward(net, data.x)[1], data.y)) / h
        net.set(ref, v)
    for name, left in naive_left.items():
        assert rows[name].passed and rows[name].verdict in ("good", "ok")
        assert left == pytest.approx(rows[name].numeric, rel=1e-4, abs=1e-9)
    assert report.passed and report.n_kinks == 0


def test_absolute_error_residual_at_zero_is_a_kink():
    rng = np.random.default_rng(2)
    net = random_net(rng, 2, [3, 2], hidden="tanh", output="identity", loss="absolute_error")
    x, y = random_data(rng, net, 5)
    # sample 0's residuals sit a hair from |r|'s kink: every step moving y'_0 crosses it
    y[0] = forward(net, x)[0][0] + 1e-9
    report = check(net, x, y, ALL)
    # layer B's entries move one output each: the side that does not cross |r|'s kink decides them; a layer-A
    # entry moves both outputs of sample 0 in opposite directions, so every step crosses on both sides: those
    # are kinks, inconclusive (never excused, never failed)
    assert not report.failed
    kinks = {r.name for r in report.entries if r.verdict == "kink"}
    assert kinks and all(r.layer == "A" for r in report.entries if r.name in kinks)
    assert all(r.passed for r in report.entries if r.layer == "B")
    assert 3 == report.exit_code
    # far from the kink nothing is excused
    y[0] += 1.0
    assert all(r.verdict != "kink" for r in check(net, x, y, ALL).entries)


def test_kink_excuses_nothing_when_the_step_does_not_cross(tmp_path):
    cfg, data = load_config(write(tmp_path, RELU_KINK.replace("bias: 0.0", "bias: 0.3")))
    report = check(build(cfg), data.x, data.y, ALL)
    assert report.n_kinks == 0 and report.passed


# --- broken derivatives must fail ---------------------------------------------------------------

HIDDEN_SIGMOID = """\
version: 1
name: hidden_sigmoid
inputs: [x1, x2]
layers:
  - {size: 3, activation: sigmoid}
  - {size: 1, activation: identity}
loss: squared_error
init: {scheme: xavier_uniform, seed: 4, bias: 0.1}
data: {generator: xor}
"""


def _broken_sigmoid() -> ActivationSpec:
    def build_():
        good = activations._sigmoid_act()
        return dataclasses.replace(good, grad=lambda z, a: a * (1.0 - a) + 0.05)  # f' off by 0.05

    return ActivationSpec("sigmoid", {}, build_, "sigmoid with a wrong derivative")


def test_broken_activation_derivative_fails_names_parameters_and_unit(tmp_path, monkeypatch):
    monkeypatch.setitem(activations.ACTIVATIONS, "sigmoid", _broken_sigmoid())
    path = write(tmp_path, HIDDEN_SIGMOID)
    res = run_cli(str(path), "--units", "--json")
    assert res.exit_code == 1, res.output
    doc = json.loads(res.stdout)
    assert doc["verdict"] == "fail"
    failed = {e["name"] for e in doc["entries"] if not e["passed"]}
    # sigmoid sits in layer A: exactly its weights and biases are wrong; layer B's are not
    assert failed == {"w11", "w12", "w21", "w22", "w31", "w32", "b_A1", "b_A2", "b_A3"}
    assert {e["name"] for e in doc["entries"] if e["passed"]} == {"v1", "v2", "v3", "b_B"}
    assert all(e["verdict"] == "wrong" for e in doc["entries"] if e["name"] in failed)
    assert [u["name"] for u in doc["units"] if not u["passed"]] == ["sigmoid"]
    assert [s["failed"] for s in doc["layers"]] == [9, 0]
    # and the table says the same in words
    res = run_cli(str(path), "--units")
    assert res.exit_code == 1
    assert "FAIL" in res.stdout and "broken unit(s): activation sigmoid" in res.stdout
    assert "w11" in res.stdout and "b_A3" in res.stdout


def test_broken_loss_gradient_fails_names_parameters_and_unit(tmp_path, monkeypatch):
    def build_(convention="half_sum"):
        good = losses._squared_error(convention)
        return dataclasses.replace(good, grad=lambda y_hat, y: good.grad(y_hat, y) * 0.9)

    monkeypatch.setitem(losses.LOSSES, "squared_error", LossSpec("squared_error", {"convention": "half_sum"},
                                                                 build_, "broken"))
    res = run_cli(str(write(tmp_path, HIDDEN_SIGMOID)), "--units", "--json")
    assert res.exit_code == 1, res.output
    doc = json.loads(res.stdout)
    # every gradient flows through dL/dy': every parameter is off by the same 10 %
    assert all(not e["passed"] and e["rel_error"] == pytest.approx(0.1, rel=1e-4) for e in doc["entries"])
    assert len(doc["entries"]) == 13
    assert sorted(u["name"] for u in doc["units"] if not u["passed"]) == sorted(
        f"squared_error ({c})" for c in SQUARED_CONVENTIONS)


def test_fused_shortcut_hides_a_broken_cross_entropy_gradient_but_units_find_it(monkeypatch):
    def build_():
        good = losses._cross_entropy()
        return dataclasses.replace(good, grad=lambda y_hat, y: -y / y_hat * 1.5)

    monkeypatch.setitem(losses.LOSSES, "cross_entropy", LossSpec("cross_entropy", {}, build_, "broken"))
    res = run_cli(str(builtin_config_dir() / "seed.yaml"), "--units", "--json")
    doc = json.loads(res.stdout)
    assert res.exit_code == 1
    assert doc["failed"]["entries"] == 0  # the seed network does not use cross-entropy
    assert [u["name"] for u in doc["units"] if not u["passed"]] == ["cross_entropy"]


def test_directional_check_fails_on_a_wrong_gradient_and_names_the_arrays(tmp_path, monkeypatch):
    monkeypatch.setitem(activations.ACTIVATIONS, "sigmoid", _broken_sigmoid())
    res = run_cli(str(write(tmp_path, HIDDEN_SIGMOID)), "--directional", "--json")
    assert res.exit_code == 1, res.output
    doc = json.loads(res.stdout)
    assert doc["mode"] == "directional" and doc["entries"] == []
    assert {d["array"] for d in doc["directions"] if not d["passed"]} == {"A.W", "A.b"}
    assert all(d["passed"] for d in doc["directions"] if d["array"].startswith("B."))


def test_unit_checks_pass_on_the_registry_and_cover_every_entry():
    rows = check_units()
    assert all(u.passed for u in rows), [u for u in rows if not u.passed]
    names = {u.name for u in rows}
    assert set(ACTIVATIONS) <= names
    assert {f"squared_error ({c})" for c in SQUARED_CONVENTIONS} <= names
    assert set(LOSSES) - {"squared_error"} <= names
    assert {"softmax + cross_entropy", "sigmoid + binary_cross_entropy"} <= names
    assert max(u.worst_rel for u in rows) < 1e-5


# --- scale: sampling and directions -------------------------------------------------------------


def test_above_the_cap_entries_are_sampled_from_every_array_and_directions_added():
    rng = np.random.default_rng(8)
    net = random_net(rng, 6, [10, 10, 3], hidden="tanh", output="softmax", loss="cross_entropy")
    x, y = random_data(rng, net, 10)
    report = check(net, x, y, GradcheckOptions(cap=50, sample_size=40, directions=2))
    assert report.sampled and report.mode == "entries+directional"
    assert any("cap of 50" in n for n in report.notes) and any("directional" in n for n in report.notes)
    assert {r.array for r in report.arrays} == {"A.W", "A.b", "B.W", "B.b", "C.W", "C.b"}
    assert 40 <= report.n_entries < net.n_params
    nodes = [d for d in report.directions if d.node]
    assert len(report.directions) - len(nodes) == 2 * 6  # two random directions per array
    assert sorted(d.node for d in nodes if d.layer == "B") == sorted(f"B{j}" for j in range(1, 11))  # one per node
    assert len(nodes) == 10 + 10 + 3
    assert report.passed
    full = check(net, x, y, GradcheckOptions(cap=50, all_entries=True))
    assert not full.sampled and full.n_entries == net.n_params and full.mode == "entries"


def test_directional_numbers_match_a_naive_difference_along_the_direction():
    rng = np.random.default_rng(9)
    net = random_net(rng, 3, [4, 2], hidden="softplus", output="sigmoid", loss="binary_cross_entropy")
    x, y = random_data(rng, net, 6)
    report = check(net, x, y, GradcheckOptions(mode="directional", directions=3))
    assert len(report.directions) == 3 * 4 and report.passed
    assert max(d.rel_error for d in report.directions) < 1e-6
    assert all(d.size == (12 if d.array == "A.W" else 4 if d.array == "A.b" else 8 if d.array == "B.W" else 2)
               for d in report.directions)


def test_weight_option_restricts_the_check(tmp_path):
    res = run_cli("--weight", "v1", "--weight", "w12,b_A2", "--json")
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert sorted(e["name"] for e in doc["entries"]) == ["b_A2", "v1", "w12"]
    assert doc["selected"] == 3 and doc["params"] == 9
    assert [s["layer"] for s in doc["layers"]] == ["A", "B"]


def test_samples_option_uses_a_seeded_subset():
    a = check(*_seed(), GradcheckOptions(samples=2, seed=1))
    b = check(*_seed(), GradcheckOptions(samples=2, seed=1))
    assert a.n_samples == 2 and a.n_samples_total == 4 and any("2 of 4 samples" in n for n in a.notes)
    assert [r.numeric for r in a.entries] == [r.numeric for r in b.entries]


def _seed():
    cfg, data = load_config(None)
    return build(cfg), data.x, data.y


# --- the CLI --------------------------------------------------------------------------------------


@pytest.mark.parametrize("args,message", [
    (["--eps", "0"], "--eps"), (["--eps", "-1e-5"], "--eps"), (["--eps", "nan"], "--eps"),
    (["--tol", "0"], "--tol"), (["--n-samples", "0"], "--n-samples"), (["--directions", "0"], "--directions"),
    (["--all", "--directional"], "--all"), (["--weight", "v9"], "unknown parameter 'v9'"),
    (["--weight", ","], "--weight"), (["nope.yaml"], "not found"),
])
def test_bad_input_exits_2_with_one_clear_line(args, message):
    res = run_cli(*args)
    assert res.exit_code == 2, res.output
    assert message in res.stderr and "Traceback" not in res.stderr


def test_tol_sets_the_pass_line():
    doc = json.loads(run_cli("--json").stdout)
    worst = max(e["rel_error"] for e in doc["entries"])
    strict = run_cli("--tol", "1e-10", "--json")  # the seed is small: extended precision resolves even this
    entries = json.loads(strict.stdout)["entries"]
    for e in entries:
        scale = max(abs(e["analytic"]), abs(e["numeric"]))
        assert e["passed"] == (e["rel_error"] <= 1e-10 and e["bound"] <= 1e-10 * scale)
    assert strict.exit_code == (0 if all(e["passed"] for e in entries) else 3)
    assert run_cli("--tol", f"{worst * 2:.3e}").exit_code == 0


def test_json_shape():
    res = run_cli("--json")
    assert res.exit_code == 0
    doc = json.loads(res.stdout)
    assert doc["command"] == "gradcheck" and doc["verdict"] == "pass" and doc["passed"] is True
    assert set(doc) >= {"options", "thresholds", "samples", "layers", "entries", "directions", "units", "rule",
                        "safety", "failed", "checked", "kinks", "mode", "notes"}
    assert doc["options"]["eps"] == DEFAULT_EPS and doc["thresholds"]["pass"] == 1e-4
    assert len(doc["entries"]) == 9 and doc["checked"]["entries"] == 9
    e = doc["entries"][0]
    assert set(e) == {"name", "layer", "kind", "analytic", "numeric", "abs_error", "rel_error", "bound", "step",
                      "verdict", "passed"}
    assert all(x["step"] == DEFAULT_EPS for x in doc["entries"])  # the seed needs no other step
    assert all(x["bound"] <= 1e-4 * max(abs(x["analytic"]), abs(x["numeric"])) for x in doc["entries"])  # passed
    assert e["abs_error"] == pytest.approx(abs(e["analytic"] - e["numeric"]))
    rels = [e["rel_error"] for e in doc["entries"]]
    assert rels == sorted(rels, reverse=True)  # worst first


def test_run_folder_is_checked_at_its_trained_weights(tmp_path):
    out = tmp_path / "run"
    assert runner.invoke(app, ["train", "--epochs", "50", "--out", str(out), "--quiet", "--json"]).exit_code == 0
    res = run_cli("--run", str(out), "--json")
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert doc["source"] == str(out)
    initial = json.loads(run_cli("--json").stdout)
    assert doc["cost"] < initial["cost"]  # trained weights, not the initial ones
    assert json.loads(run_cli(str(out), "--json").stdout)["cost"] == doc["cost"]  # positional run folder


# --- the view -------------------------------------------------------------------------------------


def _render(report, width: int, rows: int = 20) -> str:
    buf = io.StringIO()
    Console(file=buf, width=width, highlight=False, color_system=None).print(gradcheck_view(report, rows))
    return buf.getvalue()


@pytest.mark.parametrize("width", [80, 120])
def test_view_fits_the_width_and_truncates_long_lists(width):
    rng = np.random.default_rng(4)
    net = random_net(rng, 4, [6, 3], hidden="tanh", output="softmax", loss="cross_entropy")
    x, y = random_data(rng, net, 5)
    report = check(net, x, y, ALL, name="[demo]", source="here", units=True)
    text = _render(report, width, rows=5)
    assert max(len(line) for line in text.splitlines()) <= width
    assert "[demo]" in text  # user text is not eaten as markup
    assert f"... {net.n_params - 5} more entries" in text
    assert "PASS" in text and "Per layer" in text and "sigmoid + binary_cross_entropy" in text
    assert ("abs err" in text) == (width >= 100)


def test_rows_0_lists_no_entries_and_says_so_without_pointing_above():
    """--rows 0 printed an empty table and '... 9 more entries, none worse than those above' with nothing above."""
    res = run_cli("--rows", "0")
    assert res.exit_code == 0, res.output
    assert "9 entries, none listed (--rows 0; every entry in --json)" in res.stdout
    assert "above" not in res.stdout and "Entries, worst first" not in res.stdout
    res = run_cli("--rows", "0", "--directional")
    assert res.exit_code == 0, res.output
    assert "16 random directions, none listed (--rows 0; all of them in --json)" in res.stdout
    assert "more directions" not in res.stdout and "Random directions, worst first" not in res.stdout


@pytest.mark.parametrize("width", [80, 120])
def test_view_of_a_failure_names_entries_and_units(width, monkeypatch):
    monkeypatch.setitem(activations.ACTIVATIONS, "sigmoid", _broken_sigmoid())
    report = check(*_seed(), GradcheckOptions(), units=True)
    text = _render(report, width)
    assert max(len(line) for line in text.splitlines()) <= width
    assert "FAIL" in text and "wrong (fail)" in text and "activation sigmoid" in text


@pytest.mark.parametrize("width", [50, 60, 80, 120])
def test_the_header_breaks_only_between_its_parts(width):
    """'pass: rel error <= 1e-09' was cut after 'rel' at 80 columns (against PyTorch: a longer line)."""
    from bpcli.render.gradcheck import GradcheckView
    report = check(*_seed_net_and_data())
    report = dataclasses.replace(report, against="PyTorch autograd")
    buf = io.StringIO()
    Console(file=buf, width=width).print(GradcheckView(report)._header(width))
    lines = buf.getvalue().splitlines()[1:]
    parts = [p.strip(" ·") for ln in lines for p in ln.split(" · ")]
    assert parts == ["9 parameters", "4 samples", "float64", "against PyTorch autograd",
                     f"pass: rel error <= {report.options.tol:.0e}"]
    assert all(len(ln) <= width for ln in lines)


def _seed_net_and_data():
    from bpcli.data.dataset import prepare
    from bpcli.nn.model import build
    cfg, data = load_config(None)
    prepared = prepare(cfg, data)
    return build(cfg), prepared.train.x, prepared.train.y


SOFTSIGN_BROKEN = """\
inputs: 2
layers:
  - {size: 2, activation: {name: mysoftsign, f: "z / (1 + abs(z))", df: "1 / (1 + z)**2"}}
  - {size: 1, activation: sigmoid}
loss: binary_cross_entropy
data: {generator: xor}
"""


@pytest.mark.parametrize("width", [80, 120])
def test_the_units_table_never_cuts_a_verdict_or_a_header_at_80_columns(tmp_path, width):
    """A formula unit's long name squeezed 'worst rel' to 'worst r…' and 'wrong (fail)' to 'wrong (fai…' at 80."""
    cfg, data = load_config(write(tmp_path, SOFTSIGN_BROKEN))
    from bpcli.nn.model import build
    report = check(build(cfg), data.x, data.y, GradcheckOptions(), units=True)
    text = _render(report, width)
    table = text[text.index("Registry units"):text.index("FAIL")]
    assert "…" not in table and "worst rel" in table, table
    row = next(ln for ln in table.splitlines() if ln.strip().startswith("mysoftsign (layer A)"))
    assert row.rstrip().endswith("wrong (fail)"), row
    assert max(len(line) for line in text.splitlines()) <= width
