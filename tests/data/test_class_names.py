"""Class names on a classifier's outputs: `classes:` in the config (checked with line numbers), a CSV's labels,
kept in the run, shown by show and predict; show writes softmax as a function of the whole layer."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from bpcli.cli.app import app
from bpcli.config.loader import load_config
from bpcli.errors import ConfigError
from bpcli.yamlsrc import read_yaml

runner = CliRunner()
CONFIGS = Path(__file__).resolve().parents[2] / "configs"
XOR = """name: xor
inputs: 2
layers:
  - {size: 2, activation: sigmoid}
  - {size: 1, activation: sigmoid}
data:
  x: [[0, 0], [0, 1], [1, 0], [1, 1]]
  y: [[0], [1], [1], [0]]
  classes: CLASSES
train: {epochs: 5}
"""


def invoke(*args, input=None):
    return runner.invoke(app, [str(a) for a in args], input=input)


def write(tmp_path: Path, text: str, name: str = "c.yaml") -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


def iris_with(tmp_path: Path, classes: str) -> Path:
    text = (CONFIGS / "iris.yaml").read_text().replace("csv: iris.csv", f"csv: {CONFIGS / 'iris.csv'}")
    return write(tmp_path, text.replace("  validation: 0.2", f"  classes: {classes}\n  validation: 0.2"), "iris.yaml")


def problems(path: Path) -> list[str]:
    with pytest.raises(ConfigError) as err:
        load_config(path)
    return err.value.problems


def test_names_given_in_the_config_label_the_outputs_and_are_kept_in_the_run(tmp_path):
    cfg = write(tmp_path, XOR.replace("CLASSES", "[same, different]"))
    assert ("same", "different") == load_config(cfg)[1].class_names
    run = tmp_path / "run"
    assert 0 == invoke("train", cfg, "--out", run, "-q").exit_code
    ck = run / json.loads((run / "run.json").read_text())["checkpoint"]
    assert ["same", "different"] == read_yaml((ck / "config.yaml").read_text(), "config.yaml")[0]["data"]["classes"]
    shown = json.loads(invoke("show", run, "--json").stdout)
    assert (["same", "different"], [{"node": "B", "class": "different"}]) == (shown["classes"], shown["outputs"])
    predicted = {r["predicted"] for r in json.loads(invoke("predict", run, "--json").stdout)["rows"]}
    assert predicted <= {"same", "different"} and predicted


def test_a_csv_keeps_its_text_labels_in_the_run_and_show_names_each_node(tmp_path):
    run = tmp_path / "iris"
    assert 0 == invoke("train", CONFIGS / "iris.yaml", "--out", run, "-q", "--epochs", 2).exit_code
    ck = run / json.loads((run / "run.json").read_text())["checkpoint"]
    saved = read_yaml((ck / "config.yaml").read_text(), "config.yaml")[0]["data"]["classes"]
    assert ["setosa", "versicolor", "virginica"] == saved
    shown = json.loads(invoke("show", run, "--json").stdout)
    assert [{"node": "B1", "class": "setosa"}, {"node": "B2", "class": "versicolor"},
            {"node": "B3", "class": "virginica"}] == shown["outputs"]
    text = invoke("show", run).stdout
    assert 'B1 (class "setosa")' in text and 'B3 (class "virginica")' in text


def test_names_of_a_csvs_labels_set_the_order_of_the_outputs(tmp_path):
    _, plain = load_config(CONFIGS / "iris.yaml")
    _, ordered = load_config(iris_with(tmp_path, "[virginica, setosa, versicolor]"))
    assert ("virginica", "setosa", "versicolor") == ordered.class_names
    np.testing.assert_array_equal(plain.y[:, [2, 0, 1]], ordered.y)
    np.testing.assert_array_equal(plain.x, ordered.x)


def test_names_of_a_generators_classes_rename_them_and_set_their_count():
    text = ("name: s\ninputs: 2\nlayers:\n  - {size: 4, activation: tanh}\n  - {size: 3, activation: softmax}\n"
            "loss: cross_entropy\ndata: {generator: spirals, samples: 30, classes: [red, green, blue]}\n")
    import tempfile
    with tempfile.TemporaryDirectory() as d:
        cfg, data = load_config(write(Path(d), text))
    assert ("red", "green", "blue") == data.class_names and (30, 3) == data.y.shape
    assert ["red", "green", "blue"] == cfg.to_dict()["data"]["classes"]


@pytest.mark.parametrize("classes, line, what", [
    ("[a, b, c]", 9, "give 2"),
    ("[a, a]", 9, "twice"),
    ("[a]", 9, "at least two"),
    ("3", 9, "as a list"),
    ("[[1], b]", 9, "class name"),
    ("\n    - same\n    - same", 11, "twice"),
])
def test_bad_class_names_are_reported_at_their_line(tmp_path, classes, line, what):
    found = problems(write(tmp_path, XOR.replace("CLASSES", classes)))
    assert 1 == len(found) and f"c.yaml:{line}:" in found[0] and what in found[0], found


def test_names_that_are_not_the_csvs_labels_say_which(tmp_path):
    found = problems(iris_with(tmp_path, "[setosa, versicolr, virginica]"))
    assert 1 == len(found) and "versicolr" in found[0] and "did you mean 'versicolor'" in found[0], found
    assert "iris.yaml:14:" in found[0]
    found = problems(iris_with(tmp_path, "[setosa, versicolor]"))
    assert "give 3" in found[0]


def test_class_names_on_regression_data_are_refused(tmp_path):
    text = XOR.replace("y: [[0], [1], [1], [0]]", "y: [[0.5], [1.5], [1], [0]]").replace("CLASSES", "[a, b]")
    found = problems(write(tmp_path, text))
    assert 1 == len(found) and "not class labels" in found[0]


def test_show_writes_softmax_as_a_function_of_the_whole_layer():
    res = json.loads(invoke("show", CONFIGS / "iris.yaml", "--json").stdout)
    outputs = [e for e in res["equations"] if e.startswith("y'")]
    assert ["y'1 = softmax(z_B)_1", "y'2 = softmax(z_B)_2", "y'3 = softmax(z_B)_3"] == [
        e.split(",  ")[0] for e in outputs]
    text = invoke("show", CONFIGS / "iris.yaml").stdout
    assert "softmax(z_B)_1" in text and "softmax(z_B1)" not in text  # the output layer is shown though A is cut
    seed = json.loads(invoke("show", "--json").stdout)
    assert "y' = sigmoid(z_B)" == seed["equations"][-1].split(",  ")[0] and "classes" not in seed


def test_any_label_a_csv_holds_survives_the_run(tmp_path):
    """Found by the command fuzzer: labels with control characters or of any length are saved and read back."""
    odd = ["l\x1b[31m", "x" * 150]
    (tmp_path / "d.csv").write_text("a,label\n" + "".join(f"{i},{odd[i % 2]}\n" for i in range(6)))
    cfg = write(tmp_path, "name: odd\nlayers:\n  - {size: 2, activation: softmax}\nloss: cross_entropy\n"
                          "data: {csv: d.csv, target: label}\ntrain: {epochs: 2}\n")
    run = tmp_path / "run"
    assert 0 == invoke("train", cfg, "--out", run, "-q").exit_code
    shown = invoke("show", run, "--json")
    assert 0 == shown.exit_code, shown.output
    assert sorted(odd) == json.loads(shown.stdout)["classes"]
    assert "\x1b" not in invoke("show", run).stdout  # escaped on the terminal
