"""data.test: a held-out part beside data.validation, stratified with its own seed, never trained, stopped or scaled on."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, log_loss
from typer.testing import CliRunner

from bpcli.cli.app import app
from bpcli.config.loader import builtin_config_dir, load_config
from bpcli.data.dataset import Dataset, one_hot, partition
from bpcli.runs.store import checkpoint_dir
from tests.analysis.test_predict import iris_probabilities

runner = CliRunner()
IRIS = builtin_config_dir() / "iris.csv"
SPECIES = ("setosa", "versicolor", "virginica")


def classes_dataset(counts: list[int]) -> Dataset:
    labels = np.repeat(np.arange(len(counts)), counts)
    x = np.arange(labels.size, dtype=float)[:, None]
    return Dataset(x, one_hot(labels, len(counts)), ("x",), ("a", "b", "c"), ("a", "b", "c"), "classification")


def test_parts_are_disjoint_complete_and_stratified_to_the_exact_count():
    data = classes_dataset([50, 30, 20])
    train, val, test = partition(data, 0.2, 7, 0.15, 3)
    every = np.concatenate([train, val, test])
    assert sorted(every.tolist()) == list(range(100))  # complete, and no row twice
    label = data.y.argmax(axis=1)
    # test: 15 of 100 -> shares 7.5, 4.5, 3.0; floor 7, 4, 3 leaves one for the largest remainder (a tie: class a)
    assert [8, 4, 3] == np.bincount(label[test], minlength=3).tolist()
    # validation: 20 of the 85 left (42, 26, 17) -> shares 9.88, 6.12, 4.0; floor 9, 6, 4 leaves one, to class a
    assert [10, 6, 4] == np.bincount(label[val], minlength=3).tolist()
    assert [32, 20, 13] == np.bincount(label[train], minlength=3).tolist()


def test_the_test_rows_have_their_own_seed():
    data = classes_dataset([50, 30, 20])
    _, _, test = partition(data, 0.2, 7, 0.15, 3)
    for validation, split_seed in ((0.0, 0), (0.3, 1), (0.2, 99)):  # the validation split does not move them
        assert test.tolist() == partition(data, validation, split_seed, 0.15, 3)[2].tolist()
    assert test.tolist() != partition(data, 0.2, 7, 0.15, 4)[2].tolist()


def test_regression_parts_are_disjoint_and_complete():
    x = np.linspace(0, 1, 37)[:, None]
    data = Dataset(x, x ** 2, ("x",), ("y",), None, "regression")
    train, val, test = partition(data, 0.25, 0, 0.2, 0)
    assert (len(train), len(val), len(test)) == (37 - 9 - 7, 9, 7)  # round(9.25) = 9, round(7.4) = 7
    assert sorted(np.concatenate([train, val, test]).tolist()) == list(range(37))


def config(tmp_path: Path, csv_path: Path, name: str, epochs: int = 300) -> Path:
    path = tmp_path / f"{name}.yaml"
    path.write_text(f"""
name: {name}
layers: [{{size: 6, activation: tanh}}, {{size: 3, activation: softmax}}]
loss: cross_entropy
data: {{csv: {csv_path}, target: species, validation: 0.2, test: 0.2, standardize: true}}
train: {{optimizer: adam, lr: 0.1, epochs: {epochs}, early_stopping: {{patience: 4}}}}
""")
    return path


def weights(run_dir: Path) -> dict[str, np.ndarray]:
    with np.load(checkpoint_dir(run_dir) / "weights.npz", allow_pickle=False) as npz:
        return {k: npz[k] for k in npz.files}


def test_test_rows_change_nothing_in_training_and_early_stopping_stops_on_validation(tmp_path):
    cfg, data = load_config(config(tmp_path, IRIS, "plain"))
    test = partition(data, 0.2, 0, 0.2, 0)[2]
    with open(IRIS, newline="") as fh:
        rows = list(csv.reader(fh))
    for i in test:  # the test rows' measurements made absurd; their labels (the stratification) kept
        rows[1 + i][:4] = [str(float(v) * 1000 + 5) for v in rows[1 + i][:4]]
    odd = tmp_path / "odd.csv"
    with open(odd, "w", newline="") as fh:
        csv.writer(fh).writerows(rows)
    summaries = {}
    for name, source in (("plain", IRIS), ("odd", odd)):
        result = runner.invoke(app, ["train", str(config(tmp_path, source, name)), "-q", "--json",
                                     "--out", str(tmp_path / name)])
        assert result.exit_code == 0, result.output
        summaries[name] = json.loads(result.stdout)
    a, b = weights(tmp_path / "plain"), weights(tmp_path / "odd")
    for k in a:
        assert a[k].tobytes() == b[k].tobytes(), k
    history = [(tmp_path / n / "history.csv").read_text() for n in ("plain", "odd")]
    strip = [[line.split(",")[:5] for line in h.splitlines()] for h in history]  # not the seconds column
    assert strip[0] == strip[1]
    # the stop epoch from the run's own validation losses: patience 4 epochs without a new best
    val = [float(r[2]) for r in strip[0][1:]]
    best, bad, stop = float("inf"), 0, None
    for epoch, v in enumerate(val, 1):
        best, bad = (v, 0) if v < best else (best, bad + 1)
        if bad == 4:
            stop = epoch
            break
    assert summaries["plain"]["status"] == "early_stopped"
    assert stop == summaries["plain"]["epochs"] == len(val) < 300
    assert summaries["plain"]["samples"] == {"train": 90, "validation": 30, "test": 30}


def test_evaluate_part_test_equals_scikit_learn_on_the_test_rows(tmp_path):
    path = config(tmp_path, IRIS, "iris", epochs=40)
    assert runner.invoke(app, ["train", str(path), "-q", "--out", str(tmp_path / "r")]).exit_code == 0
    result = runner.invoke(app, ["evaluate", str(tmp_path / "r"), "--part", "test", "--json"])
    assert result.exit_code == 0, result.output
    got = json.loads(result.stdout)
    _, data = load_config(path)
    test = partition(data, 0.2, 0, 0.2, 0)[2]
    with open(IRIS, newline="") as fh:
        table = list(csv.DictReader(fh))
    x_raw = np.array([[float(table[i][c]) for c in ("sepal_length", "sepal_width", "petal_length", "petal_width")]
                      for i in test])
    truth = [SPECIES.index(table[i]["species"]) for i in test]
    p = iris_probabilities(tmp_path / "r", x_raw)  # the network written out by hand, scaling included
    assert got["samples"] == 30 and "test" in got["source"]
    assert got["value"] == pytest.approx(accuracy_score(truth, p.argmax(axis=1)), abs=1e-15)
    assert got["loss"]["value"] == pytest.approx(log_loss(truth, p, labels=[0, 1, 2]), rel=1e-12)


def test_part_test_without_a_test_part_is_refused(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text(config(tmp_path, IRIS, "c").read_text().replace(", test: 0.2", ""))
    assert runner.invoke(app, ["train", str(path), "-q", "--epochs", "2", "--out", str(tmp_path / "r")]).exit_code == 0
    result = runner.invoke(app, ["evaluate", str(tmp_path / "r"), "--part", "test"])
    assert result.exit_code == 2 and "data.test is 0" in result.stderr


def test_a_test_part_that_leaves_no_training_rows_names_data_test(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text(config(tmp_path, IRIS, "c").read_text().replace("test: 0.2", "test: 0.8"))
    result = runner.invoke(app, ["train", str(path), "-q"])
    assert result.exit_code == 2
    assert "data.test" in result.stderr and "no training samples" in result.stderr


def test_predict_on_the_run_marks_each_row_with_its_part(tmp_path):
    path = config(tmp_path, IRIS, "iris", epochs=2)
    assert runner.invoke(app, ["train", str(path), "-q", "--out", str(tmp_path / "r")]).exit_code == 0
    rows = json.loads(runner.invoke(app, ["predict", str(tmp_path / "r"), "--json"]).stdout)["rows"]
    _, data = load_config(path)
    train, val, test = partition(data, 0.2, 0, 0.2, 0)
    part = [r["carried"]["part"] for r in rows]
    assert [i for i, p in enumerate(part) if p == "test"] == test.tolist()
    assert [i for i, p in enumerate(part) if p == "validation"] == val.tolist()
    assert part.count("train") == len(train) == 90
