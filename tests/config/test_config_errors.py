"""Bad configs: exit 2, one located line per problem (file:line: path: message), never a traceback."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from bpcli.cli.app import app
from bpcli.config.loader import load_config
from bpcli.yamlsrc import read_yaml

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



# --- YAML as people write it: one loader (bpcli.yamlsrc.read_yaml) for configs and answers alike ---------------

STEP = """\
inputs: [x1, x2]
layers:
  - {size: 2, activation: sigmoid, weights: [[0.3, -0.8], [0.6, 0.4]], biases: [0.1, -0.2]}
  - {size: 1, activation: sigmoid, weights: [[1.1, -0.6]], biases: [0.2]}
loss: squared_error
data: {x: [[0.5, 1.0], [-1.0, 2.0], [1.5, -0.5]], y: [[1], [0], [1]]}
train: {optimizer: gd, lr: 1e-3, epochs: 1}
"""


def test_an_exponent_without_a_dot_is_a_number_and_trains_with_that_lr(tmp_path):
    """YAML 1.1 reads 1e-3 as text; bpcli reads it as 0.001: one gradient-descent step moves each weight by
    0.001 times its gradient, the gradient worked out with plain floats (tests/test_diagnose.hand)."""
    from tests.teach.test_diagnose import hand

    p = tmp_path / "step.yaml"
    p.write_text(STEP)
    r = runner.invoke(app, ["train", str(p), "--out", str(tmp_path / "run"), "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["settings"]["lr"] == 0.001
    Ws = [[[0.3, -0.8], [0.6, 0.4]], [[1.1, -0.6]]]
    bs = [[0.1, -0.2], [0.2]]
    g = hand(Ws, bs, [[0.5, 1.0], [-1.0, 2.0], [1.5, -0.5]], [[1], [0], [1]])
    with np.load(tmp_path / "run" / "epoch-1" / "weights.npz", allow_pickle=False) as w:
        np.testing.assert_allclose(w["A.W"], [[0.3 - 1e-3 * g["w11"], -0.8 - 1e-3 * g["w12"]],
                                              [0.6 - 1e-3 * g["w21"], 0.4 - 1e-3 * g["w22"]]], rtol=0, atol=1e-15)
        np.testing.assert_allclose(w["B.W"], [[1.1 - 1e-3 * g["v1"], -0.6 - 1e-3 * g["v2"]]], rtol=0, atol=1e-15)
        np.testing.assert_allclose(w["B.b"], [0.2 - 1e-3 * g["b_B"]], rtol=0, atol=1e-15)


@pytest.mark.parametrize("text, value", [("1e-3", 0.001), ("5E+2", 500.0), ("-9e-06", -9e-06), ("1.5e3", 1500.0),
                                         ("+.5", 0.5), ("7", 7), ("0x1F", 31), ("true", True), ("5_1", "5_1"),
                                         ("017", "017"), ("1:30", "1:30"), ("yes", "yes"), ("off", "off"),
                                         ("2024-01-01", "2024-01-01")])
def test_plain_scalars_mean_what_they_say(text, value):
    doc, _ = read_yaml(f"v: {text}\n", "s.yaml")
    assert doc["v"] == value and type(doc["v"]) is type(value)


def test_a_key_given_twice_names_both_lines(tmp_path):
    err = run_bad(tmp_path, GOOD.replace("train: {lr: 0.5, epochs: 2}", "train: {lr: 0.5, epochs: 2}\nloss: mse"))
    assert f"error: {tmp_path / 'bad.yaml'}:9: loss: duplicate key: given on line 5 and again on line 9" in err
    err = run_bad(tmp_path, GOOD.replace("{lr: 0.5, epochs: 2}", "{lr: 0.5, epochs: 2, lr: 0.1}"))
    assert "bad.yaml:8: train.lr: duplicate key: given on line 8 and again on line 8" in err


@pytest.mark.parametrize("old, new, expected", [
    ("lr: 0.5", "lr: 5_1", "bad.yaml:8: train.lr: expected a number, found text '5_1' (YAML 1.1 would read '5_1' "
                           "as 51; write 51 if that is meant)"),
    ("epochs: 2", "epochs: 1_000", "train.epochs: expected a whole number, found text '1_000' (YAML 1.1 would "
                                   "read '1_000' as 1000"),
    ("epochs: 2", "epochs: 017", "train.epochs: expected a whole number, found text '017' (YAML 1.1 would read "
                                 "'017' as 15"),
    ("lr: 0.5", "lr: yes", "bad.yaml:8: train.lr: expected a number, found text 'yes' (YAML 1.1 would read 'yes' "
                           "as true; bpcli reads it as text)"),
    ("generator: xor", "x: [[0, 0], [0, 1], [1, 0], [1, 5_1]]\n  y: [[0], [1], [1], [0]]",
     "bad.yaml:7: data.x[3]: value 1 is text '5_1', expected a number (YAML 1.1 would read '5_1' as 51"),
    ("generator: xor", "x: [[0, 0], [0, 1], [1, 0], [1, 1]]\n  y: [[no], [yes], [yes], [no]]",
     "data.y[0]: value 0 is text 'no', expected a number (YAML 1.1 would read 'no' as false"),
])
def test_yaml11_surprises_are_refused_where_a_number_is_meant(tmp_path, old, new, expected):
    err = run_bad(tmp_path, GOOD.replace(old, new))
    assert expected in err, err
    assert len(err.strip().splitlines()) == 1


def test_yes_no_on_off_are_names_where_names_are_meant_and_true_false_where_a_switch_is(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text(GOOD.replace("[x1, x2]", "[on, off]").replace("generator: xor", "generator: xor\n  standardize: yes")
                 .replace("{lr: 0.5, epochs: 2}", "{lr: 0.5, epochs: 2, early_stopping: no, snapshots: off}")
                 .replace("{size: 1, activation: sigmoid}", "{size: 1, activation: sigmoid, bias: no}"))
    cfg, _ = load_config(p)
    assert cfg.inputs == ("on", "off") and cfg.data.standardize is True and cfg.train.patience is None
    assert cfg.train.snapshots is False and cfg.layers[1].bias == "off"


def test_names_that_look_like_numbers_survive_the_run_folder(tmp_path):
    """The stored config.yaml quotes every text a reader could take for a number or true/false."""
    p = tmp_path / "c.yaml"
    p.write_text(GOOD.replace("inputs: [x1, x2]", "name: '1e5'\ninputs: ['1e3', 'yes']"))
    r = runner.invoke(app, ["train", str(p), "--out", str(tmp_path / "run")])
    assert r.exit_code == 0, r.output
    stored = (tmp_path / "run" / "epoch-2" / "config.yaml").read_text()
    assert "name: '1e5'" in stored and "- '1e3'" in stored and "- 'yes'" in stored
    doc, _ = read_yaml(stored, "config.yaml")
    assert doc["name"] == "1e5" and doc["inputs"] == ["1e3", "yes"]
    r = runner.invoke(app, ["show", str(tmp_path / "run")])
    assert r.exit_code == 0 and "1e3, yes -> A1, A2 -> B" in r.output, r.output


HELD = ("layers: [{size: 2, activation: tanh}, {size: 1, activation: sigmoid}]\nloss: squared_error\n"
        "data:\n  x: [[0, 0], [0, 1], [1, 0], [1, 1], [0, 2], [2, 0], [2, 2], [1, 2], [2, 1], [3, 3]]\n"
        "  y: [[0], [1], [1], [0], [1], [1], [0], [1], [1], [0]]\n  validation: 0.2\n  test: 0.1\n"
        "train: {optimizer: sgd, lr: 0.5, epochs: 3, batch_size: BATCH}\n")


def test_a_batch_larger_than_the_training_rows_is_refused_in_the_config_on_the_command_line_and_a_branch(tmp_path):
    """10 samples, 2 held out for validation and 1 for test (round(0.2 * 10), round(0.1 * 10)): batches come from
    the 7 training rows, so a batch of 8 is refused (it passed as 'full batch' when checked against all 10), 7 is
    the whole training set."""
    err = run_bad(tmp_path, HELD.replace("BATCH", "8"))
    assert ("train.batch_size: batch size 8 is larger than the 7 training samples (10 less 3 held out); use at "
            "most 7") in err
    p = tmp_path / "ok.yaml"
    p.write_text(HELD.replace("BATCH", "2"))
    result = runner.invoke(app, ["train", str(p), "--batch-size", "8", "--out", str(tmp_path / "r")])
    assert result.exit_code == 2 and not (tmp_path / "r").exists()
    assert ("error: --batch-size: 8 is larger than the 7 training samples (10 less 3 held out); use at most 7"
            in result.stderr), result.stderr
    assert 0 == runner.invoke(app, ["train", str(p), "--batch-size", "7", "--epochs", "2", "-q", "--out",
                                    str(tmp_path / "r")]).exit_code
    result = runner.invoke(app, ["train", "--resume", str(tmp_path / "r"), "--from-epoch", "1", "--out",
                                 str(tmp_path / "b"), "--epochs", "3", "--batch-size", "8"])
    assert result.exit_code == 2 and not (tmp_path / "b").exists()
    assert "--batch-size: 8 is larger than the 7 training samples (10 less 3 held out)" in result.stderr
