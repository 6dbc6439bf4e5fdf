"""Activations and losses by formula: the whitelist refuses hostile text, the user's df is what backprop uses."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pytest
from numpy.testing import assert_allclose
from typer.testing import CliRunner

from bpcli.nn.activations import get_activation
from bpcli.cli.app import app
from bpcli.errors import ConfigError
from bpcli.nn.formula import FormulaError, parse_formula
from bpcli.nn.losses import get_loss

runner = CliRunner()

SOFTSIGN = {"f": "z / (1 + abs(z))", "df": "1 / (1 + abs(z))**2"}


def xor_config(tmp_path, df: str = SOFTSIGN["df"], f: str = SOFTSIGN["f"], epochs: int = 1500):
    p = tmp_path / "softsign.yaml"
    p.write_text(textwrap.dedent(f"""\
        version: 1
        name: softsign_xor
        inputs: [x1, x2]
        layers:
          - size: 3
            activation: {{name: softsign, f: "{f}", df: "{df}"}}
          - size: 1
            activation: sigmoid
        loss: squared_error
        init: {{scheme: xavier_uniform, seed: 1}}
        data: {{generator: xor}}
        train: {{optimizer: gd, lr: 2.0, epochs: {epochs}}}
        """))
    return p


def hostile(sentinel) -> list[str]:
    s = str(sentinel)
    return [
        f"__import__('os').system('touch {s}')",
        f"open('{s}', 'w')",
        "().__class__.__bases__[0].__subclasses__()",
        "z.__class__",
        "9**9**9",
        "z**9**9**9",
        "(" * 10_000 + "z" + ")" * 10_000,
        "-" * 10_000 + "z",
        "exp(" * 10_000 + "z" + ")" * 10_000,
        "exp(" * 60 + "z" + ")" * 60,
        "lambda: 1",
        "[z for z in range(10**9)]",
        "'a' * 10**9",
        "z[0]",
        "np.exp(z)",
        "exp(z, out=z)",
        "z if z > 0 else 0",
        "z > 0",
        "(z := 1)",
        "1" + "0" * 350,
        "pi * z",
        "exp(z)\nimport os",
        "f'{z}'",
        "z and 1",
        "1j * z",
    ]


def test_hostile_formulas_are_refused_and_nothing_runs(tmp_path):
    sentinel = tmp_path / "ran"
    for text in hostile(sentinel):
        with pytest.raises(FormulaError):
            parse_formula(text, ("z",))
        with pytest.raises(ConfigError) as err:
            get_activation("mine", {"f": text, "df": "1"})
        assert "activation.f:" in str(err.value)
    assert not sentinel.exists()


def test_hostile_formula_in_a_config_is_a_located_error_exit_2(tmp_path):
    sentinel = tmp_path / "ran"
    cfg = xor_config(tmp_path, df=f"__import__('os').system('touch {sentinel}')".replace("'", "''"))
    cfg.write_text(cfg.read_text().replace('df: "', "df: '").replace('"}', "'}"))
    result = runner.invoke(app, ["gradcheck", str(cfg)])
    assert result.exit_code == 2, result.output
    assert f"{cfg}:6: layers[0].activation.df: attribute access is not allowed" in result.output
    assert not sentinel.exists()


def test_the_whitelist_accepts_every_listed_function():
    z = np.array([[-2.0, -0.5, 0.5, 3.0]])
    f = parse_formula("exp(z) + log(abs(z)) + log1p(z*z) + sqrt(z*z) + tanh(z) + sin(z) + cos(z) "
                      "+ maximum(z, 0) - minimum(z, 0) + where(-1 < z <= 1, z, -z) + clip(z, -1, 1) + -z**-2",
                      ("z",))
    expected = (np.exp(z) + np.log(np.abs(z)) + np.log1p(z * z) + np.abs(z) + np.tanh(z) + np.sin(z) + np.cos(z)
                + np.maximum(z, 0) - np.minimum(z, 0) + np.where((z > -1) & (z <= 1), z, -z) + np.clip(z, -1, 1)
                - z ** -2.0)
    assert_allclose(f(z=z), expected, rtol=1e-15)
    out = np.empty_like(z)
    assert f(out, z=z) is out
    assert_allclose(parse_formula("2", ("z",))(z=z), np.full_like(z, 2.0))  # a constant is broadcast


def test_softsign_formula_matches_its_closed_form_and_keeps_float32():
    act = get_activation("softsign", SOFTSIGN)
    z = np.linspace(-50, 50, 11)[None, :]
    assert_allclose(act.fn(z), z / (1 + np.abs(z)), rtol=1e-15)
    assert_allclose(act.grad(z, act.fn(z)), 1 / (1 + np.abs(z)) ** 2, rtol=1e-15)
    assert act.fn(z.astype(np.float32)).dtype == np.float32
    assert act.formula == "f(z) = z / (1 + abs(z))" and act.grad_formula == "f'(z) = 1 / (1 + abs(z))**2"


def test_formula_loss_in_y_and_yhat_sums_over_outputs():
    loss = get_loss("quartic", {"L": "(yhat - y)**4 / 4", "dL": "(yhat - y)**3"})
    y_hat, y = np.array([[0.5, 2.0]]), np.array([[0.0, 1.0]])
    assert_allclose(loss.value(y_hat, y), [(0.5**4 + 1.0) / 4])
    assert_allclose(loss.grad(y_hat, y), [[0.125, 1.0]])


@pytest.mark.parametrize("params, message", [
    ({"f": "z"}, "missing 'df'"),
    ({"f": "z", "df": "1", "g": "2"}, "unknown key"),
    ({"f": "z", "df": "x"}, "unknown name 'x'"),
    ({"f": "z", "df": "exp(z, z)"}, "exp() takes 1 argument"),
])
def test_formula_mistakes_are_named(params, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        get_activation("mine", params)


def test_a_formula_may_not_take_a_built_in_name():
    with pytest.raises(ConfigError, match="'sigmoid' is a built-in activation"):
        get_activation("sigmoid", {"f": "z", "df": "1"})
    with pytest.raises(ConfigError, match="'mse' is a built-in loss"):
        get_loss("mse", {"L": "yhat", "dL": "1"})


def test_softsign_trains_on_xor_and_passes_gradcheck(tmp_path):
    cfg = xor_config(tmp_path)
    result = runner.invoke(app, ["train", str(cfg), "--out", str(tmp_path / "run"), "--json", "-q"])
    assert result.exit_code == 0, result.output
    import json
    doc = json.loads(result.stdout)
    assert doc["final"]["metric"] == "accuracy" and doc["final"]["train_metric"] == 1.0, doc["final"]
    # and by hand from the saved weights: softsign hidden layer, sigmoid output, the four XOR corners
    from bpcli.runs.store import checkpoint_dir
    with np.load(checkpoint_dir(tmp_path / "run") / "weights.npz", allow_pickle=False) as w:
        x = np.array([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
        z = x @ w["A.W"].T + w["A.b"]
        o = z / (1 + np.abs(z))
        y_hat = 1 / (1 + np.exp(-(o @ w["B.W"].T + w["B.b"])))
    assert [int(v > 0.5) for v in y_hat.ravel()] == [0, 1, 1, 0]
    result = runner.invoke(app, ["gradcheck", str(tmp_path / "run"), "--units"])
    assert result.exit_code == 0, result.output
    assert "softsign (layer A)" in result.output


def test_wrong_df_fails_gradcheck_units_at_the_first_wrong_z(tmp_path):
    # right below z = 1, wrong from z = 1 on: the first wrong z of the grid (step 0.05, from -5.975) is 1.025
    cfg = xor_config(tmp_path, df="where(z < 1, 1 / (1 + abs(z))**2, 1 / (1 + z))", epochs=10)
    result = runner.invoke(app, ["gradcheck", str(cfg), "--units", "--json"])
    assert result.exit_code == 1, result.output
    import json
    doc = json.loads(result.stdout)
    bad = [u for u in doc["units"] if not u["passed"]]
    assert [u["name"] for u in bad] == ["softsign (layer A)"]
    first = float(bad[0]["worst_at"].split("z=")[1].split(" ")[0])
    assert 1.0 <= first <= 1.025  # the network's own z values are checked too, so one may come first
    assert doc["failed"]["entries"] > 0  # and the network's gradient is wrong where it is used


def test_configs_without_formulas_never_import_the_parser():
    code = ("import sys; from bpcli.config.loader import load_config; from bpcli.nn.model import build; "
            "build(load_config()[0]); print('bpcli.nn.formula' in sys.modules, 'ast' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split()[0] == "False"


def test_a_wrong_loss_derivative_fails_gradcheck_units_and_a_right_one_passes(tmp_path):
    import json
    cfg = xor_config(tmp_path, epochs=10)
    for dL, code in (("(yhat - y)**3", 0), ("(yhat - y)**2", 1)):
        cfg.write_text(cfg.read_text().split("loss:")[0] + f'loss: {{name: quartic, L: "(yhat - y)**4 / 4", dL: "{dL}"}}\n'
                       + "init:" + cfg.read_text().split("init:")[1])
        result = runner.invoke(app, ["gradcheck", str(cfg), "--units", "--json"])
        assert result.exit_code == code, result.output
        unit = [u for u in json.loads(result.stdout)["units"] if u["name"] == "quartic (your dL)"]
        assert len(unit) == 1 and unit[0]["passed"] == (code == 0)
