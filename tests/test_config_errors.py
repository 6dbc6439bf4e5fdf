"""Bad configs: exit 2, one located line per problem (file:line: path: message), never a traceback."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from bpcli.cli import app

runner = CliRunner()

GOOD = """\
inputs: [x1, x2]
layers:
  - {size: 2, activation: sigmoid}
  - {size: 1, activation: sigmoid}
loss: squared_error
data:
  generator: xor
train: {lr: 0.5, epochs: 2}
"""


def run_bad(tmp_path, text: str, *args: str):
    p = tmp_path / "bad.yaml"
    p.write_text(text)
    result = runner.invoke(app, ["train", str(p), "--out", str(tmp_path / "run"), *args])
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "run").exists(), "a bad config must not leave a run folder"
    return result.stderr


CASES = [
    ("layers:\n  - {size: 2, activation: sigmoid\n", ["bad.yaml:", "invalid YAML"]),
    (GOOD.replace("layers:", "layres:"), ["bad.yaml:2:", "unknown key 'layres'", "did you mean 'layers'"]),
    (GOOD.replace("activation: sigmoid}\n  - {size: 1", "activation: sigmod}\n  - {size: 1"),
     ["bad.yaml:3:", "layers[0].activation", "did you mean 'sigmoid'"]),
    (GOOD.replace("{size: 2,", "{size: two,"), ["bad.yaml:3:", "layers[0].size", "whole number"]),
    (GOOD.replace("{size: 2,", "{size: 0,"), ["layers[0].size", "at least 1"]),
    (GOOD.replace("lr: 0.5", "lr: -0.1"), ["bad.yaml:8:", "train.lr", "> 0"]),
    (GOOD.replace("{size: 2, activation: sigmoid}", "{size: 2, activation: softmax}"),
     ["layers[0].activation", "output layer only"]),
    (GOOD.replace("generator: xor", "x: [[0, 0], [1, 1]]\n  y: [[0]]"), ["data.y", "x has 2 samples but y has 1"]),
    (GOOD.replace("generator: xor", "csv: nowhere.csv\n  target: y"), ["data.csv", "not found", "nowhere.csv"]),
    (GOOD.replace("{size: 1, activation: sigmoid}", "{size: 1, activation: sigmoid, weights: [[1, 2, 3]]}"),
     ["bad.yaml:4:", "layers[1].weights", "1 x 2 matrix", "found 1 x 3"]),
    (GOOD + "loss: mse\n", ["duplicate key"]),
    ("!!python/object/apply:os.system ['echo hi']\n", ["refused YAML tag", "python/object"]),
    ("- 1\n- 2\n", ["expected a mapping"]),
    ("", ["empty"]),
    (GOOD.replace("loss: squared_error", "loss: {name: squared_error, convention: torch}"),
     ["unknown convention 'torch'"]),
    (GOOD.replace("[x1, x2]", "3"), ["the network has 3 inputs but the data has 2"]),
    (GOOD.replace("{size: 2,", "{size: 1000000,").replace("[x1, x2]", "1000000").replace("generator: xor", "x: [[0]]\n  y: [[0]]"),
     ["would need", "parameters"]),
    (GOOD.replace("loss: squared_error", "loss: binary_cross_entropy").replace(
        "{size: 1, activation: sigmoid}", "{size: 1, activation: relu}"), ["binary_cross_entropy needs outputs in (0, 1)"]),
    (GOOD.replace("init:", "x").replace("loss: squared_error", "loss: squared_error\ninit: {values: {w99: 1.0}}"),
     ["init.values.w99", "unknown parameter 'w99'"]),
]


@pytest.mark.parametrize("text,expected", CASES, ids=range(len(CASES)))
def test_bad_config_gives_located_one_line_errors(tmp_path, text, expected):
    err = run_bad(tmp_path, text)
    for piece in expected:
        assert piece in err, f"{piece!r} not in {err!r}"
    for line in err.strip().splitlines():
        assert line.startswith("error: "), line


def test_all_problems_are_reported_at_once(tmp_path):
    text = GOOD.replace("{size: 2,", "{size: -1,").replace("lr: 0.5", "lr: fast") + "bogus: 1\n"
    err = run_bad(tmp_path, text)
    lines = err.strip().splitlines()
    assert len(lines) == 3, err
    assert any("layers[0].size" in ln for ln in lines)
    assert any("train.lr" in ln for ln in lines)
    assert any("unknown key 'bogus'" in ln for ln in lines)


def test_missing_config_file(tmp_path):
    result = runner.invoke(app, ["train", str(tmp_path / "missing.yaml")])
    assert result.exit_code == 2
    assert "config file not found" in result.stderr


def test_non_utf8_config(tmp_path):
    p = tmp_path / "bad.yaml"
    p.write_bytes(b"layers: [\xff\xfe]\n")
    result = runner.invoke(app, ["train", str(p)])
    assert result.exit_code == 2 and "not UTF-8" in result.stderr


@pytest.mark.parametrize("args,piece", [
    (["--epochs", "0"], "--epochs"), (["--lr", "0"], "--lr"), (["--lr", "nan"], "--lr"), (["--lr", "1e308"], "--lr"),
    (["--batch-size", "99"], "larger than the 4 samples"), (["--seed", "-3"], "--seed"),
])
def test_bad_command_line_values(tmp_path, args, piece):
    p = tmp_path / "ok.yaml"
    p.write_text(GOOD)
    result = runner.invoke(app, ["train", str(p), "--out", str(tmp_path / "run"), *args])
    assert result.exit_code == 2 and piece in result.stderr, result.stderr
    assert not (tmp_path / "run").exists()


def test_softmax_cross_entropy_refuses_targets_that_are_not_distributions(tmp_path):
    """The y' - y shortcut is only the gradient when every target row adds up to 1."""
    text = ("layers: [{size: 3, activation: tanh}, {size: 2, activation: softmax}]\nloss: cross_entropy\n"
            "data:\n  x: [[0, 1], [1, 0], [1, 1]]\n  y: [[0.7, 0.7], [0.2, 0.5], [1, 0]]\n")
    err = run_bad(tmp_path, text)
    assert "bad.yaml:5: data.y: softmax with cross_entropy needs each target row to add up to 1" in err
    assert "row 0 adds up to 1.4" in err


def test_a_non_text_convention_is_one_clear_line(tmp_path):
    err = run_bad(tmp_path, GOOD.replace("loss: squared_error", "loss: {name: squared_error, convention: [1]}"))
    assert "loss.convention: expected text" in err


def test_cross_entropy_on_one_sigmoid_output_points_to_binary_cross_entropy(tmp_path):
    """-y log(y') is 0 for every y = 0 sample: that network would only ever learn the y = 1 half."""
    err = run_bad(tmp_path, GOOD.replace("loss: squared_error", "loss: cross_entropy"))
    assert err == (f"error: {tmp_path / 'bad.yaml'}:5: loss: cross_entropy with one sigmoid output ignores every sample whose "
                   "target is 0 (its -y log(y') is 0 there); use binary_cross_entropy\n")
    assert "use binary_cross_entropy" not in run_bad(
        tmp_path, GOOD.replace("loss: squared_error", "loss: binary_cross_entropy").replace("lr: 0.5", "lr: -1"))

