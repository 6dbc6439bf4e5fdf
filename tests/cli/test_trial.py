"""Bugs found by using bpcli as its users do (the trial pass): each test failed before its fix."""

from __future__ import annotations

from typer.testing import CliRunner

from bpcli.cli.app import app

runner = CliRunner()


def _history(E: int, L: int, sat: float) -> list[dict]:
    return [{"epoch": e + 1, "loss": 1.0 / (e + 1), "grad_norm": [1.0] * L, "update_ratio": [1e-2] * L,
             "saturation": [sat] * L} for e in range(E)]


def test_inspect_keeps_the_run_name_when_a_layer_is_saturated(rng):
    from tests.conftest import random_net

    from bpcli.analysis.inspect import inspect_run
    net = random_net(rng, 2, [4, 1], hidden="tanh", output="identity", loss="squared_error")
    res = inspect_run(net, _history(20, 2, 1.0), "my_run", "runs/my_run")
    assert ["saturated"] == [f.kind for f in res.findings]
    assert "my_run" == res.name
    assert "my_run" == res.to_dict()["name"]


def test_a_huge_r2_of_a_diverged_run_prints_in_scientific_notation():
    from bpcli.render.numbers import fmt_metric
    assert "-1.049e+292" == fmt_metric("r2", -1.0486e292)
    assert "0.9832" == fmt_metric("r2", 0.98317)
    assert "98.3%" == fmt_metric("accuracy", 0.983)


def test_markdown_keeps_a_symbol_that_starts_a_sentence_in_lower_case():
    res = runner.invoke(app, ["explain", "-w", "w11", "--format", "markdown"])
    assert 0 == res.exit_code, res.output
    assert '**Step 5.** o1 feeds one node, B (class "1").' in res.output
    assert "O1" not in res.output
    assert "**Step 1.** The cost C" in res.output  # plain words are still capitalised


def _interrupted_seed_run(tmp_path, after: int = 5):
    from bpcli.config.loader import load_config
    from bpcli.runs.session import run_training
    cfg, data = load_config(None)
    done = []
    res = run_training(cfg, data, tmp_path / "run", on_epoch=done.append, should_stop=lambda: len(done) >= after)
    assert "interrupted" == res.status and after == res.epochs
    return tmp_path / "run"


def test_resume_refuses_an_epoch_count_the_run_has_already_reached(tmp_path):
    run = _interrupted_seed_run(tmp_path)
    res = runner.invoke(app, ["train", "--resume", str(run), "--epochs", "3", "-q"])
    assert 2 == res.exit_code
    assert "--epochs: the run has already trained 5 epochs" in res.output
    assert "Traceback" not in res.output


def test_a_resumed_run_forgets_the_interruption_message(tmp_path):
    import json
    run = _interrupted_seed_run(tmp_path)
    res = runner.invoke(app, ["train", "--resume", str(run), "--epochs", "8", "-q", "--json"])
    assert 0 == res.exit_code, res.output
    doc = json.loads(res.stdout)
    assert ("completed", "", 8) == (doc["status"], doc["message"], doc["epochs"])


def test_ctrl_c_prints_the_resume_command_on_one_line_with_its_brackets(tmp_path, monkeypatch):
    import signal

    import bpcli.runs.session
    real = bpcli.runs.session.run_training

    def interrupted_at_once(*args, **kwargs):
        signal.raise_signal(signal.SIGINT)  # what Ctrl-C does; bpcli's handler asks training to stop
        return real(*args, **kwargs)

    monkeypatch.setattr(bpcli.runs.session, "run_training", interrupted_at_once)
    out = tmp_path / "[v1]" / ("a-run-folder-with-a-rather-long-name-" * 2)
    res = runner.invoke(app, ["train", "-q", "--out", str(out)], env={"COLUMNS": "80"})
    assert 130 == res.exit_code, res.output
    assert f"continue with `bpcli train --resume {out}`" in res.stderr


def test_init_names_a_bracketed_path_as_it_is(tmp_path):
    path = tmp_path / "[lecture]" / "ex.yaml"
    path.parent.mkdir()
    res = runner.invoke(app, ["init", str(path), "--example", "iris"])
    assert 0 == res.exit_code, res.output
    assert f"wrote {path} and {path.parent / 'iris.csv'}" in res.stderr
    assert f"next: bpcli train {path}" in res.stderr


def test_train_summary_title_shows_a_bracketed_config_name():
    import io

    from rich.console import Console

    from bpcli.render.train import train_view
    from bpcli.training.results import TrainResult
    res = TrainResult("br[red]x", "br.yaml", "runs/x", "completed", "", 5, "accuracy", 0.5, 1.0, None, None,
                      0.1, 4, 0, ())
    buf = io.StringIO()
    Console(file=buf, width=80).print(train_view(res))
    assert "trained br[red]x" in buf.getvalue()


def test_train_on_a_run_folder_points_to_resume_not_to_a_missing_run_option(tmp_path):
    run = _interrupted_seed_run(tmp_path)
    res = runner.invoke(app, ["train", str(run)])
    assert 2 == res.exit_code
    assert "--run" not in res.stderr
    assert f"--resume {run}" in res.stderr and f"{run / 'epoch-5' / 'config.yaml'}" in res.stderr


def test_plot_or_inspect_of_a_config_file_says_it_is_not_a_run_folder(tmp_path):
    from bpcli.config.loader import builtin_config_dir
    cfg = builtin_config_dir() / "seed.yaml"
    for argv in (["plot", str(cfg)], ["inspect", str(cfg)], ["explain", "--run", str(cfg), "-w", "v1"],
                 ["train", "--resume", str(cfg)]):
        res = runner.invoke(app, argv)
        assert 2 == res.exit_code, argv
        assert "not found" not in res.stderr, argv
        assert f"{cfg}: is a file, not a run folder; make one with `bpcli train {cfg}`" in res.stderr, argv


def test_show_wraps_a_long_equation_instead_of_cutting_off_its_bias():
    from bpcli.config.loader import builtin_config_dir
    res = runner.invoke(app, ["show", str(builtin_config_dir() / "iris.yaml")], env={"COLUMNS": "80"})
    assert 0 == res.exit_code, res.output
    assert "…" not in res.stdout
    assert max(len(line) for line in res.stdout.splitlines()) <= 80
    assert "w14*petal_width + b_A1" in res.stdout.replace("\n", " ")


def test_a_runs_own_config_says_it_holds_initial_weights(tmp_path):
    out = tmp_path / "r"
    assert runner.invoke(app, ["train", "-q", "--epochs", "3", "--out", str(out)]).exit_code == 0
    result = runner.invoke(app, ["show", str(out / "epoch-3" / "config.yaml")])
    assert result.exit_code == 0
    assert "initial weights" in result.stderr and str(out) in result.stderr
