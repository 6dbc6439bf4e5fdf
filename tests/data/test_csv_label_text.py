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
