"""What the command fuzzer found: runs that trained but could not be read back. Each is now refused or kept loadable."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from bpcli.cli.app import app
from bpcli.config.loader import load_config
from bpcli.errors import ConfigError
from bpcli.runs.store import load_run

runner = CliRunner()


def test_float32_weights_beyond_its_range_are_a_located_error(tmp_path):
    """1e150 is a fine float64 but inf as float32: the run trained and then its weights.npz was refused."""
    (tmp_path / "c.yaml").write_text(
        "inputs: 2\nlayers: [{size: 1, weights: [[1.0e+150, 0.5]], biases: [-1.0e+39]}]\n"
        "init: {values: {w2: 4.0e+38}}\ndata: {generator: xor}\ntrain: {dtype: float32}\n")
    with pytest.raises(ConfigError) as err:
        load_config(tmp_path / "c.yaml")
    wheres = sorted(p.split(": ")[1] for p in err.value.problems)
    assert ["init.values.w2", "layers[0].biases", "layers[0].weights"] == wheres, err.value.problems
    assert all("float32" in p for p in err.value.problems)
    (tmp_path / "c.yaml").write_text((tmp_path / "c.yaml").read_text().replace("float32", "float64"))
    load_config(tmp_path / "c.yaml")


def test_an_optimiser_state_that_overflows_is_a_divergence_and_the_run_loads(tmp_path, monkeypatch):
    """Adam's v holds squared gradients: with weights of 1e150 it became inf while the loss stayed finite."""
    monkeypatch.chdir(tmp_path)
    Path("c.yaml").write_text(  # config 758 of the fuzzer's seed 20251130
        "inputs: 2\nlayers:\n- {size: 4, activation: sigmoid, weights: [[-0.16, 0.099], [-0.131, 0.507], "
        "[0.265, 0.217], [-0.029, -0.384]]}\n- {size: 1, activation: elu, weights: [[5.100366295567209e+149, "
        "1.9285379555641148e+149, -1.5107780240551761e+150, -1.4117541142301918e+150]]}\n"
        "init: {scheme: he_normal, seed: 23}\n"
        "data:\n  x: [[1323.035, -1460.765], [-352.588, 761.517], [236.55, -736.677], [-1317.171, -579.049], "
        "[-1027.591, 261.582], [1184.88, -1324.736], [459.734, -578.495], [-983.958, 1176.876], "
        "[-1497.515, -530.806], [-1441.523, -2102.678], [-104.024, -558.679], [818.444, -709.496]]\n"
        "  y: [[-0.498], [0.911], [-1.014], [2.435], [-1.103], [0.364], [1.68], [0.559], [1.962], [0.302], "
        "[-1.352], [-0.194]]\n  validation: 0.25\ntrain: {optimizer: adam, lr: 0.11550283080382415, epochs: 1}\n")
    result = runner.invoke(app, ["train", "c.yaml", "-q", "--out", "run"])
    assert 1 == result.exit_code, result.output
    assert "optimiser's running averages overflowed at epoch 1" in result.stderr
    loaded = load_run("run")
    assert ("diverged", 0) == (loaded.state.status, loaded.state.epoch)
    assert 0 == runner.invoke(app, ["show", "run", "--json"]).exit_code
