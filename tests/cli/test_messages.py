"""A wrong file gets a message that says what the file is and what the command expected."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from bpcli.cli.app import app

runner = CliRunner()


def _err(*args: str) -> str:
    r = runner.invoke(app, list(args))
    assert 2 == r.exit_code, (args, r.stdout, r.stderr)
    assert "" == r.stdout
    return r.stderr


def test_train_on_a_csv_says_it_is_data_and_names_target():
    assert ("error: configs/iris.csv: is a CSV file, not a config; train on it with `bpcli train configs/iris.csv "
            "--target COLUMN` (the column to predict, one of: sepal_length, sepal_width, petal_length, petal_width, "
            "species)\n" == _err("train", "configs/iris.csv"))


def test_predict_on_a_config_says_data_is_a_csv_of_inputs(tmp_path):
    run = tmp_path / "r"
    assert 0 == runner.invoke(app, ["train", "-q", "--epochs", "2", "-o", str(run)]).exit_code
    for command in ("predict", "evaluate"):
        assert ("error: configs/iris.yaml is a YAML config; DATA is a CSV file of inputs (a header row naming the "
                "run's input columns, then one row per sample)\n" == _err(command, str(run), "configs/iris.yaml"))


def test_a_missing_run_folder_is_named_as_one():
    expected = "error: runs/nosuch: no such run folder or config file (`bpcli runs` lists the runs)\n"
    assert expected == _err("show", "runs/nosuch")
    assert expected == _err("explain", "runs/nosuch", "-w", "v1")
    assert "error: nosuch.yaml: config file not found\n" == _err("show", "nosuch.yaml")


def test_a_missing_config_named_as_a_shipped_example_says_how_to_get_it(tmp_path, monkeypatch):
    """Outside a clone of the repository, the README's `bpcli train configs/iris.yaml` finds no configs/ folder."""
    monkeypatch.chdir(tmp_path)
    assert ("error: configs/iris.yaml: config file not found (iris is a shipped example: "
            "`bpcli init iris.yaml --example iris` copies it here)\n" == _err("train", "configs/iris.yaml"))
    assert ("error: sine.yml: config file not found (sine is a shipped example: "
            "`bpcli init sine.yml --example sine` copies it here)\n" == _err("show", "sine.yml"))
    assert "error: iris2.yaml: config file not found\n" == _err("train", "iris2.yaml")  # no such example
    # the command the hint gives makes the config it names
    assert 0 == runner.invoke(app, ["init", "iris.yaml", "--example", "iris"]).exit_code
    assert 0 == runner.invoke(app, ["show", "iris.yaml", "--json"]).exit_code


@pytest.mark.parametrize("args", [["inspect"], ["predict"], ["evaluate"], ["export", "-o", "out"], ["plot"],
                                  ["animate"], ["train", "--resume"]], ids=lambda a: " ".join(a))
def test_a_missing_run_folder_says_where_the_runs_are_listed(args, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # as show and explain say it: `bpcli runs` lists the runs
    assert "error: runs/nosuch: run folder not found (`bpcli runs` lists the runs)" == \
        _err(*args, "runs/nosuch").splitlines()[-1]
    assert [] == list(tmp_path.iterdir())


def test_gradcheck_against_torch_says_on_stderr_that_it_loads_pytorch():
    import pytest
    pytest.importorskip("torch")
    r = runner.invoke(app, ["gradcheck", "--against", "torch", "--rows", "1"])
    assert 0 == r.exit_code
    assert "gradcheck: loading PyTorch\n" == r.stderr
    assert "PASS: 9 entries agree with PyTorch autograd" in r.stdout
    quiet = runner.invoke(app, ["gradcheck", "--against", "torch", "--json"])
    assert 0 == quiet.exit_code and "" == quiet.stderr


def _curve_lines(run, *args):
    import csv
    import re

    r = runner.invoke(app, ["train", "-q", "-o", str(run), *args], env={"COLUMNS": "80"})
    assert 0 == r.exit_code, r.stderr
    span = re.search(r"the curve spans (\S+) to (\S+)", r.stdout)
    with open(run / "history.csv", newline="") as fh:
        losses = [float(row["loss"]) for row in csv.DictReader(fh)]
    return r.stdout, (float(span.group(1)), float(span.group(2))), (min(losses), max(losses))


def test_the_loss_curve_prints_its_span_and_is_linear_when_the_loss_hardly_moved(tmp_path):
    import pytest
    out, span, truth = _curve_lines(tmp_path / "flat", "--epochs", "20")  # 0.1309 -> 0.1289: under 2 decades
    assert "each epoch's loss before its step, linear scale" in out and "log scale" not in out
    assert span == pytest.approx(truth, rel=1e-5)  # six significant figures
    out, span, truth = _curve_lines(tmp_path / "steep")  # 0.1309 -> 0.00066: over two decades
    assert "each epoch's loss before its step, log scale" in out
    assert span == pytest.approx(truth, rel=1e-5)


def test_an_empty_weight_list_is_refused_alike_by_every_command_that_takes_one():
    """`--weight ,` names no parameter: gradcheck, gradcheck --against torch and step all refuse it with the same
    line (--against torch once went on to check every entry)."""
    want = "error: --weight: give at least one parameter name (see `bpcli show`)\n"
    for args in (["gradcheck"], ["gradcheck", "--against", "torch"], ["step"]):
        assert want == _err(*args, "--weight", ","), args
