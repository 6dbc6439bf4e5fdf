"""evaluate's ROC-AUC, balanced accuracy and --threshold against scikit-learn's metrics."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, balanced_accuracy_score, confusion_matrix, roc_auc_score
from typer.testing import CliRunner

from bpcli.cli.app import app
from bpcli.config.loader import builtin_config_dir
from bpcli.analysis.evaluate import roc_auc

runner = CliRunner()
IRIS = builtin_config_dir() / "iris.csv"


def trained(tmp_path: Path, csv_path: Path, target: str, epochs: int, name: str = "r") -> Path:
    out = tmp_path / name
    result = runner.invoke(app, ["train", str(csv_path), "--target", target, "--hidden", "3", "--epochs", str(epochs),
                                 "-q", "--out", str(out)])
    assert result.exit_code == 0, result.output
    return out


def scored(run: Path, *args: str) -> dict:
    result = runner.invoke(app, ["evaluate", str(run), "--json", *args])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def probabilities(run: Path, part: str) -> tuple[list[str], np.ndarray, list[str]]:
    """The truth, the probability columns and the class names of the rows of one part, from predict."""
    doc = json.loads(runner.invoke(app, ["predict", str(run), "--json"]).stdout)
    rows = [r for r in doc["rows"] if part == "all" or r["carried"]["part"] == part]
    classes = doc["classes"]
    target = next(k for k in rows[0]["carried"] if k != "part")
    return [r["carried"][target] for r in rows], np.array([[r["probabilities"][c] for c in classes] for r in rows]), classes


def test_three_classes_one_vs_rest_auc_and_balanced_accuracy_equal_scikit_learn(tmp_path):
    run = trained(tmp_path, IRIS, "species", epochs=8)  # early: neither score is perfect yet
    got = scored(run, "--part", "validation")
    truth, p, classes = probabilities(run, "validation")
    codes = [classes.index(t) for t in truth]
    assert got["roc_auc"] == pytest.approx(roc_auc_score(codes, p, multi_class="ovr", average="macro"), abs=1e-12)
    assert got["balanced_accuracy"] == pytest.approx(balanced_accuracy_score(codes, p.argmax(axis=1)), abs=1e-12)
    assert got["roc_auc"] < 1 and got["balanced_accuracy"] < 1


@pytest.fixture
def binary_run(tmp_path) -> Path:
    rng = np.random.default_rng(5)
    x = rng.normal(size=(80, 2))
    y = (x[:, 0] + 0.8 * rng.normal(size=80) > 0.3).astype(int)  # noisy labels, unbalanced
    path = tmp_path / "b.csv"
    path.write_text("a,b,y\n" + "".join(f"{u:.3f},{v:.3f},{'yes' if t else 'no'}\n" for (u, v), t in zip(x, y)))
    return trained(tmp_path, path, "y", epochs=30)


@pytest.mark.parametrize("threshold", [None, 0.3, 0.65])
def test_binary_auc_balanced_accuracy_and_threshold_equal_scikit_learn(binary_run, threshold):
    args = ["--part", "all"] + ([] if threshold is None else ["--threshold", str(threshold)])
    got = scored(binary_run, *args)
    truth, p, classes = probabilities(binary_run, "all")
    assert classes == ["no", "yes"]
    y = np.array([t == "yes" for t in truth], dtype=int)
    score = p[:, 1]
    pred = (score >= (0.5 if threshold is None else threshold)).astype(int)
    assert got["roc_auc"] == pytest.approx(roc_auc_score(y, score), abs=1e-12)
    assert got["balanced_accuracy"] == pytest.approx(balanced_accuracy_score(y, pred), abs=1e-12)
    assert got["value"] == pytest.approx(accuracy_score(y, pred), abs=1e-15)
    assert got["confusion_matrix"] == confusion_matrix(y, pred).tolist()
    assert got["threshold"] == threshold


def test_auc_counts_ties_half_as_scikit_learn():
    rng = np.random.default_rng(0)
    truth = rng.integers(0, 2, size=200)
    score = np.round(rng.uniform(size=200) + 0.3 * truth, 1)  # few distinct values: many ties
    assert roc_auc(truth, score) == pytest.approx(roc_auc_score(truth, score), abs=1e-14)
    # two positives, two negatives, one tie across: pairs (0.8 > 0.2), (0.8 > 0.5), (0.5 = 0.5) half, (0.5 > 0.2)
    assert 3.5 / 4 == roc_auc(np.array([1, 1, 0, 0]), np.array([0.8, 0.5, 0.5, 0.2]))
    assert roc_auc(np.array([1, 1]), np.array([0.2, 0.9])) is None


def test_auc_is_none_when_a_class_is_missing_from_the_truth(tmp_path):
    run = trained(tmp_path, IRIS, "species", epochs=3)
    data = tmp_path / "two.csv"
    lines = IRIS.read_text().splitlines()
    data.write_text("\n".join([lines[0]] + [ln for ln in lines[1:] if not ln.endswith("virginica")]) + "\n")
    got = scored(run, str(data))
    assert got["roc_auc"] is None and "not in the truth" in got["roc_auc_note"]


@pytest.mark.parametrize("args, message", [
    (["--threshold", "0.3"], "--threshold: for a network with one sigmoid output; this one has 3 softmax outputs"),
    (["--threshold", "1.5"], "--threshold: expected a number from 0 to 1"),
])
def test_threshold_is_refused_where_it_means_nothing(tmp_path, args, message):
    run = trained(tmp_path, IRIS, "species", epochs=1)
    result = runner.invoke(app, ["evaluate", str(run), *args])
    assert result.exit_code == 2
    assert result.stderr.startswith(f"error: {message}")
