"""bpcli train data.csv --target COLUMN: the task read from the column as scikit-learn reads it, and a run like any other."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from sklearn.utils.multiclass import type_of_target
from typer.testing import CliRunner

from bpcli.cli.app import app
from bpcli.config.loader import builtin_config_dir, load_config
from bpcli.runs.store import checkpoint_dir
from bpcli.yamlsrc import read_yaml

runner = CliRunner()
IRIS = builtin_config_dir() / "iris.csv"


def column(path: Path, name: str) -> np.ndarray:
    """The column as scikit-learn users read it: numbers as floats when every value is one, else the text."""
    with open(path, newline="") as fh:
        texts = [row[name] for row in csv.DictReader(fh)]
    try:
        return np.array([float(t) for t in texts])
    except ValueError:
        return np.array(texts, dtype=object)


def write_csv(path: Path, rows: list[tuple]) -> Path:
    path.write_text("a,b,y\n" + "".join(",".join(str(v) for v in r) + "\n" for r in rows))
    return path


def made_config(csv_path: Path, target: str, *extra: str) -> dict:
    result = runner.invoke(app, ["train", str(csv_path), "--target", target, "--print-config", *extra])
    assert result.exit_code == 0, result.output
    doc, _ = read_yaml(result.stdout, "printed")
    return doc


def weights(run_dir: Path) -> dict[str, np.ndarray]:
    with np.load(checkpoint_dir(run_dir) / "weights.npz", allow_pickle=False) as npz:
        return {k: npz[k] for k in npz.files}


def rows(m: int, y) -> list[tuple]:
    rng = np.random.default_rng(3)
    return [(round(float(rng.normal()), 4), round(float(rng.normal()), 4), y(i)) for i in range(m)]


@pytest.fixture
def binary_csv(tmp_path) -> Path:
    return write_csv(tmp_path / "churn.csv", rows(40, lambda i: "yes" if i % 3 else "no"))


@pytest.fixture
def regression_csv(tmp_path) -> Path:
    return write_csv(tmp_path / "price.csv", rows(40, lambda i: round(1.5 + 0.25 * i + 0.01 * (i % 7), 3)))


def test_iris_species_is_multiclass_softmax_and_cross_entropy():
    assert type_of_target(column(IRIS, "species")) == "multiclass"
    doc = made_config(IRIS, "species", "--hidden", "8,8")
    assert [(l["size"], l["activation"]) for l in doc["layers"]] == [(8, "tanh"), (8, "tanh"), (3, "softmax")]
    assert doc["loss"] == "cross_entropy"
    assert doc["data"]["task"] == "classification"


def test_two_text_labels_are_binary_one_sigmoid_and_bce(binary_csv):
    assert type_of_target(column(binary_csv, "y")) == "binary"
    doc = made_config(binary_csv, "y", "--hidden", "4", "--activation", "relu")
    assert [(l["size"], l["activation"]) for l in doc["layers"]] == [(4, "relu"), (1, "sigmoid")]
    assert doc["loss"] == "binary_cross_entropy"


def test_two_whole_numbers_are_binary_and_train_as_0_and_1(tmp_path):
    path = write_csv(tmp_path / "two.csv", rows(20, lambda i: 1 + i % 2))
    assert type_of_target(column(path, "y")) == "binary"
    doc = made_config(path, "y")
    assert (doc["layers"][-1]["activation"], doc["loss"]) == ("sigmoid", "binary_cross_entropy")
    cfg_path = tmp_path / "two.yaml"
    cfg_path.write_text(runner.invoke(app, ["train", str(path), "--target", "y", "--print-config"]).stdout)
    _, data = load_config(cfg_path)
    expected = [float(v == 2) for v in column(path, "y")]  # label 1 is class 0, label 2 class 1
    assert expected == data.y[:, 0].tolist()


def test_few_whole_numbers_are_classes(tmp_path):
    path = write_csv(tmp_path / "three.csv", rows(30, lambda i: i % 3))
    assert type_of_target(column(path, "y")) == "multiclass"
    doc = made_config(path, "y")
    assert (doc["layers"][-1], doc["loss"]) == ({"size": 3, "activation": "softmax"}, "cross_entropy")


def test_numbers_with_fractions_are_regression_identity_and_squared_error(regression_csv):
    assert type_of_target(column(regression_csv, "y")) == "continuous"
    doc = made_config(regression_csv, "y", "--hidden", "")
    assert doc["layers"] == [{"size": 1, "activation": "identity"}]
    assert (doc["loss"], doc["data"]["task"]) == ("squared_error", "regression")


def test_many_whole_numbers_are_a_quantity_not_classes(tmp_path):
    # scikit-learn calls 40 distinct integers 'multiclass'; bpcli treats more than 20 as a number to predict
    path = write_csv(tmp_path / "count.csv", rows(40, lambda i: 100 + i))
    assert type_of_target(column(path, "y")) == "multiclass"
    doc = made_config(path, "y")
    assert (doc["layers"][-1]["activation"], doc["loss"]) == ("identity", "squared_error")


def test_csv_run_trains_and_its_printed_config_gives_the_same_run_bit_for_bit(tmp_path):
    args = ["train", str(IRIS), "--target", "species", "--hidden", "8,8", "--activation", "tanh",
            "--epochs", "15", "--lr", "0.05"]
    one = runner.invoke(app, [*args, "-q", "--json", "--out", str(tmp_path / "one")])
    assert one.exit_code == 0, one.output
    summary = json.loads(one.stdout)
    assert summary["status"] == "completed" and summary["epochs"] == 15
    printed = runner.invoke(app, [*args, "--print-config"]).stdout
    (tmp_path / "sub").mkdir()
    cfg_path = tmp_path / "sub" / "iris_made.yaml"  # elsewhere than the CSV: its path is absolute
    cfg_path.write_text(printed)
    two = runner.invoke(app, ["train", str(cfg_path), "-q", "--out", str(tmp_path / "two")])
    assert two.exit_code == 0, two.output
    a, b = weights(tmp_path / "one"), weights(tmp_path / "two")
    assert a.keys() == b.keys()
    for k in a:
        assert a[k].tobytes() == b[k].tobytes(), k
    # the run is a run like any other: gradcheck and explain read its config.yaml
    assert runner.invoke(app, ["gradcheck", "--run", str(tmp_path / "one")]).exit_code == 0
    assert runner.invoke(app, ["explain", "--run", str(tmp_path / "one"), "--weight", "u11"]).exit_code == 0


def test_csv_without_target_says_what_to_add():
    result = runner.invoke(app, ["train", str(IRIS)])
    assert result.exit_code == 2
    assert "--target COLUMN" in result.stderr and "species" in result.stderr
    assert "Traceback" not in result.output


@pytest.mark.parametrize("args, flag", [(["--hidden", "8,x"], "--hidden"), (["--hidden", "8"], "--hidden")])
def test_csv_options_are_checked(args, flag, tmp_path):
    call = ["train", str(IRIS), "--target", "species", *args] if "x" in args[1] else ["train", str(IRIS), *args]
    result = runner.invoke(app, call)
    assert result.exit_code == 2
    assert result.stderr.startswith(f"error: {flag}")


def test_unknown_target_column_is_named(tmp_path):
    result = runner.invoke(app, ["train", str(IRIS), "--target", "specis"])
    assert result.exit_code == 2
    assert "'specis'" in result.stderr and "species" in result.stderr


@pytest.mark.parametrize("args, message", [
    (["--activation", "sigmod"], "--activation: unknown activation 'sigmod' (did you mean 'sigmoid'?)"),
    (["--activation", "softmax"], "--activation: softmax is for the output layer only"),
    (["--lr", "-1"], "--lr: must be > 0, found -1"),
    (["--epochs", "0"], "--epochs: must be at least 1, found 0"),
])
def test_bad_options_are_named_by_their_flag(args, message):
    result = runner.invoke(app, ["train", str(IRIS), "--target", "species", "-q", *args])
    assert result.exit_code == 2
    assert result.stderr.startswith(f"error: {message}")


def test_activation_is_written_by_its_own_name():
    doc = made_config(IRIS, "species", "--activation", "ReLU", "--hidden", "5")
    assert doc["layers"][0] == {"size": 5, "activation": "relu"}


@pytest.mark.parametrize("name", ["iris.yaml", "my.YML"])
def test_target_on_a_yaml_config_says_it_is_a_config_not_a_csv(name, tmp_path):
    config = tmp_path / name
    config.write_bytes((builtin_config_dir() / "iris.yaml").read_bytes())
    result = runner.invoke(app, ["train", str(config), "--target", "species", "--out", str(tmp_path / "run")])
    assert result.exit_code == 2
    assert result.stderr == (f"error: --target: {config} is a YAML config, not a CSV file; train it as it is with "
                             f"`bpcli train {config}` (--target COLUMN makes a config for a CSV file of data)\n")
    assert not (tmp_path / "run").exists()
