"""bpcli predict and evaluate: a trained run applied to new data, checked against a forward pass written out here
and against scikit-learn's metrics."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from bpcli.cli.app import app

runner = CliRunner()
CONFIGS = Path(__file__).resolve().parents[2] / "configs"
IRIS_CLASSES = ("setosa", "versicolor", "virginica")  # sorted, as read_csv orders text labels
FEATURES = ("sepal_length", "sepal_width", "petal_length", "petal_width")
TWO_FLOWERS = "sepal_length,sepal_width,petal_length,petal_width\n5.0,3.4,1.5,0.2\n6.4,3.1,5.5,1.9\n"


def invoke(*args, input=None):
    return runner.invoke(app, [str(a) for a in args], input=input)


@pytest.fixture(scope="module")
def iris(tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("iris") / "run"
    res = invoke("train", CONFIGS / "iris.yaml", "--out", run, "-q")
    assert res.exit_code == 0, res.output
    return run


def checkpoint(run: Path) -> Path:
    return run / json.loads((run / "run.json").read_text())["checkpoint"]


def weights(run: Path) -> dict:
    with np.load(checkpoint(run) / "weights.npz", allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


def iris_probabilities(run: Path, x: np.ndarray) -> np.ndarray:
    """The iris network by hand: standardize with the saved mean and std, tanh layer, softmax layer."""
    w = weights(run)
    scaling = json.loads((checkpoint(run) / "scaling.json").read_text())
    xs = (x - np.array(scaling["mean"])) / np.array(scaling["std"])
    hidden = np.tanh(xs @ w["A.W"].T + w["A.b"])
    z = hidden @ w["B.W"].T + w["B.b"]
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def rows(text: str) -> list[dict]:
    return list(csv.DictReader(io.StringIO(text)))


def test_predict_two_new_flowers_matches_a_forward_pass_by_hand(iris, tmp_path):
    data = tmp_path / "two.csv"
    data.write_text(TWO_FLOWERS)
    res = invoke("predict", iris, data)
    assert res.exit_code == 0, res.output
    got = rows(res.stdout)
    x = np.array([[5.0, 3.4, 1.5, 0.2], [6.4, 3.1, 5.5, 1.9]])
    p = iris_probabilities(iris, x)
    assert [IRIS_CLASSES[k] for k in p.argmax(axis=1)] == [r["predicted_species"] for r in got]
    np.testing.assert_allclose(p, [[float(r[f"p_{c}"]) for c in IRIS_CLASSES] for r in got], rtol=1e-12)
    assert ["setosa", "virginica"] == [r["predicted_species"] for r in got]  # the two flowers are easy ones


def test_predict_reads_stdin_and_json_gives_the_same_numbers(iris, tmp_path):
    from_stdin = invoke("predict", iris, "-", input=TWO_FLOWERS)
    (tmp_path / "two.csv").write_text(TWO_FLOWERS)
    from_file = invoke("predict", iris, tmp_path / "two.csv")
    assert from_stdin.exit_code == 0, from_stdin.output
    assert from_file.stdout == from_stdin.stdout
    doc = json.loads(invoke("predict", iris, "-", "--json", input=TWO_FLOWERS).stdout)
    p = iris_probabilities(iris, np.array([[5.0, 3.4, 1.5, 0.2], [6.4, 3.1, 5.5, 1.9]]))
    np.testing.assert_allclose(p, [[r["probabilities"][c] for c in IRIS_CLASSES] for r in doc["rows"]], rtol=1e-12)


def test_predict_carries_other_columns_through_in_the_files_order(iris):
    text = 'id,petal_width,note,sepal_length,sepal_width,petal_length\n7,0.2,"tall, pale",5.0,3.4,1.5\n8,1.9,x,6.4,3.1,5.5\n'
    res = invoke("predict", iris, "-", input=text)
    assert res.exit_code == 0, res.output
    header = res.stdout.splitlines()[0].split(",")
    assert ["id", "petal_width", "note", "sepal_length", "sepal_width", "petal_length", "predicted_species"] == \
        header[:7]
    got = rows(res.stdout)
    assert ["7", "8"] == [r["id"] for r in got] and "tall, pale" == got[0]["note"]
    p = iris_probabilities(iris, np.array([[5.0, 3.4, 1.5, 0.2], [6.4, 3.1, 5.5, 1.9]]))
    np.testing.assert_allclose(p, [[float(r[f"p_{c}"]) for c in IRIS_CLASSES] for r in got], rtol=1e-12)


def test_predict_out_is_written_whole_or_not_at_all(iris, tmp_path, monkeypatch):
    out = tmp_path / "pred.csv"
    res = invoke("predict", iris, "-", "--out", out, input=TWO_FLOWERS)
    assert res.exit_code == 0 and "" == res.stdout
    assert invoke("predict", iris, "-", input=TWO_FLOWERS).stdout == out.read_text()
    before = out.read_bytes()
    bad = invoke("predict", iris, "-", "--out", out, input=TWO_FLOWERS.replace("6.4", "abc"))
    assert 2 == bad.exit_code and before == out.read_bytes()
    import os
    monkeypatch.setattr(os, "replace", lambda *a: (_ for _ in ()).throw(OSError(28, "No space left on device")))
    full = invoke("predict", iris, "-", "--out", out, input=TWO_FLOWERS.replace("6.4", "7.0"))
    assert 2 == full.exit_code and before == out.read_bytes()
    assert ["pred.csv"] == [p.name for p in tmp_path.iterdir()]  # no temporary file left behind


def test_predict_without_data_lists_the_runs_own_rows_with_their_part(iris):
    res = invoke("predict", iris)
    assert res.exit_code == 0, res.output
    got = rows(res.stdout)
    assert 150 == len(got) and 30 == sum(r["part"] == "validation" for r in got)
    with open(CONFIGS / "iris.csv") as fh:
        truth = list(csv.DictReader(fh))
    assert [r["species"] for r in truth] == [r["species"] for r in got]
    x = np.array([[float(r[f]) for f in FEATURES] for r in truth])
    np.testing.assert_allclose(iris_probabilities(iris, x), [[float(r[f"p_{c}"]) for c in IRIS_CLASSES] for r in got],
                               rtol=1e-12)
    from bpcli.runs.store import load_run  # the flowers training held out, as it saved them (standardized)
    loaded = load_run(iris)
    held = loaded.prepared.val.x * loaded.prepared.scaling.std + loaded.prepared.scaling.mean
    marked = x[[r["part"] == "validation" for r in got]]
    np.testing.assert_allclose(held, marked, rtol=1e-12)


BAD = {
    "wrong column": "sepal_length,sepal_widht,petal_length,petal_width\n5,3,1,0.2\n",
    "not a number": "sepal_length,sepal_width,petal_length,petal_width\n5,3,1,0.2\n5,abc,1,0.2\n",
    "digit separator": "sepal_length,sepal_width,petal_length,petal_width\n5,3,1,0.2\n5,3_1,1,0.2\n",
    "nan": "sepal_length,sepal_width,petal_length,petal_width\n5,3,1,nan\n",
    "infinite": "sepal_length,sepal_width,petal_length,petal_width\n5,3,-inf,0.2\n",
    "missing value": "sepal_length,sepal_width,petal_length,petal_width\n5,,1,0.2\n",
    "too few fields": "sepal_length,sepal_width,petal_length,petal_width\n5,3,1,0.2\n5,3,1\n",
    "too many fields": "sepal_length,sepal_width,petal_length,petal_width\n5,3,1,0.2,9\n",
    "empty": "",
    "header only": "sepal_length,sepal_width,petal_length,petal_width\n",
    "duplicate column": "sepal_length,sepal_length,sepal_width,petal_length,petal_width\n5,5,3,1,0.2\n",
    "not utf-8": b"sepal_length,sepal_width,petal_length,petal_width\n5,3,1,\xff\n".decode("latin-1"),
    "added column clash": "p_setosa,sepal_length,sepal_width,petal_length,petal_width\n1,5,3,1,0.2\n",
}


@pytest.mark.parametrize("command", ["predict", "evaluate"])
@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_data_is_one_line_and_exit_2(iris, command, case):
    text = BAD[case]
    if command == "evaluate":
        if case == "added column clash":
            return
        text = text.replace("petal_width\n", "petal_width,species\n", 1)
        text = "\n".join(ln + ",setosa" if i and ln else ln for i, ln in enumerate(text.split("\n")))
    res = invoke(command, iris, "-", input=text.encode("latin-1") if case == "not utf-8" else text)
    assert 2 == res.exit_code, (res.stdout, res.stderr)
    assert 1 == len(res.stderr.strip().splitlines()) and res.stderr.startswith("error: "), res.stderr
    assert "Traceback" not in res.stderr and "" == res.stdout


def test_bad_data_names_the_line_and_the_column(iris):
    res = invoke("predict", iris, "-", input=BAD["not a number"])
    assert "<stdin>:3" in res.stderr and "sepal_width" in res.stderr and "abc" in res.stderr
    res = invoke("predict", iris, "-", input=BAD["wrong column"])
    assert "did you mean 'sepal_widht'" in res.stderr
    res = invoke("evaluate", iris, "-", input=TWO_FLOWERS.replace("petal_width\n", "petal_width,species\n")
                 .replace("0.2\n", "0.2,setosaa\n").replace("1.9\n", "1.9,virginica\n"))
    assert 2 == res.exit_code and "<stdin>:2" in res.stderr and "did you mean 'setosa'" in res.stderr


# --- evaluate against scikit-learn ---------------------------------------------------------


def test_evaluate_matches_scikit_learn_on_the_iris_flowers(iris):
    from sklearn.metrics import classification_report, confusion_matrix, log_loss

    res = invoke("evaluate", iris, CONFIGS / "iris.csv", "--json")
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    with open(CONFIGS / "iris.csv") as fh:
        truth = list(csv.DictReader(fh))
    x = np.array([[float(r[f]) for f in FEATURES] for r in truth])
    p = iris_probabilities(iris, x)
    y_true = [r["species"] for r in truth]
    y_pred = [IRIS_CLASSES[k] for k in p.argmax(axis=1)]
    assert confusion_matrix(y_true, y_pred, labels=list(IRIS_CLASSES)).tolist() == doc["confusion_matrix"]
    assert 0 < np.trace(doc["confusion_matrix"]) < 150  # some flowers are wrong, so the matrix is a real check
    report = classification_report(y_true, y_pred, labels=list(IRIS_CLASSES), output_dict=True, zero_division=0)
    for row in doc["per_class"]:
        ref = report[row["class"]]
        assert (ref["precision"], ref["recall"], ref["f1-score"], ref["support"]) == pytest.approx(
            (row["precision"], row["recall"], row["f1"], row["support"]), rel=1e-12)
    for key, ours in (("macro avg", "macro_avg"), ("weighted avg", "weighted_avg")):
        assert (report[key]["precision"], report[key]["recall"], report[key]["f1-score"]) == pytest.approx(
            (doc[ours]["precision"], doc[ours]["recall"], doc[ours]["f1"]), rel=1e-12)
    assert report["accuracy"] == pytest.approx(doc["value"], rel=1e-12)
    assert log_loss(y_true, p, labels=list(IRIS_CLASSES)) == pytest.approx(doc["loss"]["value"], rel=1e-9)


def test_evaluate_averages_over_the_classes_present_as_scikit_learn_on_two_species(iris, tmp_path):
    """Rows of setosa and versicolor only, none predicted virginica: virginica appears nowhere, so
    scikit-learn's default averages leave it out; --all-classes counts it, as labels=[all three] does."""
    from sklearn.metrics import classification_report

    with open(CONFIGS / "iris.csv") as fh:
        truth = list(csv.DictReader(fh))
    x = np.array([[float(r[f]) for f in FEATURES] for r in truth])
    y_pred_all = [IRIS_CLASSES[k] for k in iris_probabilities(iris, x).argmax(axis=1)]
    keep = [i for i, r in enumerate(truth) if r["species"] != "virginica" and y_pred_all[i] != "virginica"]
    y_true, y_pred = [truth[i]["species"] for i in keep], [y_pred_all[i] for i in keep]
    assert {"setosa", "versicolor"} == set(y_true) == set(y_pred) and len(keep) > 90
    columns = [*FEATURES, "species"]
    (tmp_path / "two.csv").write_text(",".join(columns) + "\n" + "".join(
        ",".join(truth[i][c] for c in columns) + "\n" for i in keep))
    for flag, labels in (([], None), (["--all-classes"], list(IRIS_CLASSES))):
        res = invoke("evaluate", iris, tmp_path / "two.csv", "--json", *flag)
        assert 0 == res.exit_code, res.output
        doc = json.loads(res.stdout)
        report = classification_report(y_true, y_pred, labels=labels, output_dict=True, zero_division=0)
        for key, ours in (("macro avg", "macro_avg"), ("weighted avg", "weighted_avg")):
            assert (report[key]["precision"], report[key]["recall"], report[key]["f1-score"]) == pytest.approx(
                (doc[ours]["precision"], doc[ours]["recall"], doc[ours]["f1"]), rel=1e-12), (flag, key)
        assert (labels or ["setosa", "versicolor"]) == doc["averages_over"]["classes"]


def test_evaluate_without_data_scores_the_validation_part_as_training_reported(iris):
    doc = json.loads(invoke("evaluate", iris, "--json").stdout)
    metrics = json.loads((checkpoint(iris) / "metrics.json").read_text())
    assert 30 == doc["samples"] and 30 == np.sum(doc["confusion_matrix"])
    assert metrics["val_loss"] == pytest.approx(doc["loss"]["value"], rel=1e-12)
    assert metrics["val_metric"] == pytest.approx(doc["value"], rel=1e-12)
    train = json.loads(invoke("evaluate", iris, "--part", "train", "--json").stdout)
    assert (120, metrics["train_metric"]) == (train["samples"], pytest.approx(train["value"], rel=1e-12))


def test_evaluate_a_class_never_predicted_scores_zero_as_scikit_learn_does(tmp_path):
    """An XOR net after 3 epochs calls everything one class: precision of the other is 0/0, reported as 0."""
    from sklearn.metrics import classification_report, confusion_matrix

    (tmp_path / "xor.yaml").write_text(
        "name: xor\ninputs: 2\nlayers:\n  - {size: 2, activation: sigmoid}\n  - {size: 1, activation: sigmoid}\n"
        "init: {scheme: uniform, seed: 3}\ndata:\n  x: [[0,0],[0,1],[1,0],[1,1]]\n  y: [[0],[1],[1],[0]]\n"
        "  classes: [same, different]\ntrain: {epochs: 3}\n")
    run = tmp_path / "run"
    assert 0 == invoke("train", tmp_path / "xor.yaml", "--out", run, "-q").exit_code
    w = weights(run)
    sig = lambda z: 1 / (1 + np.exp(-z))
    x = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=float)
    y_hat = sig(sig(x @ w["A.W"].T + w["A.b"]) @ w["B.W"].T + w["B.b"])[:, 0]
    names = ["same", "different"]
    y_true, y_pred = ["same", "different", "different", "same"], [names[int(v >= 0.5)] for v in y_hat]
    assert len(set(y_pred)) == 1  # one class only: the zero-division case is exercised
    doc = json.loads(invoke("evaluate", run, "--json").stdout)
    assert confusion_matrix(y_true, y_pred, labels=names).tolist() == doc["confusion_matrix"]
    report = classification_report(y_true, y_pred, labels=names, output_dict=True, zero_division=0)
    assert [v for n in names for v in (report[n]["precision"], report[n]["recall"])] == pytest.approx(
        [v for r in doc["per_class"] for v in (r["precision"], r["recall"])], rel=1e-12)
    pred = rows(invoke("predict", run).stdout)
    assert y_pred == [r["predicted_y"] for r in pred]
    np.testing.assert_allclose(y_hat, [float(r["p_different"]) for r in pred], rtol=1e-12)
    np.testing.assert_allclose(1 - y_hat, [float(r["p_same"]) for r in pred], rtol=1e-12)


def test_evaluate_regression_matches_scikit_learn(tmp_path):
    from sklearn.metrics import mean_absolute_error, r2_score

    rng = np.random.default_rng(0)
    x = rng.normal(size=(16, 2)).round(3)
    y = np.c_[np.sin(x[:, 0]), x[:, 0] * x[:, 1]].round(3)
    (tmp_path / "reg.yaml").write_text(
        "name: reg\ninputs: 2\nlayers:\n  - {size: 6, activation: tanh}\n  - {size: 2, activation: identity}\n"
        f"data:\n  x: {x.tolist()}\n  y: {y.tolist()}\ntrain: {{epochs: 40, lr: 0.1}}\n")
    run = tmp_path / "run"
    assert 0 == invoke("train", tmp_path / "reg.yaml", "--out", run, "-q").exit_code
    w = weights(run)
    x_new = rng.normal(size=(9, 2)).round(3)
    y_new = np.c_[np.sin(x_new[:, 0]), x_new[:, 0] * x_new[:, 1]].round(3)
    y_hat = np.tanh(x_new @ w["A.W"].T + w["A.b"]) @ w["B.W"].T + w["B.b"]
    text = "x1,x2,y1,y2\n" + "".join(f"{a},{b},{c},{d}\n" for (a, b), (c, d) in zip(x_new, y_new))
    doc = json.loads(invoke("evaluate", run, "-", "--json", input=text).stdout)
    assert r2_score(y_new, y_hat, multioutput="variance_weighted") == pytest.approx(doc["value"], rel=1e-10)
    assert mean_absolute_error(y_new, y_hat) == pytest.approx(doc["mae"], rel=1e-12)
    for j, out in enumerate(doc["per_output"]):
        assert r2_score(y_new[:, j], y_hat[:, j]) == pytest.approx(out["r2"], rel=1e-10)
        assert mean_absolute_error(y_new[:, j], y_hat[:, j]) == pytest.approx(out["mae"], rel=1e-12)
    assert 0.5 * np.mean(np.sum((y_hat - y_new) ** 2, axis=1)) == pytest.approx(doc["loss"]["value"], rel=1e-10)
    pred = rows(invoke("predict", run, "-", input=text).stdout)
    np.testing.assert_allclose(y_hat, [[float(r["predicted_y1"]), float(r["predicted_y2"])] for r in pred], rtol=1e-12)
    assert [f"{v:g}" for v in y_new[:, 0]] == [f"{float(r['y1']):g}" for r in pred]  # the targets carried through


def test_the_evaluate_tables_are_clean_text_at_80_and_120_columns(iris):
    for width in ("80", "120"):
        res = runner.invoke(app, ["evaluate", str(iris)], env={"COLUMNS": width})
        lines = res.stdout.splitlines()
        assert all(len(ln) <= int(width) and ln == ln.rstrip() for ln in lines), res.stdout
        assert "\x1b" not in res.stdout
        matrix = [ln.split() for ln in lines if ln.split() and ln.split()[0] in IRIS_CLASSES][:3]
        assert sum(int(v) for row in matrix for v in row[1:]) == 30  # the confusion matrix's counts, whole


def test_the_predict_table_fits_the_terminal(iris):
    from rich.console import Console

    from bpcli.analysis.predict import predict_table
    from bpcli.analysis.newdata import read_table
    from bpcli.render.predict import predict_view
    from bpcli.runs.store import load_run

    res = predict_table(load_run(iris), read_table("-", io.BytesIO(TWO_FLOWERS.encode())))
    for width in (80, 120):
        console = Console(file=io.StringIO(), width=width, color_system=None)
        console.print(predict_view(res, width))
        text = console.file.getvalue()
        assert all(len(ln) <= width for ln in text.splitlines()), text
        assert "99.5%" in text and "virginica" in text  # p_setosa of the first flower, whole


def test_a_long_carried_name_wraps_after_an_underscore_never_inside_a_word(iris):
    from rich.console import Console

    from bpcli.analysis.predict import predict_table
    from bpcli.analysis.newdata import read_table
    from bpcli.render.predict import predict_view
    from bpcli.runs.store import load_run

    name = "first_of_the_new_garden_flowers_from_the_north_bed"
    data = "flower_identifier_name," + TWO_FLOWERS.replace("\n5.0", f"\n{name},5.0").replace("\n6.4", "\nsecond,6.4")
    res = predict_table(load_run(iris), read_table("-", io.BytesIO(data.encode())))
    console = Console(file=io.StringIO(), width=80, color_system=None)
    console.print(predict_view(res, 80))
    lines = console.file.getvalue().splitlines()
    assert all(len(ln) <= 80 for ln in lines)
    first = next(k for k, ln in enumerate(lines) if ln.startswith("first_"))
    second = next(k for k, ln in enumerate(lines) if ln.startswith("second"))
    parts = [lines[first].split()[0]] + [ln.strip() for ln in lines[first + 1:second]]
    assert name == "".join(parts) and len(parts) > 1, parts
    assert all(p.endswith("_") for p in parts[:-1]), parts
    assert ["5", "3.4", "1.5", "0.2", "setosa"] == lines[first].split()[1:6]


def test_a_carried_id_with_digit_separators_is_shown_as_written_not_as_a_number(iris):
    """A long carried cell is shortened when it is a number; 2024_12_07_001 is text by the data reader's rule (a
    digit separator), though float() reads it as 20241207001: shown as written. A long number still shortens."""
    from rich.console import Console

    from bpcli.analysis.predict import predict_table
    from bpcli.analysis.newdata import read_table
    from bpcli.render.predict import predict_view
    from bpcli.runs.store import load_run

    data = "batch," + TWO_FLOWERS.replace("\n5.0", "\n2024_12_07_001,5.0").replace("\n6.4", "\n20241207002.5,6.4")
    res = predict_table(load_run(iris), read_table("-", io.BytesIO(data.encode())))
    console = Console(file=io.StringIO(), width=120, color_system=None)
    console.print(predict_view(res, 120))
    cells = [ln.split()[0] for ln in console.file.getvalue().splitlines() if ln[:1].isdigit()]
    assert ["2024_12_07_001", "2.02412e+10"] == cells
