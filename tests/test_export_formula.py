"""A config's own activation (a formula) crosses to PyTorch and numpy: autograd of the user's f is the oracle
for the user's df, and the exported code computes what bpcli computes."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
from typer.testing import CliRunner

from bpcli.cli import app
from bpcli.config import builtin_config_dir

runner = CliRunner()
SOFTSIGN = builtin_config_dir() / "softsign_xor.yaml"


def test_formula_code_writes_the_checked_tree_only():
    from bpcli.formula import FormulaError, formula_code
    assert formula_code("z / (1 + abs(z))", {"z": "x"}, "numpy") == "np.divide(x, np.add(1.0, np.absolute(x)))"
    assert formula_code("where(z > 0, z, 0.1 * z)", {"z": "z"}, "torch") == \
        "torch.where(torch.gt(z, _t(0.0)), z, torch.mul(_t(0.1), z))"
    # a chain of comparisons is every link, as bpcli evaluates it (it was the first link only)
    assert formula_code("where(-0.5 < z < 0.5, z, 0)", {"z": "z"}, "numpy") == \
        "np.where(np.logical_and(np.less(np.negative(0.5), z), np.less(z, 0.5)), z, 0.0)"
    with pytest.raises(FormulaError):
        formula_code("__import__('os').system('true')", {"z": "z"}, "numpy")


def test_numpy_export_of_a_formula_activation_predicts_as_bpcli(tmp_path):
    run = tmp_path / "run"
    assert runner.invoke(app, ["train", str(SOFTSIGN), "--epochs", "50", "--out", str(run), "-q"]).exit_code == 0
    assert runner.invoke(app, ["export", str(run), "--to", "numpy", "--out", str(tmp_path / "np")]).exit_code == 0
    spec = importlib.util.spec_from_file_location("predict_softsign", tmp_path / "np" / "predict.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    x = np.array([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0], [0.3, -2.0]])
    from bpcli.engine import predict
    from bpcli.runs import load_run
    np.testing.assert_allclose(mod.predict(x), predict(load_run(run).net, x), rtol=1e-13, atol=0)


def test_gradcheck_against_torch_judges_the_users_derivative(tmp_path):
    pytest.importorskip("torch", reason="PyTorch is not installed: pip install -e '.[dev,torch]' runs this")
    ok = runner.invoke(app, ["gradcheck", "--against", "torch", str(SOFTSIGN), "--json"])
    assert ok.exit_code == 0, ok.output
    wrong = tmp_path / "wrong.yaml"  # df of z / (1 + z) instead of z / (1 + |z|): wrong for z < 0
    wrong.write_text(SOFTSIGN.read_text().replace('df: "1 / (1 + abs(z))**2"', 'df: "1 / (1 + z)**2"'))
    bad = runner.invoke(app, ["gradcheck", "--against", "torch", str(wrong), "--json"])
    assert bad.exit_code == 1, bad.output
    import json
    failed = {e["name"] for e in json.loads(bad.stdout)["entries"] if not e["passed"]}
    assert failed and all(n.startswith(("w", "b_A")) for n in failed)  # the hidden layer, where the formula is
