"""One vocabulary: every command names the same idea with the same option, and the old names still work."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from bpcli.cli.app import app

runner = CliRunner()


def _ok(*args: str):
    r = runner.invoke(app, list(args))
    assert r.exit_code == 0, (args, r.stdout, r.stderr)
    return r


@pytest.fixture(scope="module")
def runs_dir(tmp_path_factory):
    """A folder holding runs/seed (20 epochs), the newest run there."""
    base = tmp_path_factory.mktemp("vocab")
    _ok("train", "-q", "--epochs", "20", "-o", str(base / "runs" / "seed"))
    return base


def test_force_replaces_a_run_folder_in_train_and_step_as_in_every_command(tmp_path):
    out = tmp_path / "r"
    _ok("train", "-q", "--epochs", "2", "-o", str(out))
    again = runner.invoke(app, ["train", "-q", "--epochs", "2", "--out", str(out)])
    assert 2 == again.exit_code
    assert f"error: --out: {out} already exists; choose another folder or add --force\n" == again.stderr
    _ok("train", "-q", "--epochs", "3", "--out", str(out), "--force")
    assert 3 == json.loads(_ok("runs", str(tmp_path), "--json").stdout)["runs"][0]["epochs"]
    _ok("train", "-q", "--epochs", "4", "--out", str(out), "--overwrite")  # the old name, hidden
    assert 4 == json.loads(_ok("runs", str(tmp_path), "--json").stdout)["runs"][0]["epochs"]
    stepped = tmp_path / "s"
    _ok("step", str(out), "-o", str(stepped))
    _ok("step", str(out), "-o", str(stepped), "--force")


def test_help_shows_only_the_new_names():
    for command, new, old in (("train", "--force", "--overwrite"), ("step", "--force", "--overwrite"),
                              ("plot", "--weight", "--weights"), ("gradcheck", "--n-samples", "--samples"),
                              ("gradcheck", "--subset-seed", "--seed"), ("exercise", "--n-samples", "--samples")):
        text = _ok(command, "--help").stdout
        assert new in text and f"{old} " not in text, (command, old)


def test_counts_are_n_samples_and_the_old_name_still_works():
    new = json.loads(_ok("gradcheck", "--n-samples", "2", "--json").stdout)
    old = json.loads(_ok("gradcheck", "--samples", "2", "--json").stdout)
    assert {"used": 2, "total": 4} == new["samples"] == old["samples"]
    assert "--n-samples" in runner.invoke(app, ["gradcheck", "--n-samples", "0"]).stderr
    sheet_new = _ok("exercise", "--seed", "7", "--n-samples", "1").stdout
    assert sheet_new == _ok("exercise", "--seed", "7", "--samples", "1").stdout
    assert "(m = 1)" in sheet_new


def test_gradcheck_subset_seed_picks_the_subset_and_seed_is_its_old_name():
    def cost(*args):
        return json.loads(_ok("gradcheck", "configs/iris.yaml", "--n-samples", "3", *args, "--json").stdout)["cost"]
    assert cost("--subset-seed", "1") == cost("--seed", "1") != cost("--subset-seed", "2")


def test_commands_that_read_a_run_default_to_the_newest(runs_dir, monkeypatch):
    monkeypatch.chdir(runs_dir)
    inspected = json.loads(_ok("inspect", "--json").stdout)
    assert json.loads(_ok("inspect", "runs/seed", "--json").stdout) == inspected
    assert "runs/seed" == json.loads(_ok("export", "-o", "exp", "--json").stdout)["source"]
    plotted = json.loads(_ok("plot", "-w", "v1", "-o", "pics", "--dpi", "20", "--json").stdout)
    assert "runs/seed" == plotted["run_dir"]
    assert [["pics/weights.png"], ["pics/histograms.png"]] == [p["files"] for p in plotted["plots"]]


def test_show_all_lists_every_parameter():
    cut = _ok("show", "configs/deep_relu.yaml").stdout
    assert "... and 531 more parameters (--all lists them; all are in --json)" in cut
    whole = _ok("show", "configs/deep_relu.yaml", "--all").stdout
    n = json.loads(_ok("show", "configs/deep_relu.yaml", "--json").stdout)["n_params"]
    assert 591 == n
    assert "more parameters" not in whole
    assert all(f"\n {p['name']} " in whole for p in json.loads(
        _ok("show", "configs/deep_relu.yaml", "--json").stdout)["parameters"])


def test_standardised_inputs_are_spelled_one_way_in_every_command(tmp_path):
    """explain, show --dot, view and export say 'standardised'; show --sample and predict said 'standardized'."""
    import io
    from pathlib import Path

    from rich.console import Console

    from bpcli.analysis.newdata import read_table
    from bpcli.analysis.predict import predict_table
    from bpcli.render.predict import predict_view
    from bpcli.runs.store import load_run

    configs = Path(__file__).resolve().parents[2] / "configs"
    run = str(tmp_path / "iris")
    _ok("train", str(configs / "iris.yaml"), "--epochs", "2", "-q", "-o", run)
    flowers = b"sepal_length,sepal_width,petal_length,petal_width\n5.0,3.4,1.5,0.2\n"
    console = Console(file=io.StringIO(), width=120, color_system=None)  # predict's table, as on a terminal
    console.print(predict_view(predict_table(load_run(run), read_table("-", io.BytesIO(flowers))), 120))
    texts = {"show": runner.invoke(app, ["show", run, "--sample", "1"], env={"COLUMNS": "200"}).stdout,
             "predict": console.file.getvalue(), "explain": _ok("explain", "--run", run, "-w", "v11").stdout}
    for command, text in texts.items():
        assert "standardised" in text and "standardized" not in text, (command, text)
