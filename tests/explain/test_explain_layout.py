"""What explain and step look like at 80 columns: the columns that define the factors stay, formulas break only between
terms, index letters never clash with weight symbols, a classifier's nodes carry their class, one number rule."""

from __future__ import annotations

import csv
import json
import re

import pytest
from typer.testing import CliRunner

from bpcli.cli.app import app
from bpcli.config.loader import builtin_config_dir
from bpcli.nn.model import SYMBOLS
from bpcli.render.numbers import fmt
from bpcli.prose import line_spans

runner = CliRunner()
CONFIGS = builtin_config_dir()


def run(*args, width: int = 80) -> str:
    r = runner.invoke(app, list(args), env={"COLUMNS": str(width)})
    assert r.exit_code == 0, r.output
    return r.stdout


def test_the_w11_table_keeps_y_and_y_prime_at_80_columns():
    doc = json.loads(run("explain", "-w", "w11", "--json"))["explanations"][0]
    lines = run("explain", "-w", "w11").splitlines()
    heads = [ln.split() for ln in lines if ln.split()[:1] == ["i"]]
    assert any("y" in h and "y'" in h for h in heads), heads
    for s in doc["samples"]:  # every sample's target and output are printed in a row of their own
        row = [str(s["sample"]), fmt(s["target"]["y"]), fmt(s["output"]["y'"])]
        assert any(ln.split()[:1] == row[:1] and all(v in ln.split() for v in row[1:]) for ln in lines), row
    assert [] == [ln for ln in lines if len(ln) > 80]


OPERATORS = ("=", "+", "-", "*", "/", "^", "<-", "->", "(", "[", "sum_i", "sum_k", ">", "<")


def broken(line: str) -> str | None:
    """Why a printed line would be a formula broken in the middle, or None."""
    for a, b in ("()", "[]"):
        depth = 0
        for c in line:
            depth += (c == a) - (c == b)
            if depth < 0:
                return f"a {b} closes what the line did not open"
        if depth:
            return f"a {a} left open"
    words = line.split()
    if words and (words[-1] in OPERATORS or words[-1].endswith(("(", "["))):
        return "ends with an operator"
    return None


CASES = [  # the configs by name, read from the folder they are in: the header shows the path as given
    ["explain", "-w", "w11"], ["explain", "-w", "v1", "--paths", "--sample", "2"],
    ["explain", "deep_relu.yaml", "-w", "w11"],
    ["explain", "iris.yaml", "-w", "v21", "--sample", "3"],
    ["explain", "xor.yaml", "-w", "v1,b_A1"],
    ["explain", "softsign_xor.yaml", "-w", "w21", "--paths"],
    ["step"], ["step", "xor.yaml", "-k", "3"],
]


@pytest.mark.parametrize("args", CASES, ids=lambda a: " ".join(a[:2]))
@pytest.mark.parametrize("width", [80, 60])
def test_no_line_breaks_a_formula_or_ends_in_spaces(args, width, monkeypatch):
    monkeypatch.chdir(CONFIGS)
    lines = run(*args, width=width).splitlines()
    assert [] == [(ln, broken(ln)) for ln in lines if broken(ln)]
    assert [] == [ln for ln in lines if ln != ln.rstrip()]
    assert [] == [ln for ln in lines if len(ln) > width]


def test_a_path_longer_than_the_line_breaks_after_a_slash_never_inside_a_name():
    """explain's and step's header give the config's path as typed: one longer than the terminal breaks after a
    '/' (then a '_'), never inside a folder's name, and its lines joined give the path back."""
    path = "(/tmp/a_rather_long_directory_name_for_paths/with-another-component_and_more/checkout/configs/xor.yaml)"
    text = f"xor {path} 4 samples"
    for width in (20, 40, 60, 80, 100):
        lines = [text[a:b] for a, b in line_spans(text, width)]
        assert "".join(ln.replace(" ", "") for ln in lines) == text.replace(" ", "")
        first = next(i for i, ln in enumerate(lines) if "(" in ln)
        last = next(i for i, ln in enumerate(lines) if ")" in ln)
        assert last > first, (width, lines)  # the path, wider than any of these lines, is on several
        assert all(ln.endswith(("/", "_")) for ln in lines[first:last]), (width, lines)  # each line the path ends
        # wider than the line only a piece with no '/' or '_' to break after (23 characters, at width 20)
        assert all(len(ln) <= width or ln == "with-another-component_" for ln in lines), (width, lines)


def test_the_wrapper_breaks_between_terms_and_keeps_brackets_whole():
    s = "loss squared_error: dL/dy' = (y' - y); sigmoid: f'(z) = f(z) * (1 - f(z)) and C = 1/m * sum_i L_i"
    for width in range(20, 90, 7):
        for a, b in line_spans(s, width):
            line = s[a:b]
            assert broken(line) is None, (width, line)
            assert len(line) <= width
            assert not line.rstrip().endswith("sum_i")


def index_letters(text: str) -> set[str]:
    """The letters used as node indices in explain's prose: sum_r, node q of layer, z_Bq, w_rq."""
    found = set(re.findall(r"\bsum_([a-z])\b", text)) | set(re.findall(r"\bnode ([a-z]) of layer", text))
    found |= set(re.findall(r"_[A-Z]([a-z])\b", text)) | set(re.findall(r"\bo([a-z])\b", text))
    for sub in re.findall(r"\b[a-z]_([a-z]{1,2}\d?)\b", text):
        found |= set(c for c in sub if c.isalpha())
    return found


def test_deep_prose_never_uses_a_weight_symbol_as_an_index():
    doc = json.loads(run("explain", str(CONFIGS / "deep_relu.yaml"), "-w", "w11", "--json"))
    steps = doc["explanations"][0]["steps"]
    text = " ".join(s["equation"] + " " + s["note"] for s in steps)
    symbols = set(SYMBOLS[:7])  # w v u t s r q: the weights of layers A to G
    letters = index_letters(text)
    assert letters and not letters & symbols, sorted(letters & symbols)
    assert "t_np is the weight from Cp into Dn" in text  # the index letters say which nodes a weight joins
    seed = " ".join(s["equation"] + " " + s["note"] for s in json.loads(
        run("explain", str(CONFIGS / "deep_sigmoid.yaml"), "-w", "v11", "--json"))["explanations"][0]["steps"])
    assert not index_letters(seed) & set(SYMBOLS[:7])


def test_a_classifiers_output_nodes_carry_their_class():
    with open(CONFIGS / "iris.csv", newline="") as fh:
        species = sorted({row["species"] for row in csv.DictReader(fh)})  # one output per class, sorted by name
    doc = json.loads(run("explain", str(CONFIGS / "iris.yaml"), "-w", "v21,w11", "--json"))
    v21, w11 = doc["explanations"]
    assert {f"B{k + 1}": c for k, c in enumerate(species)} == v21["classes"]
    assert ("B2", species[1]) == (v21["location"]["to"], v21["location"]["class"])
    assert w11["location"]["class"] is None  # a hidden node stands for no class
    text = run("explain", str(CONFIGS / "iris.yaml"), "-w", "v21", "--sample", "1", width=120)
    assert f'into node B2 (class "{species[1]}")' in text
    assert re.search(rf'B2 \(class "{species[1]}"\)\s+-\s+-\s+\S', text)  # the deltas table at sample 1
    steps = run("explain", str(CONFIGS / "iris.yaml"), "-w", "w11", width=200)
    assert all(f'B{k + 1} (class "{c}")' in steps for k, c in enumerate(species))  # the output delta step


def test_the_same_value_reads_the_same_in_explain_gradcheck_and_step():
    e = json.loads(run("explain", "-w", "w11", "--json"))["explanations"][0]
    g = json.loads(run("gradcheck", "-w", "w11", "--json"))
    entry = next(x for x in g["entries"] if x["name"] == "w11")
    assert e["engine_gradient"] == entry["analytic"]
    shown = fmt(entry["analytic"])
    row = next(ln.split() for ln in run("gradcheck", "-w", "w11").splitlines() if ln.split()[:1] == ["w11"])
    assert shown == row[1]  # gradcheck's backprop column
    assert f"dC/dw11 = {shown} " in run("explain", "-w", "w11")
    srow = next(ln.split() for ln in run("step").splitlines() if ln.split()[:1] == ["w11"])
    assert shown == srow[2]  # step's gradient column
