"""bpcli compare: config differences, final numbers, inspect verdicts and overlaid curves of several runs."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
from rich.console import Console
from typer.testing import CliRunner

from bpcli.cli.app import app
from bpcli.analysis.compare import compare_runs, differences
from bpcli.plots.compare import compare_figure
from bpcli.config.loader import builtin_config_dir, load_config
from bpcli.analysis.inspect import inspect_run
from bpcli.render.compare import compare_view
from bpcli.runs.store import load_run
from bpcli.runs.session import run_training

from tests.conftest import read_history

runner = CliRunner()


def _train(tmp: Path, folder: str, config: str = "seed", epochs: int = 20, lr: float | None = None,
           hidden: str | None = None) -> Path:
    cfg, ds = load_config(builtin_config_dir() / f"{config}.yaml")
    train = dataclasses.replace(cfg.train, epochs=epochs, **({"lr": lr} if lr is not None else {}))
    layers = cfg.layers
    if hidden is not None:
        layers = (dataclasses.replace(layers[0], activation=hidden),) + tuple(layers[1:])
    run_training(dataclasses.replace(cfg, train=train, layers=layers), ds, tmp / folder)
    return tmp / folder


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    tmp = tmp_path_factory.mktemp("compare")
    return {"base": _train(tmp, "base"), "changed": _train(tmp, "changed", lr=0.5, hidden="tanh"),
            "third": _train(tmp, "third", epochs=30), "sine": _train(tmp, "sine", "sine", epochs=5)}


def test_differences_are_exactly_what_was_changed(runs):
    res = compare_runs([runs["base"], runs["changed"]])
    assert {d.key: d.values for d in res.differences} == {"train.lr": (2.0, 0.5),
                                                          "layers[0].activation": ("sigmoid", "tanh")}
    out = runner.invoke(app, ["compare", str(runs["base"]), str(runs["changed"]), "--json"])
    assert 0 == out.exit_code, out.output
    doc = json.loads(out.stdout)
    assert [{"key": "layers[0].activation", "values": ["sigmoid", "tanh"], "present": [True, True],
             "applies": [True, True]},
            {"key": "train.lr", "values": [2.0, 0.5], "present": [True, True], "applies": [True, True]}
            ] == doc["differences"]


def test_differences_of_plain_configs_name_missing_keys_and_lists():
    a = {"train": {"lr": 0.1, "epochs": 5}, "inputs": ["x1", "x2"], "layers": [{"size": 2}, {"size": 1}]}
    b = {"train": {"lr": 0.1, "epochs": 5, "early_stopping": {"patience": 3}}, "inputs": ["x1", "x3"],
         "layers": [{"size": 2}, {"size": 1}, {"size": 1}]}
    found = {d.key: (d.values, d.present) for d in differences([a, b])}
    assert {"train.early_stopping.patience": ((None, 3), (False, True)),
            "inputs": ((["x1", "x2"], ["x1", "x3"]), (True, True)),
            "layers[2].size": ((None, 1), (False, True))} == found
    assert [] == differences([a, a])
    # a key set to null (batch_size: null) is not the same as no key at all
    assert [("batch_size", (None, None), (True, False))] == [
        (d.key, d.values, d.present) for d in differences([{"batch_size": None}, {}])]
    # 1 and 1.0 are the same number; true and 1 are not the same setting
    assert [] == differences([{"lr": 1}, {"lr": 1.0}])
    assert ["x"] == [d.key for d in differences([{"x": True}, {"x": 1}])]


def test_final_numbers_and_verdicts_are_each_runs_own(runs):
    res = compare_runs([runs["base"], runs["third"]])
    for r, folder in zip(res.runs, (runs["base"], runs["third"])):
        loaded = load_run(folder)
        metrics = json.loads((folder / loaded.checkpoint / "metrics.json").read_text())
        assert (metrics["loss"], metrics["train_metric"], metrics["epochs"]) == (r.loss, r.train_metric, r.epochs)
        verdict = inspect_run(loaded.net, loaded.history, loaded.cfg.name, str(folder), loaded.state.status)
        assert (verdict.healthy, verdict.summary) == (r.healthy, r.verdict)
        assert [h["loss"] for h in read_history(folder)] == r.curves["loss"]
    assert (20, 30) == (res.runs[0].epochs, res.runs[1].epochs)
    assert [("train.epochs", (20, 30))] == [(d.key, d.values) for d in res.differences]


def test_runs_with_different_metrics_are_said_to_differ(runs):
    out = runner.invoke(app, ["compare", str(runs["base"]), str(runs["sine"]), "--json"])
    assert 0 == out.exit_code, out.output
    doc = json.loads(out.stdout)
    assert ["accuracy", "r2"] == [r["metric"] for r in doc["runs"]]
    assert any("different metrics" in n and "base" in n and "sine" in n for n in doc["notes"])
    text = runner.invoke(app, ["compare", str(runs["base"]), str(runs["sine"])], env={"COLUMNS": "100"}).stdout
    assert "different metrics" in text
    assert "accuracy (train)" in text and "R^2 (train)" in text


def test_a_damaged_run_is_one_clear_error(runs, tmp_path):
    import shutil
    broken = tmp_path / "broken"
    shutil.copytree(runs["third"], broken)
    ck = next(broken.glob("epoch-*"))
    (ck / "weights.npz").write_bytes(b"not a weights file")
    out = runner.invoke(app, ["compare", str(runs["base"]), str(broken)])
    assert 2 == out.exit_code
    lines = out.stderr.strip().splitlines()
    assert 1 == len(lines)
    assert "weights.npz" in lines[0] and "Traceback" not in out.output
    one = runner.invoke(app, ["compare", str(runs["base"])])
    assert 2 == one.exit_code and "at least two" in one.stderr


def _render(res, width: int) -> str:
    con = Console(file=__import__("io").StringIO(), width=width, color_system=None)
    con.print(compare_view(res))
    return con.file.getvalue()


def test_four_runs_fit_80_columns_and_more_are_split_into_groups(runs):
    four = compare_runs([runs["base"], runs["changed"], runs["third"], runs["base"]])
    text = _render(four, 80)
    assert max(len(ln) for ln in text.splitlines()) <= 80
    assert "…" not in text
    assert "do not fit" not in text
    five = compare_runs([runs["base"], runs["changed"], runs["third"], runs["sine"], runs["base"]])
    text = _render(five, 80)
    assert max(len(ln) for ln in text.splitlines()) <= 80
    assert "do not fit side by side" in text
    assert "…" not in text


def test_the_curve_picture_holds_each_runs_losses(runs, tmp_path):
    res = compare_runs([runs["base"], runs["third"]])
    fig = compare_figure(res)
    from tests.plots.test_pictures import _check_layout  # plot's own layout check
    assert 1 == _check_layout(fig)
    lines = fig.axes[0].get_lines()
    for line, folder in zip(lines, (runs["base"], runs["third"])):
        h = read_history(folder)
        assert [r["epoch"] for r in h] == list(line.get_xdata())
        assert [r["loss"] for r in h] == list(line.get_ydata())
    out = runner.invoke(app, ["compare", str(runs["base"]), str(runs["third"]), "--out", str(tmp_path / "c.png"),
                              "--dpi", "30"])
    assert 0 == out.exit_code, out.output
    assert (tmp_path / "c.png").read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    bad = runner.invoke(app, ["compare", str(runs["base"]), str(runs["third"]), "--out", str(tmp_path / "c.gif")])
    assert 2 == bad.exit_code and ".png" in bad.stderr


@pytest.fixture(scope="module")
def csv_and_generator(tmp_path_factory) -> list[Path]:
    from tests.conftest import train_shipped
    tmp = tmp_path_factory.mktemp("sources")
    return [train_shipped(tmp, "iris", 3), train_shipped(tmp, "xor", 3)]


def test_keys_another_data_source_reads_are_not_applicable(csv_and_generator):
    iris, xor = csv_and_generator
    doc = json.loads(runner.invoke(app, ["compare", str(iris), str(xor), "--json"]).stdout)
    found = {d["key"]: d["applies"] for d in doc["differences"]}
    # iris reads a CSV: the generator's keys mean nothing for it, and the CSV's nothing for xor
    for key in ("data.samples", "data.noise", "data.generator"):
        assert [False, True] == found[key], key
    for key in ("data.csv", "data.features", "data.target"):
        assert [True, False] == found[key], key
    assert [True, True] == found["train.optimizer"]
    text = runner.invoke(app, ["compare", str(iris), str(xor)], env={"COLUMNS": "80"}).stdout
    rows = {ln.split()[0]: ln.split()[1:] for ln in text.splitlines() if ln.startswith(" data.")}
    assert ["n/a", "0.0"] == rows["data.noise"]  # xor's noise is 0.0; iris has none
    assert ["n/a", "4"] == rows["data.samples"]
    assert "n/a" == rows["data.csv"][-1]


def test_keys_are_never_cut_at_80_columns(csv_and_generator):
    iris, xor = csv_and_generator
    doc = json.loads(runner.invoke(app, ["compare", str(iris), str(xor), "--json"]).stdout)
    text = runner.invoke(app, ["compare", str(iris), str(xor)], env={"COLUMNS": "80"}).stdout
    assert max(len(ln) for ln in text.splitlines()) <= 80
    firsts = [ln.split()[0] for ln in text.splitlines() if ln.strip()]
    for d in doc["differences"]:
        assert d["key"] in firsts, d["key"]  # e.g. train.early_stopping.restore_best, in full
    # a long value wraps onto the next lines instead (at most three, then "..."): what is shown is the path's start
    value = next(d["values"][0] for d in doc["differences"] if d["key"] == "data.csv")
    block = text[text.index(" data.csv"):text.index(" data.features")].split()
    shown = "".join(t for t in block if t not in ("data.csv", "n/a"))
    if shown.endswith("..."):
        assert value.startswith(shown[:-3]) and len(shown) > 40, (shown, value)
    else:
        assert value == shown


def test_a_value_breaks_only_at_spaces_and_a_long_word_after_a_slash_or_underscore():
    from bpcli.render.compare import cell_lines
    assert ["squared_error"] == cell_lines("squared_error", 10)  # a name wider than the cell keeps its line whole
    assert ["The 2-2-1", "sigmoid", "network of ..."] == cell_lines("The 2-2-1 sigmoid network of the chain", 10)
    assert ["/work/wt-ux/src/bpcli/", "configs/iris.csv"] == cell_lines("/work/wt-ux/src/bpcli/configs/iris.csv", 22)
    assert ['["a_very_long_feature_', 'name", "b"]'] == cell_lines('["a_very_long_feature_name", "b"]', 22)


def test_three_runs_at_80_columns_split_no_word_or_number(csv_and_generator, runs):
    iris, xor = csv_and_generator
    doc = json.loads(runner.invoke(app, ["compare", str(runs["base"]), str(iris), str(xor), "--json"]).stdout)
    for width in (80, 120):
        text = runner.invoke(app, ["compare", str(runs["base"]), str(iris), str(xor)],
                             env={"COLUMNS": str(width)}).stdout
        assert max(len(ln) for ln in text.splitlines()) <= width
        words = {w for ln in text.splitlines() for w in ln.split()}
        assert {"squared_error", "cross_entropy", "binary_cross_entropy"} <= words, width
        for d in doc["differences"]:  # every scalar (a name, a number) whole on one line of its row
            for v, shown in zip(d["values"], d.get("applies") or [True] * len(d["values"])):
                if shown and isinstance(v, (int, float, str)) and not isinstance(v, bool) \
                        and " " not in str(v) != "" and d["key"] != "data.csv":
                    assert str(v) in words, (width, d["key"], v)
        # the path wraps after a '/' only: its lines joined give the path back
        path = next(d["values"][1] for d in doc["differences"] if d["key"] == "data.csv")
        # the runs may be shown in groups (how many fit depends on the path's length): the data.csv row of the
        # group that holds iris's column is the one with more than n/a in it
        rows = [text[i:text.index(" data.features", i)].splitlines() for i in range(len(text))
                if text.startswith(" data.csv", i)]
        parts = next(p for p in ([t for ln in lines for t in ln.split() if t not in ("data.csv", "n/a")]
                                 for lines in rows) if p)
        if parts[-1] == "...":  # a cell of many lines is cut short (a long checkout path): what shows is its start
            parts = parts[:-1]
            assert path.startswith("".join(parts)) and len("".join(parts)) > 20, (width, parts)
        else:
            assert path == "".join(parts), (width, parts)
        assert all(p.endswith(("/", "_")) for p in parts[:-1]), parts  # after a '/', then a '_', never in a word
