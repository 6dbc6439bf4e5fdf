"""A CSV's class labels are numbers or text by one rule (data.dataset): a label with a digit separator (1_0) is
text, so `classes:` must name it and reorders the outputs, and the run keeps it, as for any text label."""

from __future__ import annotations

import pytest

from bpcli.config.loader import load_config
from bpcli.errors import ConfigError

LABELS = ["1_0", "2_0", "2_0", "1_0"]
CONFIG = """version: 1
name: separators
layers:
  - {{size: 2, activation: tanh}}
  - {{size: 1, activation: sigmoid}}
loss: binary_cross_entropy
data: {{csv: d.csv, features: [x1, x2], target: kind{classes}}}
train: {{optimizer: gd, lr: 0.1, epochs: 2, seed: 0}}
"""


def _load(tmp_path, classes: str = ""):
    (tmp_path / "d.csv").write_text("x1,x2,kind\n0,0,1_0\n0,1,2_0\n1,0,2_0\n1,1,1_0\n")
    (tmp_path / "c.yaml").write_text(CONFIG.format(classes=classes))
    return load_config(tmp_path / "c.yaml")


def test_labels_with_digit_separators_are_kept_in_the_resolved_config_as_text_labels(tmp_path):
    cfg, data = _load(tmp_path)
    assert ("1_0", "2_0") == data.class_names == cfg.data.class_names


def test_names_of_such_labels_set_the_order_of_the_outputs(tmp_path):
    _, data = _load(tmp_path, ", classes: [2_0, 1_0]")
    assert ("2_0", "1_0") == data.class_names
    # one output: y' < 0.5 is the first class named, y' >= 0.5 the second; each row keeps its own label
    assert LABELS == [data.class_names[int(v)] for v in data.y[:, 0]]


def test_names_that_are_not_such_labels_say_which(tmp_path):
    with pytest.raises(ConfigError) as err:
        _load(tmp_path, ", classes: [a, b]")
    assert 1 == len(err.value.problems)
    assert "'a' is not a label of the target column; its labels are: 1_0, 2_0" in err.value.problems[0]


@pytest.mark.parametrize("train_labels,new_label", [(("1_0", "2_0"), "10"), (("1_0", "2_0"), "20.0"),
                                                    (("10", "20"), "1_0")])
def test_new_data_labels_are_numbers_or_text_by_the_same_rule(tmp_path, train_labels, new_label):
    """evaluate reads a label of new data as the run's data reader does: '10' is not the class '1_0' (text), and
    '1_0' is not the class '10', though Python's float() reads both as 10."""
    from typer.testing import CliRunner

    from bpcli.cli.app import app

    a, b = train_labels
    (tmp_path / "d.csv").write_text(f"x1,x2,kind\n0,0,{a}\n0,1,{b}\n1,0,{b}\n1,1,{a}\n")
    config = CONFIG.format(classes="")
    if a == "10":  # numbers as class names: one output per class (one output would read them as targets)
        config = config.replace("{size: 1, activation: sigmoid}", "{size: 2, activation: softmax}").replace(
            "loss: binary_cross_entropy", "loss: cross_entropy")
    (tmp_path / "c.yaml").write_text(config)
    runner = CliRunner()
    res = runner.invoke(app, ["train", str(tmp_path / "c.yaml"), "--out", str(tmp_path / "run"), "-q"])
    assert res.exit_code == 0, res.output
    (tmp_path / "new.csv").write_text(f"x1,x2,kind\n0,0,{a}\n0,1,{new_label}\n")
    res = runner.invoke(app, ["evaluate", str(tmp_path / "run"), str(tmp_path / "new.csv")])
    expected = (f"error: {tmp_path / 'new.csv'}:3: column 'kind': '{new_label}' is not a class of this run")
    assert 2 == res.exit_code, res.output
    assert res.stderr.startswith(expected) and f"its classes: {a}, {b}" in res.stderr, res.stderr


def test_a_target_read_as_numbers_after_too_many_labels_refuses_a_label_with_a_separator(tmp_path, monkeypatch):
    """Past MAX_LABELS distinct values a target column is numbers: the labels read before are numbers by the same
    rule as the rows after, so a first row's 1_0 is refused as a later row's would be, not read as 10."""
    from bpcli.data import dataset
    from bpcli.errors import BpcliError

    monkeypatch.setattr(dataset, "MAX_LABELS", 3)
    (tmp_path / "d.csv").write_text("x1,x2,kind\n0,0,1_0\n0,1,2\n1,0,3\n1,1,4\n2,2,5\n")
    (tmp_path / "c.yaml").write_text(CONFIG.format(classes="").replace("sigmoid", "identity").replace(
        "binary_cross_entropy", "squared_error"))
    with pytest.raises(BpcliError) as err:
        load_config(tmp_path / "c.yaml")
    assert "column 'kind' has more than 3 distinct values and some are not numbers" in str(err.value), err.value
