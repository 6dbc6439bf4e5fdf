"""Standardised inputs are called so wherever they are shown: explain's note under the table (each input's mean and
std), its JSON's input_scaling, Markdown and LaTeX; show --dot's input nodes; view's sample labels. The numbers are
checked against a hand-worked standardisation."""

from __future__ import annotations

import json
import math
import re

from typer.testing import CliRunner

from bpcli.cli.app import app

runner = CliRunner()

# x1 = 1, 2, 3, 6: mean 3, std sqrt((4 + 1 + 0 + 9) / 4) = sqrt(3.5); x2 = 10, 10, 20, 20: mean 15, std 5
CSV = "x1,x2,y\n1,10,0\n2,10,1\n3,20,1\n6,20,0\n"
CONFIG = """\
name: scaled
layers:
  - {size: 2, activation: sigmoid}
  - {size: 1, activation: sigmoid}
loss: squared_error
init: {scheme: xavier_uniform, seed: 0}
data: {csv: data.csv, target: y, standardize: true}
train: {optimizer: gd, lr: 0.5, epochs: 3}
"""
MEAN = {"x1": 3.0, "x2": 15.0}
STD = {"x1": math.sqrt(3.5), "x2": 5.0}
RAW = [(1.0, 10.0), (2.0, 10.0), (3.0, 20.0), (6.0, 20.0)]


def _config(tmp_path) -> str:
    (tmp_path / "data.csv").write_text(CSV)
    (tmp_path / "scaled.yaml").write_text(CONFIG)
    return str(tmp_path / "scaled.yaml")


def _run(*args, width: int = 100) -> str:
    r = runner.invoke(app, list(args), env={"COLUMNS": str(width)})
    assert 0 == r.exit_code, r.output
    return r.stdout


def test_explain_json_gives_the_scaling_the_shown_inputs_went_through(tmp_path):
    doc = json.loads(_run("explain", _config(tmp_path), "-w", "w11", "--json"))
    assert doc["inputs_standardized"] is True
    sc = doc["input_scaling"]
    assert "x = (raw - mean) / std" == sc["formula"]
    assert MEAN == sc["mean"]
    assert STD["x1"] == sc["std"]["x1"] and STD["x2"] == sc["std"]["x2"]
    shown = [tuple(s["inputs"].values()) for s in doc["explanations"][0]["samples"]]
    expected = [((a - 3.0) / math.sqrt(3.5), (b - 15.0) / 5.0) for a, b in RAW]
    assert len(expected) == len(shown)
    for want, got in zip(expected, shown):
        assert math.isclose(want[0], got[0], rel_tol=1e-12) and math.isclose(want[1], got[1], rel_tol=1e-12)


def test_explain_of_unscaled_data_has_no_scaling_and_no_note():
    doc = json.loads(_run("explain", "-w", "w11", "--json"))
    assert (False, None) == (doc["inputs_standardized"], doc["input_scaling"])
    assert "standardised" not in _run("explain", "-w", "w11", width=200)


def test_explain_table_of_standardised_inputs_has_a_note_with_each_mean_and_std(tmp_path):
    out = _run("explain", _config(tmp_path), "-w", "w11", width=200)
    lines = out.splitlines()
    head = next(k for k, ln in enumerate(lines) if ln.split()[:1] == ["i"])
    assert "x1" in lines[head].split()  # the inputs are columns of the table ...
    note = [ln for ln in lines[head:] if "standardised" in ln]  # ... and a line below it says how they were scaled
    assert ["the inputs are standardised as in training, x = (raw - mean) / std: x1 mean 3 std 1.87083, "
            "x2 mean 15 std 5"] == note


def test_explain_markdown_and_latex_name_the_scaling(tmp_path):
    cfg = _config(tmp_path)
    md = _run("explain", cfg, "-w", "w11", "--format", "markdown")
    assert "x = (raw - mean) / std: x1 mean 3 std 1.87083, x2 mean 15 std 5." in md
    tex = _run("explain", cfg, "-w", "w11", "--format", "latex")
    assert "x = (raw - mean) / std: x1 mean 3 std 1.87083, x2 mean 15 std 5." in tex


def test_show_dot_of_a_sample_labels_standardised_inputs_and_gives_the_raw_value(tmp_path):
    """Sample 4 is x1 = 6, x2 = 20: the network sees (6 - 3) / sqrt(3.5) = 1.604 and (20 - 15) / 5 = 1."""
    dot = _run("show", _config(tmp_path), "--sample", "4", "--dot")
    x1 = next(ln for ln in dot.splitlines() if ln.lstrip().startswith('"x1" [label='))
    cells = re.findall(r"<TD[^>]*>([^<]*)</TD>", x1)
    assert ["standardised", "1.604", "raw", "6"] == cells
    seed = _run("show", "--sample", "4", "--dot")  # unscaled: the value is the data's own
    x1 = next(ln for ln in seed.splitlines() if ln.lstrip().startswith('"x1" [label='))
    assert ["value", "1"] == re.findall(r"<TD[^>]*>([^<]*)</TD>", x1)


def test_view_sample_labels_say_the_inputs_are_standardised(tmp_path):
    from bpcli.render.view import view_run
    run = tmp_path / "run"
    r = runner.invoke(app, ["train", _config(tmp_path), "--out", str(run), "-q"])
    assert 0 == r.exit_code, r.output
    labels = view_run(run).to_dict()["samples"]["labels"]
    assert "sample 4 (inputs standardised): x1 = 1.60357, x2 = 1 -> y = 0" == labels[3]  # (6 - 3) / sqrt(3.5)
