"""bpcli runs (the run folders, newest first, read from run.json and metrics.json alone) and `latest` for a RUN."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bpcli.cli.app import app

runner = CliRunner()
CONFIGS = Path(__file__).resolve().parents[2] / "configs"


def invoke(*args, input=None):
    return runner.invoke(app, [str(a) for a in args], input=input)


def train(out: Path, *extra) -> None:
    res = invoke("train", "--epochs", 20, "--out", out, "-q", *extra)
    assert res.exit_code == 0, res.output


@pytest.fixture(scope="module")
def three(tmp_path_factory) -> Path:
    """runs/ with b, a, c trained in that order (names not in creation order), then b's run.json touched."""
    base = tmp_path_factory.mktemp("three")
    for name in ("b", "a", "c"):
        train(base / "runs" / name)
    later = time.time() + 100
    os.utime(base / "runs" / "b" / "run.json", (later, later))  # changed last, created first
    return base


def listing(folder: Path) -> list[dict]:
    res = invoke("runs", folder, "--json")
    assert res.exit_code == 0, res.output
    return json.loads(res.stdout)["runs"]


def test_runs_are_listed_newest_first_with_what_training_saved(three):
    runs = listing(three / "runs")
    assert ["c", "a", "b"] == [r["name"] for r in runs]
    assert runs[0]["created"] > runs[1]["created"] > runs[2]["created"]
    for r in runs:
        ck = Path(r["path"]) / json.loads((Path(r["path"]) / "run.json").read_text())["checkpoint"]
        metrics = json.loads((ck / "metrics.json").read_text())
        assert (True, "completed", 20, "<built-in seed.yaml>") == (r["ok"], r["status"], r["epochs"], r["config"])
        assert (metrics["loss"], metrics["train_metric"], metrics["metric"]) == (r["loss"], r["train_metric"],
                                                                                 r["metric"])


def test_runs_reads_no_weights_or_data(three, tmp_path):
    import shutil
    copy = tmp_path / "runs"
    shutil.copytree(three / "runs", copy)
    for ck in copy.glob("*/epoch-*"):
        for name in ("weights.npz", "state.npz", "config.yaml", "history-sample.json"):
            (ck / name).unlink()
    assert [True] * 3 == [r["ok"] for r in listing(copy)]


def test_damaged_and_foreign_folders_get_a_short_status(three, tmp_path):
    import shutil
    base = tmp_path / "runs"
    shutil.copytree(three / "runs", base)
    m = json.loads((base / "a" / "run.json").read_text())
    m["epoch"] += 1  # changed without its checksum
    (base / "a" / "run.json").write_text(json.dumps(m))
    (base / "b" / "run.json").write_text("{not json")
    ck = base / "c" / m["checkpoint"]
    (ck / "metrics.json").write_text("{}")
    (base / "mine").mkdir()
    (base / "mine" / "notes.txt").write_text("hello")
    (base / "old").mkdir()
    (base / "old" / "train_state.json").write_text("{}")
    (base / "a-file.txt").write_text("not a folder")
    (base / ".bpcli-new-x").mkdir()  # a run being staged
    runs = {r["name"]: r for r in listing(base)}
    assert {"a", "b", "c", "mine", "old"} == set(runs)
    assert not any(r["ok"] for r in runs.values())
    assert all(r["status"].startswith("damaged") for n, r in runs.items() if n in "abc")
    assert "checksum" in runs["a"]["problem"] and "metrics.json" in runs["c"]["problem"]
    text = invoke("runs", base)
    assert text.exit_code == 0 and "Traceback" not in text.output
    assert all(name in text.stdout for name in runs)


def test_the_runs_table_is_clean_text_at_80_and_120_columns(three):
    for width in ("80", "120"):
        res = runner.invoke(app, ["runs", str(three / "runs")], env={"COLUMNS": width})
        lines = res.stdout.splitlines()
        assert all(len(ln) <= int(width) and ln == ln.rstrip() for ln in lines), res.stdout
        assert "\x1b" not in res.stdout and 3 == sum(ln.split()[0] in "abc" for ln in lines if ln.split())


def test_runs_of_a_missing_folder_is_one_line_exit_2(tmp_path):
    res = invoke("runs", tmp_path / "nowhere")
    assert 2 == res.exit_code and 1 == len(res.stderr.strip().splitlines())


# --- latest -------------------------------------------------------------------------------


def source_of(*args) -> str:
    res = invoke("show", *args, "--json")
    assert res.exit_code == 0, res.output
    return Path(json.loads(res.stdout)["source"]).name


def test_latest_is_the_newest_run_everywhere_a_run_is_taken(three, monkeypatch):
    monkeypatch.chdir(three)
    assert "c" == source_of("latest") == source_of("runs/latest") == source_of(three / "runs" / "latest")
    res = invoke("explain", "--run", "latest", "--weight", "v1", "--json")
    assert Path(json.loads(res.stdout)["source"]).name == "c"
    assert json.loads(invoke("inspect", "latest", "--json").stdout)["run_dir"].endswith("c")
    assert json.loads(invoke("predict", "latest", "--json").stdout)["run"].endswith("c")
    assert json.loads(invoke("evaluate", "latest", "--part", "train", "--json").stdout)["run"].endswith("c")
    resumed = invoke("train", "--resume", "latest")  # completed: nothing to resume, said of the run it found
    assert 2 == resumed.exit_code and "runs/c" in resumed.stderr


def test_a_real_folder_called_latest_wins(three, tmp_path, monkeypatch):
    import shutil
    shutil.copytree(three / "runs", tmp_path / "runs")
    shutil.copytree(three / "runs" / "b", tmp_path / "runs" / "latest")  # a copy of the oldest run
    m = json.loads((tmp_path / "runs" / "latest" / "run.json").read_text())
    monkeypatch.chdir(tmp_path)
    assert "latest" == source_of("runs/latest")
    assert m["created"] == next(r for r in listing(Path("runs")) if r["name"] == "latest")["created"]


def test_latest_without_runs_is_one_line_exit_2(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for args in (["show", "latest"], ["predict", "latest"], ["inspect", "elsewhere/latest"]):
        res = invoke(*args)
        assert 2 == res.exit_code and 1 == len(res.stderr.strip().splitlines()), res.stderr


def test_train_names_its_folder_last(tmp_path):
    res = invoke("train", "--epochs", 5, "--out", tmp_path / "r", "-q")
    assert res.exit_code == 0
    assert str(tmp_path / "r") in res.stdout.strip().splitlines()[-1]


def test_long_names_stay_whole_on_their_own_lines_and_every_number_stays_whole_at_80_columns():
    """A run name longer than the numbers leave goes on its own line, whole (names are copied into the next
    command; they once folded into 'deep_rel / u'); before that, deep_sigmoid beside six-digit losses pushed the
    table to 82 columns and Rich cut the last column to 'v' and '50.'."""
    from rich.console import Console

    from bpcli.render.runs import runs_view
    from bpcli.runs.listing import RunRow, RunsList

    rows = tuple(RunRow(name, f"runs/{name}", "2026-11-30T03:00:00+00:00", "early_stopped", True, 12345,
                        "accuracy", 0.000664321, 0.000712345, 1.0, 0.5)
                 for name in ("deep_sigmoid_with_a_much_longer_name", "deep_relu"))
    for width in (80, 100):
        console = Console(width=width, record=True, file=open(os.devnull, "w"))
        console.print(runs_view(RunsList("runs", rows), width=width))
        text = console.export_text()
        assert all(len(ln) <= width for ln in text.splitlines()), text
        for cell in ("0.000664", "0.000712", "100.0%", "50.0%", "12345", "early stopped", "val", "metric"):
            assert all(cell in ln for ln in text.splitlines() if "Nov 30" in ln) or cell in ("val", "metric"), cell
        assert text.count("early stopped") == 2 and text.count("100.0%") == 2 and text.count("50.0%") == 2, text
        assert ["deep_sigmoid_with_a_much_longer_name", "deep_relu"] == [
            ln for ln in text.splitlines() if ln.startswith("deep")], text  # each whole, on its own line


def _train_then_kill(tmp_path: Path, while_live=lambda: None) -> Path:
    """runs/r in tmp_path: a `bpcli train` process started, while_live() called once its run.json exists, then
    the process killed (SIGKILL: its stop never saved). Returns the run folder."""
    import signal
    import subprocess
    import sys

    src = Path(__file__).resolve().parents[2] / "src"
    p = subprocess.Popen([sys.executable, "-m", "bpcli", "train", "--epochs", "1000000", "--out", "runs/r", "-q"],
                         cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(src)}, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while not (tmp_path / "runs" / "r" / "run.json").exists():
            assert p.poll() is None and time.monotonic() < deadline
            time.sleep(0.01)
        while_live()
    finally:
        p.send_signal(signal.SIGKILL)
        p.wait(timeout=30)
    return tmp_path / "runs" / "r"


def test_a_run_whose_process_was_killed_is_listed_as_killed_not_running(tmp_path):
    """run.json says running while training; once the process is gone without saving its stop (SIGKILL),
    `runs` says killed and how to continue, since no process holds the folder's lock any more."""
    def live():
        doc = json.loads(runner.invoke(app, ["runs", str(tmp_path / "runs"), "--json"]).stdout)
        assert ["running"] == [r["status"] for r in doc["runs"]]

    _train_then_kill(tmp_path, live)
    dead = json.loads(runner.invoke(app, ["runs", str(tmp_path / "runs"), "--json"]).stdout)
    assert ["killed"] == [r["status"] for r in dead["runs"]]
    text = runner.invoke(app, ["runs", str(tmp_path / "runs")]).stdout
    assert "bpcli train --resume" in text
    assert runner.invoke(app, ["train", "--resume", str(tmp_path / "runs" / "r"), "--epochs", "1", "-q"]).exit_code \
        in (0, 2)  # resumable (or already past epoch 1: a clear refusal), never a traceback


def _words(text: str) -> set[str]:
    return {w for ln in text.splitlines() for w in ln.split()}


def test_names_and_config_paths_are_never_broken_at_80_and_120_columns(tmp_path):
    """At 120 columns the config column once folded a long path mid-word ('.../folde' / 'r/of/...'): it is
    shortened from the left at a folder boundary, its file name always whole; run names stay whole at 80 and 120."""
    deep = tmp_path / "some" / "rather" / "long" / "folder" / "of" / "configs"
    deep.mkdir(parents=True)
    config = deep / "a_long_config_name_for_testing.yaml"
    config.write_text((CONFIGS / "seed.yaml").read_text())
    runs = tmp_path / "runs"
    for name, cfg in (("long", config), ("seed", CONFIGS / "seed.yaml")):
        res = invoke("train", cfg, "--epochs", 3, "--out", runs / name, "-q")
        assert res.exit_code == 0, res.output
    for width in (80, 120):
        text = runner.invoke(app, ["runs", str(runs)], env={"COLUMNS": str(width)}).stdout
        lines = text.splitlines()
        assert all(len(ln) <= width for ln in lines), text
        assert {"long", "seed"} <= _words(text), text  # each name whole on one line
        if width == 120:
            # every path piece shown is whole: the shown path (its lines joined) is a left-cut of the real one
            # the long run's row and the lines that continue it (the seed's path may be cut short too when the
            # checkout's path is long)
            at = next(i for i, ln in enumerate(lines) if ln.split()[:1] == ["long"])
            row = [lines[at]] + [ln for ln in lines[at + 1:at + 3] if ln.strip() and ln.startswith(" " * 20)]
            cell = [ln[ln.index("…"):].strip() if "…" in ln else ln.strip() for ln in row]
            shown = "".join(cell)
            assert shown.startswith("…/") and shown.endswith("/" + config.name), text  # the file name whole
            assert str(config).endswith(shown[1:]), text
    # a longer run name leaves the file name no room at 120: no config column, and the note says where it shows
    res = invoke("train", CONFIGS / "seed.yaml", "--epochs", 3, "--out", runs / "worked_example_run", "-q")
    assert res.exit_code == 0, res.output
    text = runner.invoke(app, ["runs", str(runs)], env={"COLUMNS": "120"}).stdout
    assert "worked_example_run" in _words(text) and "config" not in text.splitlines()[2], text
    at = int(text.split("on a terminal ")[1].split()[0])
    text = runner.invoke(app, ["runs", str(runs)], env={"COLUMNS": str(at)}).stdout
    assert all(len(ln) <= at for ln in text.splitlines()), text
    assert config.name in _words(text) or "/" + config.name in text, text  # whole: on its own line, or after "/"


def test_a_run_made_by_step_out_is_listed_as_stepped_with_its_steps(tmp_path):
    runs = tmp_path / "runs"
    res = invoke("step", CONFIGS / "seed.yaml", "-k", 3, "--out", runs / "s")
    assert res.exit_code == 0, res.output
    rows = listing(runs)
    assert [("stepped", 3, 3)] == [(r["status"], r["steps"], r["epochs"]) for r in rows]
    text = runner.invoke(app, ["runs", str(runs)], env={"COLUMNS": "120"}).stdout
    assert "interrupted" not in text and "stepped" in text.splitlines()[4], text
    assert "3 steps" in text and "bpcli train --resume" in text, text
    # resumed, it is a training run again: its status is training's
    res = invoke("train", "--resume", runs / "s", "-q")
    assert res.exit_code == 0, res.output
    assert [("completed", None)] == [(r["status"], r["steps"]) for r in listing(runs)]


def test_show_inspect_and_compare_call_a_step_out_run_stepped_not_interrupted(tmp_path):
    runs = tmp_path / "runs"
    res = invoke("step", CONFIGS / "seed.yaml", "-k", 3, "--out", runs / "s")
    assert res.exit_code == 0, res.output
    invoke("step", CONFIGS / "seed.yaml", "-k", 2, "--out", runs / "t")
    run = str(runs / "s")
    shown = json.loads(invoke("show", run, "--json").stdout)
    assert ("stepped", 3, None) == (shown["status"], shown["stepped"], shown["epoch"])
    at_zero = json.loads(invoke("show", run, "--epoch", "0", "--json").stdout)  # the run's status, not the snapshot's
    assert ("stepped", 3, 0) == (at_zero["status"], at_zero["stepped"], at_zero["epoch"])
    inspected = json.loads(invoke("inspect", run, "--json").stdout)
    assert ("stepped", 3) == (inspected["status"], inspected["stepped"])
    compared = json.loads(invoke("compare", run, runs / "t", "--json").stdout)
    assert [("stepped", 3), ("stepped", 2)] == [(r["status"], r["stepped"]) for r in compared["runs"]]
    for args in (["show", run], ["inspect", run], ["compare", run, str(runs / "t")]):
        text = runner.invoke(app, args, env={"COLUMNS": "200"}).stdout
        assert "interrupted" not in text, args
        assert f"stepped (made by `bpcli step --out`, 3 steps); `bpcli train --resume {run}` continues it" in text, args
    # resumed, it is a training run again
    assert 0 == invoke("train", "--resume", run, "-q").exit_code
    shown = json.loads(invoke("show", run, "--json").stdout)
    assert ("completed", None) == (shown["status"], shown["stepped"])
    assert "stepped" not in runner.invoke(app, ["show", run], env={"COLUMNS": "200"}).stdout


def test_inspect_at_an_epoch_of_a_stepped_run_calls_it_stepped_and_resumes_the_folder(tmp_path):
    """inspect --epoch N of a run `step --out` made says what the run is, as show --epoch N does: at its last epoch
    'stepped' with the steps and `train --resume FOLDER` (the folder, not 'FOLDER after epoch N'); at an earlier one
    a snapshot of a run that stepped on to its last epoch; never 'interrupted'."""
    runs = tmp_path / "runs"
    assert 0 == invoke("step", CONFIGS / "seed.yaml", "-k", 3, "--out", runs / "s").exit_code
    run = str(runs / "s")
    last = json.loads(invoke("inspect", run, "--epoch", "3", "--json").stdout)
    assert ("stepped", 3, f"{run} after epoch 3") == (last["status"], last["stepped"], last["run_dir"])
    text = runner.invoke(app, ["inspect", run, "--epoch", "3"], env={"COLUMNS": "200"}).stdout
    assert f"the run is stepped (made by `bpcli step --out`, 3 steps); `bpcli train --resume {run}` continues it" \
        in text, text
    earlier = json.loads(invoke("inspect", run, "--epoch", "1", "--json").stdout)
    assert ("a snapshot; the run stepped at epoch 3", 3) == (earlier["status"], earlier["stepped"])
    for epoch in ("1", "3"):
        assert "interrupted" not in runner.invoke(app, ["inspect", run, "--epoch", epoch],
                                                  env={"COLUMNS": "200"}).stdout


def test_show_inspect_and_compare_call_a_killed_run_killed_as_runs_does(tmp_path):
    """A run whose process was killed (run.json still says running, no process holds the folder) is 'killed' in
    show, inspect (at its checkpoint and at an epoch) and compare, as `runs` lists it, not 'running'."""
    run = str(_train_then_kill(tmp_path))
    train(tmp_path / "runs" / "done")
    assert ["killed"] == [r["status"] for r in listing(tmp_path / "runs") if r["name"] == "r"]
    assert "killed" == json.loads(invoke("show", run, "--json").stdout)["status"]
    assert "killed" == json.loads(invoke("inspect", run, "--json").stdout)["status"]
    assert "killed" == json.loads(invoke("inspect", run, "--epoch", "0", "--json").stdout)["status"]
    compared = json.loads(invoke("compare", run, tmp_path / "runs" / "done", "--json").stdout)
    assert ["killed", "completed"] == [r["status"] for r in compared["runs"]]
    assert "(killed)" in runner.invoke(app, ["inspect", run], env={"COLUMNS": "200"}).stdout


def _saved_as_running(run: Path) -> None:
    """run.json as a checkpoint written while training leaves it (status running), its checksum redone: with no
    process holding the folder, the run is killed (as after a SIGKILL past a checkpoint, without waiting for one)."""
    import hashlib

    from bpcli.runs.store import canonical
    meta = {k: v for k, v in json.loads((run / "run.json").read_text()).items() if k != "sha256"}
    meta["status"] = "running"
    (run / "run.json").write_text(json.dumps({**meta, "sha256": hashlib.sha256(canonical(meta)).hexdigest()}))


def test_inspect_of_a_killed_run_says_how_to_continue_it_as_runs_does(tmp_path, monkeypatch):
    """inspect said '(killed)' and no more; runs said how to continue: both give the same hint, and it works."""
    monkeypatch.chdir(tmp_path)  # a short path, so the command fits a line of 80
    run = Path("runs") / "r"
    train(run)
    _saved_as_running(run)
    hint = f"killed (its process ended without saving its stop); `bpcli train --resume {run}` continues from epoch 20"
    wide = {"COLUMNS": "200"}
    listed = runner.invoke(app, ["runs", "runs"], env=wide).stdout
    assert f"r: {hint}" in listed.splitlines(), listed
    inspected = runner.invoke(app, ["inspect", str(run)], env=wide).stdout
    assert f"the run is {hint}" in inspected.splitlines(), inspected
    narrow = runner.invoke(app, ["inspect", str(run)], env={"COLUMNS": "80"}).stdout
    assert f"`bpcli train --resume {run}` continues from epoch 20" in narrow.splitlines(), narrow  # whole at 80
    res = invoke("train", "--resume", run, "--epochs", 25, "-q", "--json")
    assert res.exit_code == 0, res.output
    assert [("completed", 25)] == [(r["status"], r["epochs"]) for r in listing(Path("runs"))]
