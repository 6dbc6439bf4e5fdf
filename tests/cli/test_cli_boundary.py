"""The CLI boundary: every path ends in one clear line, user text never drives the terminal, pipes close quietly."""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bpcli.cli.app import app

SRC = str(Path(__file__).resolve().parents[2] / "src")
runner = CliRunner()


def _clean(result, code: int = 2) -> list[str]:
    """Assert exit `code` without a traceback; the error lines."""
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert code == result.exit_code, result.output
    assert "Traceback" not in result.output
    return [ln for ln in result.stderr.splitlines() if ln.startswith("error:")]


def _proc(args, cwd, **kw):
    env = {**os.environ, "PYTHONPATH": SRC}
    return subprocess.run([sys.executable, "-m", "bpcli", *args], cwd=cwd, env=env, timeout=60, **kw)


@pytest.mark.parametrize("text", [
    "layers: [{size: 1.0e+308}]\ndata: {generator: xor}\n",
    "layers: [{size: 1.0e+308}, {size: 1.0e+308}]\ninputs: 3\ndata: {generator: xor}\n",
    f"layers: [{{size: {10**400}}}]\ndata: {{generator: xor}}\n",
    "layers: [2, 1]\ndata: {generator: xor, samples: 1.0e+308}\ntrain: {epochs: 1.0e+300, batch_size: 1.0e+308}\n",
])
def test_absurd_whole_numbers_are_one_line_each(text, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("cfg.yaml").write_text(text)
    lines = _clean(runner.invoke(app, ["train", "cfg.yaml", "-q"]))
    assert lines and all(ln.startswith("error: cfg.yaml:") for ln in lines), lines
    assert all(len(ln) < 400 for ln in lines), lines


def test_init_on_a_folder_is_refused_even_with_force(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("d").mkdir()
    (Path("d") / "keep").write_text("x")
    [line] = _clean(runner.invoke(app, ["init", "d", "--force"]))
    assert line.startswith("error: d: is a folder")
    assert ["keep"] == os.listdir("d")


def _disk_full(*args, **kwargs):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


@pytest.mark.parametrize("args", [["init", "new.yaml"], ["show", "--out", "net.dot"]])
def test_a_full_disk_when_writing_is_one_line_and_leaves_nothing(args, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("bpcli.files.os.fsync", _disk_full)
    [line] = _clean(runner.invoke(app, args))
    assert "No space left on device" in line, line
    assert [] == os.listdir(tmp_path)


def test_plot_into_a_folder_it_cannot_write_is_one_line(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert 0 == runner.invoke(app, ["train", "-q", "--epochs", "2", "--out", "run"]).exit_code
    pytest.importorskip("matplotlib")

    def denied(*args, **kwargs):
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(tmp_path / "ro" / "loss.png"))

    monkeypatch.setattr("bpcli.plots.plot.plot_run", denied)
    [line] = _clean(runner.invoke(app, ["plot", "run", "--out", "ro"]))
    assert line == f"error: --out: cannot write {tmp_path / 'ro' / 'loss.png'} (Permission denied)"


def test_a_run_file_that_cannot_be_read_is_one_line(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert 0 == runner.invoke(app, ["train", "-q", "--epochs", "2", "--out", "run"]).exit_code
    ckpt = Path("run") / json.loads(Path("run/run.json").read_text())["checkpoint"]
    os.remove(ckpt / "metrics.json")
    os.mkdir(ckpt / "metrics.json")  # reading raises IsADirectoryError, as an unreadable file raises PermissionError
    for cmd in (["show", "run"], ["inspect", "run"], ["explain", "run", "-w", "v1"]):
        [line] = _clean(runner.invoke(app, cmd))
        assert "metrics.json" in line, line


def test_a_path_is_never_said_twice(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert 0 == runner.invoke(app, ["train", "-q", "--epochs", "2", "--out", "run"]).exit_code
    ckpt = Path("run") / json.loads(Path("run/run.json").read_text())["checkpoint"]
    (ckpt / "config.yaml").write_text("layers: [\n")
    [line] = _clean(runner.invoke(app, ["show", "run"]))
    assert 1 == line.count("config.yaml"), line


def test_stdout_on_a_full_device_is_one_line(tmp_path):
    with open("/dev/full", "w") as full:
        proc = _proc(["show"], tmp_path, stdout=full, stderr=subprocess.PIPE, text=True)
    assert 2 == proc.returncode
    assert "error: cannot write the output (No space left on device)\n" == proc.stderr


@pytest.mark.parametrize("args", [["train", "--json", "-q", "--epochs", "3"], ["show"], ["show", "--json"],
                                  ["explain", "-w", "v1", "--format", "markdown"]])
def test_a_closed_stdout_pipe_ends_quietly(args, tmp_path):
    """The reader is gone before bpcli writes (`| head -1` after its line): no message, no traceback, exit 141."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        proc = _proc(args, tmp_path, stdout=write_end, stderr=subprocess.PIPE, text=True)
    finally:
        os.close(write_end)
    assert "" == proc.stderr
    assert 141 == proc.returncode


EVIL = "\x1b]0;pwned\x07\x1b[2J\x1b[31m"  # retitle the window, clear the screen, turn text red


def _evil_folder(tmp_path: Path) -> None:
    (tmp_path / "d.csv").write_text(f"a{EVIL},b,label\n0,0,no{EVIL}\n0,1,yes\n1,0,yes\n1,1,no{EVIL}\n")
    (tmp_path / "cfg.yaml").write_text(
        'name: "n\\e]0;pwned\\a\\e[2J"\ndescription: "\\e[31mred"\n'
        "layers: [{size: 2, activation: tanh}, {size: 2, activation: softmax}]\nloss: cross_entropy\n"
        "data: {csv: d.csv, target: label}\ntrain: {epochs: 3, lr: 0.1}\n")


@pytest.mark.parametrize("colour", ["", "1"], ids=["plain", "FORCE_COLOR"])
def test_control_characters_from_a_config_never_reach_the_terminal_raw(colour, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("FORCE_COLOR", colour) if colour else monkeypatch.delenv("FORCE_COLOR", raising=False)
    monkeypatch.setenv("COLUMNS", "200")
    _evil_folder(tmp_path)
    result = runner.invoke(app, ["train", "cfg.yaml", "--out", "run"])
    outputs = [result.output]
    assert 0 == result.exit_code, result.output
    for cmd in (["show", "run"], ["show", "run", "--sample", "1"], ["show", "run", "--dot"], ["inspect", "run"],
                ["explain", "run", "-w", "w11"], ["explain", "run", "-w", "w11", "--format", "markdown"],
                ["explain", "run", "-w", "w11", "--format", "latex"], ["gradcheck", "run"],
                ["explain", "run", "-w", f"w{EVIL}"], ["train", "cfg.yaml", "--epochs", "0"]):
        outputs.append(runner.invoke(app, cmd).output)
    for out in outputs:
        for raw in ("\x1b]0;", "\x07", "\x1b[2J", "\x1b[31mred"):
            assert raw not in out, (raw, out[:3000])
    assert any("\\x1b[2J" in out for out in outputs)  # shown, escaped


def test_numpy_runtime_warnings_become_one_note(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("huge.yaml").write_text(
        "inputs: 2\nlayers: [{size: 2, activation: identity, weights: [[1.0e+300, 1.0e+300], [1.0e+300, 1.0e+300]]},"
        " {size: 1, activation: identity}]\ndata: {x: [[1.0e+10, 1.0e+10], [1, 2]], y: [[0], [1]]}\n")
    result = runner.invoke(app, ["show", "huge.yaml", "--sample", "1"])
    assert "RuntimeWarning" not in result.output
    notes = [ln for ln in result.stderr.splitlines() if ln.startswith("note:")]
    assert 1 == len(notes) and "overflow" in notes[0], result.stderr
    # gradcheck says what the overflow means in its own verdicts: not finite, a failure
    result = runner.invoke(app, ["gradcheck", "huge.yaml"])
    assert "RuntimeWarning" not in result.output
    assert 1 == result.exit_code and "not finite" in result.stdout


def test_dash_h_is_help_everywhere():
    for cmd in ([], ["train"], ["show"], ["init"], ["explain"], ["plot"], ["inspect"], ["gradcheck"]):
        short, long = runner.invoke(app, cmd + ["-h"]), runner.invoke(app, cmd + ["--help"])
        assert 0 == short.exit_code and short.output == long.output and "Usage:" in short.output
