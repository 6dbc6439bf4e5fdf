"""What every command says: train's settings and warnings, --json (errors included) on every command, the help,
and text that reads well at 80 columns and in a pipe (no trailing spaces, formulas never broken mid-term)."""

from __future__ import annotations

import io
import json
import re

import numpy as np
import pytest
import typer
from typer.testing import CliRunner

from bpcli.cli.app import app
from bpcli.yamlsrc import read_yaml
from tests.conftest import read_history, run_manifest

runner = CliRunner()
COLS80 = {"COLUMNS": "80"}
OPS = {"=", "*", "+", "-", "/", "->", "<=", ">=", "<", ">"}


def commands() -> dict:
    """Every registered command, found from the app itself (commands added later are included)."""
    return dict(typer.main.get_command(app).commands)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A short seed run (and its folder) shared by the tests that read one."""
    d = tmp_path_factory.mktemp("run")
    r = runner.invoke(app, ["train", "-q", "--epochs", "40", "--lr", "0.3", "--out", str(d / "run"), "--json"])
    assert 0 == r.exit_code, r.output
    return d / "run", json.loads(r.stdout)


# --- train: the settings used, one labelled loss, a warning when the loss rose, a small --json --------------------


def test_train_reports_the_settings_it_used_in_json_on_screen_and_in_the_run_folder(run, tmp_path):
    folder, doc = run
    s = doc["settings"]
    assert (0.3, 40, None, "gd") == (s["lr"], s["epochs"], s["batch_size"], s["optimizer"])
    assert {"init": 3, "train": 0} == {k: s["seeds"][k] for k in ("init", "train")}  # seed.yaml's init seed is 3
    assert 0.0 == s["weight_decay"] and s["early_stopping"] is None
    ckpt = folder / run_manifest(folder)["checkpoint"]
    saved = read_yaml((ckpt / "config.yaml").read_text(), "config.yaml")[0]["train"]
    assert (0.3, 40) == (saved["lr"], saved["epochs"])
    r = runner.invoke(app, ["train", "-q", "--epochs", "3", "--lr", "0.0625", "--batch-size", "2", "--seed", "5",
                            "--out", str(tmp_path / "r")], env=COLS80)
    assert 0 == r.exit_code, r.output
    assert "0.0625" in r.stdout
    doc = json.loads(runner.invoke(app, ["train", "-q", "--epochs", "3", "--lr", "0.0625", "--batch-size", "2",
                                         "--seed", "5", "--out", str(tmp_path / "r2"), "--json"]).stdout)
    assert (0.0625, 2, {"init": 5, "train": 5}) == (doc["settings"]["lr"], doc["settings"]["batch_size"],
                                                    {k: doc["settings"]["seeds"][k] for k in ("init", "train")})


def test_train_json_is_a_summary_and_history_adds_every_row_of_history_csv(run, tmp_path):
    folder, doc = run
    assert len(json.dumps(doc)) < 4000
    assert "rows" not in doc["history"] and 40 == doc["history"]["epochs"]
    r = runner.invoke(app, ["train", "-q", "--epochs", "40", "--out", str(tmp_path / "h"), "--json", "--history"])
    assert 0 == r.exit_code, r.output
    rows = json.loads(r.stdout)["history"]["rows"]
    csv_rows = read_history(tmp_path / "h")
    assert 40 == len(rows) == len(csv_rows)
    for got, want in zip(rows, csv_rows):
        assert want["epoch"] == got["epoch"]
        for key in ("loss", "metric", "seconds"):
            assert want[key] == got[key]
        for key in ("grad_norm", "weight_norm", "update_ratio", "saturation"):
            assert want[key] == got[key]
    assert 2 == runner.invoke(app, ["train", "-q", "--history", "--out", str(tmp_path / "x")]).exit_code


@pytest.mark.parametrize("lr, rose", [(1e6, True), (0.5, False)])
def test_a_run_whose_loss_rose_says_so(lr, rose, tmp_path):
    r = runner.invoke(app, ["train", "-q", "--epochs", "30", "--lr", str(lr), "--out", str(tmp_path / "r"), "--json"])
    assert 0 == r.exit_code, r.output
    doc = json.loads(r.stdout)
    first = read_history(tmp_path / "r")[0]["loss"]  # epoch 1's loss: full batch, so the loss at the initial weights
    assert rose == (doc["final"]["loss"] > first) == doc["loss_rose"]
    assert rose == ("warning" in r.stderr)
    text = runner.invoke(app, ["train", "-q", "--epochs", "30", "--lr", str(lr), "--out", str(tmp_path / "t")])
    assert rose == ("loss rose" in text.stdout)
    narrow = runner.invoke(app, ["train", "-q", "--epochs", "30", "--lr", str(lr), "--out", str(tmp_path / "n")],
                           env={"COLUMNS": "50"})
    assert rose == ("warning" in narrow.stderr)
    assert all(len(ln) <= 50 for ln in narrow.stderr.splitlines()), narrow.stderr  # wrapped, not cut by the terminal


# --- --json everywhere, errors included -------------------------------------------------------------------------

# commands without a positional argument: a bad value for each (a command added later needs an entry here)
BAD_OPTION = {"exercise": ["--size", "2-x-1"]}


def _error_doc(result) -> dict:
    doc = json.loads(result.stdout)
    assert {"error"} == set(doc) and {"message", "exit_code"} <= set(doc["error"]), doc
    assert doc["error"]["exit_code"] == result.exit_code != 0
    assert doc["error"]["message"]
    assert result.stderr.strip(), "the human line goes to stderr as well"
    return doc


@pytest.mark.parametrize("name", sorted(commands()))
def test_every_command_with_json_prints_an_error_object_for_bad_input(name, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cmd = commands()[name]
    assert any(p.name == "json_out" for p in cmd.params), f"{name} has no --json"
    _error_doc(runner.invoke(app, [name, "--json", "--no-such-option"]))  # a usage error, before the command runs
    if any(p.param_type_name == "argument" for p in cmd.params):
        bad = ["no-such-dir/no-such-file.yaml"]
    else:
        assert name in BAD_OPTION, f"give {name} a bad input in BAD_OPTION"
        bad = BAD_OPTION[name]
    _error_doc(runner.invoke(app, [name, *bad, "--json"]))


def test_usage_errors_at_the_top_level_are_json_with_json_and_plain_without():
    for args in (["--json"], ["no-such-command", "--json"]):
        _error_doc(runner.invoke(app, args))
    r = runner.invoke(app, ["show", "--no-such-option"])
    assert 2 == r.exit_code and "" == r.stdout


def test_an_error_after_the_document_adds_no_second_one(capsys):
    from bpcli.cli.common import emit_json, handles_errors
    from bpcli.errors import BpcliError

    @handles_errors
    def cmd(json_out: bool = False):
        emit_json({"command": "x"})
        raise BpcliError("late")

    with pytest.raises(typer.Exit):
        cmd(json_out=True)
    assert {"command": "x"} == json.loads(capsys.readouterr().out)


def test_init_json_and_list(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    r = runner.invoke(app, ["init", "my.yaml", "--example", "iris", "--json"])
    assert 0 == r.exit_code, r.output
    doc = json.loads(r.stdout)
    assert ("my.yaml", ["iris.csv"]) == (doc["written"], doc["copied"])
    assert (tmp_path / "my.yaml").is_file() and (tmp_path / "iris.csv").is_file()
    examples = json.loads(runner.invoke(app, ["init", "--list", "--json"]).stdout)["examples"]
    assert {"seed", "iris", "xor"} <= {e["name"] for e in examples}
    r = runner.invoke(app, ["init", "--list"], env={"COLUMNS": "50"})
    assert 0 == r.exit_code and max(len(ln) for ln in r.stdout.splitlines()) <= 50, r.stdout
    shown = " ".join(r.stdout.split())
    for e in examples:  # every description whole, wrapped beside its name
        words = e["description"].split()
        assert all(w in shown for w in words) and "…" not in r.stdout, (e, r.stdout)


# --- help ----------------------------------------------------------------------------------------------------------


def test_bare_bpcli_prints_the_help_and_succeeds():
    r = runner.invoke(app, [])
    assert 0 == r.exit_code and "Commands:" in r.stdout


def test_the_command_list_has_one_whole_line_per_command_at_80_columns():
    out = runner.invoke(app, ["--help"], env=COLS80).stdout
    section = out.split("Commands:\n", 1)[1].splitlines()
    listed = [ln for ln in section if ln.strip()]
    assert len(commands()) == len(listed), "each summary fits on one line"
    assert {ln.split()[0] for ln in listed} == set(commands())
    assert all(len(ln) <= 80 and not ln.rstrip().endswith("...") for ln in listed), listed


@pytest.mark.parametrize("name", sorted(commands()))
def test_dash_h_is_help_on_every_command_and_usage_names_arguments_plainly(name):
    short, long = runner.invoke(app, [name, "-h"]), runner.invoke(app, [name, "--help"])
    assert 0 == short.exit_code == long.exit_code and short.stdout == long.stdout
    usage = short.stdout.splitlines()[0]
    assert usage.startswith(f"Usage: bpcli {name}") and "{" not in usage, usage


# --- text in a pipe and at 80 columns -----------------------------------------------------------------------------


def test_piped_output_has_no_trailing_spaces(run, tmp_path, monkeypatch):
    folder, _ = run
    monkeypatch.chdir(tmp_path)
    (tmp_path / "ans.yaml").write_text("v1: 0.1\nw11: 0.2\n")
    for args in (["show"], ["show", str(folder)], ["gradcheck"], ["inspect", str(folder)], ["diagnose", "ans.yaml"],
                 ["explain", "-w", "v1"], ["train", "--epochs", "5", "--out", "t"], ["init", "--list"],
                 ["export", str(folder), "-o", "exp"]):
        r = runner.invoke(app, args, env=COLS80)
        assert r.exit_code in (0, 1), (args, r.output)
        bad = [ln for ln in (r.stdout + r.stderr).splitlines() if ln != ln.rstrip()]
        assert not bad, (args, bad)


def _engine_gradients(tmp_path) -> dict:
    (tmp_path / "zero.yaml").write_text("v1: 0\nv2: 0\nb_B: 0\nw11: 0\n")
    doc = json.loads(runner.invoke(app, ["diagnose", str(tmp_path / "zero.yaml"), "--json"]).stdout)
    return {row["name"]: row["engine"] for row in doc["rows"]}


def _assert_formulas_whole(text: str, formulas: list[str]) -> None:
    lines = text.splitlines()
    for ln in lines:
        words = ln.split()
        assert not words or (words[-1] not in OPS and words[0] not in OPS), f"broken at an operator: {ln!r}"
    flat = " ".join(" ".join(lines).split())
    for f in formulas:
        if f in flat:
            assert any(f in " ".join(ln.split()) for ln in lines), f"{f!r} broken across lines:\n{text}"


FORMULAS = ["C = 1/m * sum_i L_i", "dC/dw = 1/m * sum_i dL_i/dw", "dL/dy' = (y' - y)", "L = 1/2 (y - y')^2",
            "z = sum_k w_jk a_k + b_j", "f(z) = 1 / (1 + e^(-z))", "f'(z) = f(z) (1 - f(z))", "z = ... + b * 1",
            "f'(z) = 1 - f(z)^2", "f(z) = max(0, z)", r"$C = \frac{1}{m}\sum_{i=1}^{m} L_i$",
            r"$z_j = \sum_k w_{jk} a_k + b_j$", r"$L = \tfrac12 (y - y')^2$",
            "C = 1/m sum_i L_i", "x' = (x - mean) / std", "(y - y')"]


@pytest.mark.parametrize("columns", ["80", "64"])
def test_diagnose_never_breaks_a_formula(columns, tmp_path):
    g = _engine_gradients(tmp_path)
    # planted: the sign flipped, a sum for the mean (4 samples), the 1/2 dropped, the bias input taken as 0
    answers = {"v1": -g["v1"], "w11": 4 * g["w11"], "v2": 2 * g["v2"], "b_B": 0.0}
    (tmp_path / "ans.yaml").write_text("".join(f"{k}: {v!r}\n" for k, v in answers.items()))
    r = runner.invoke(app, ["diagnose", str(tmp_path / "ans.yaml")], env={"COLUMNS": columns})
    assert 1 == r.exit_code, r.output
    assert "C = 1/m" in r.stdout and "dL/dy'" in r.stdout
    assert all(len(ln) <= int(columns) for ln in r.stdout.splitlines())
    _assert_formulas_whole(r.stdout, FORMULAS)


@pytest.mark.parametrize("columns", ["80", "60"])
def test_the_network_summary_train_shows_never_breaks_the_loss_formula(columns, tmp_path):
    from bpcli.config.loader import builtin_config_dir
    r = runner.invoke(app, ["train", str(builtin_config_dir() / "xor.yaml"), "--epochs", "1", "--out",
                            str(tmp_path / "r")], env={"COLUMNS": columns})
    assert 0 == r.exit_code, r.output
    loss = "L = -(y * ln(y') + (1 - y) * ln(1 - y'))"
    assert loss in " ".join(r.stdout.split())
    _assert_formulas_whole(r.stdout, FORMULAS + [loss, "C = 1/m * sum_i L_i"])


@pytest.mark.parametrize("fmt", ["markdown", "latex"])
@pytest.mark.parametrize("size, activation", [("2-2-1", "sigmoid"), ("2-3-2-1", "relu"), ("3-3-2", "tanh")])
def test_exercise_sheets_wrap_at_80_columns_between_terms(fmt, size, activation):
    r = runner.invoke(app, ["exercise", "--size", size, "--activation", activation, "--format", fmt])
    assert 0 == r.exit_code, r.output
    assert all(len(ln) <= 80 for ln in r.stdout.splitlines()), r.stdout
    _assert_formulas_whole(r.stdout, FORMULAS)


def test_export_and_import_headers_wrap_between_terms(run, tmp_path):
    folder, _ = run
    for cfg in ("iris", "deep_relu"):  # long input names, a long size and activation list
        from bpcli.config.loader import builtin_config_dir
        r = runner.invoke(app, ["train", str(builtin_config_dir() / f"{cfg}.yaml"), "-q", "--epochs", "2",
                                "--out", str(tmp_path / cfg)])
        assert 0 == r.exit_code, r.output
    for src in (folder, tmp_path / "iris", tmp_path / "deep_relu"):
        for to, file in (("pytorch", "model.py"), ("numpy", "predict.py")):
            out = tmp_path / f"{src.name}-{to}"
            r = runner.invoke(app, ["export", str(src), "-o", str(out), "--to", to], env=COLS80)
            assert 0 == r.exit_code, r.output
            assert all(len(ln) <= 80 for ln in r.stdout.splitlines()), r.stdout
            text = (out / file).read_text()
            header = text.split('"""')[1]
            # a path longer than a line (pytest's tmp_path under xdist) stands alone on its line, unbroken
            assert all(len(ln) <= 79 or " " not in ln.strip() for ln in header.splitlines()), header
            _assert_formulas_whole(header, FORMULAS)
            cost = re.search(r'def cost.*?"""(.*?)"""', text, re.S)
            if cost:
                _assert_formulas_whole(cost.group(1), FORMULAS)
    np.savez(tmp_path / "state.npz", **{"0.weight": np.ones((4, 2)), "0.bias": np.zeros(4),
                                        "2.weight": np.ones((1, 4)), "2.bias": np.zeros(1)})
    r = runner.invoke(app, ["import", str(tmp_path / "state.npz"), "--arch", "2-4-1", "--activations",
                            "tanh,sigmoid", "--loss", "binary_cross_entropy", "--data", "xor", "-o",
                            str(tmp_path / "a-rather-long-name-for-the-imported-config.yaml")], env=COLS80)
    assert 0 == r.exit_code, r.output
    assert all(len(ln) <= 80 for ln in r.stdout.splitlines()), r.stdout
    head = [ln for ln in (tmp_path / "a-rather-long-name-for-the-imported-config.yaml").read_text().splitlines()
            if ln.startswith("#")]
    assert head and all(len(ln) <= 79 for ln in head), head


def test_wrap_fits_any_width_and_keeps_formulas_whole():
    from bpcli.prose import wrap
    text = ("you added the 4 samples' gradients without dividing by m: C = 1/m * sum_i L_i, so "
            "dC/dw = 1/m * sum_i dL_i/dw (factor 4); and `bpcli explain --weight v1` shows f(z) = 1 / (1 + e^(-z))")
    words = text.split()
    for width in range(32, 120):
        lines = wrap(text, width, indent="  ")
        assert words == " ".join(lines).split()  # nothing lost, nothing added
        assert all(len(ln) <= width for ln in lines), (width, lines)
        _assert_formulas_whole("\n".join(lines), FORMULAS + ["`bpcli explain --weight v1`"])
    for width in range(12, 19):  # too long for a line: broken before an operator, never after one or inside a term
        narrow = wrap("C = 1/m * sum_i L_i", width)
        assert all(len(ln) <= width for ln in narrow) and "C = 1/m * sum_i L_i".split() == " ".join(narrow).split()
        assert not any(ln.split()[-1] in OPS for ln in narrow), narrow
        assert any("sum_i L_i" in ln for ln in narrow), narrow


def test_the_command_list_never_cuts_a_long_summary():
    from bpcli.cli.group import BpcliGroup
    demo = typer.Typer(cls=BpcliGroup, rich_markup_mode=None)
    long = "Do something with a rather long summary that no eighty-column list can hold on one line at all."

    @demo.command()
    def first():
        """Do something with a rather long summary that no eighty-column list can hold on one line at all.

        More."""

    @demo.command()
    def second():
        """Short."""

    out = runner.invoke(demo, ["--help"], env=COLS80).stdout.split("Commands:")[1]
    assert long in " ".join(out.split()) and "..." not in out, out


def test_rich_prose_wraps_to_the_console_width_without_trailing_spaces():
    from rich.console import Console

    from bpcli.render.wrap import Prose
    buf = io.StringIO()
    Console(file=buf, width=40).print(Prose("so dC/dw = 1/m * sum_i dL_i/dw and C = 1/m * sum_i L_i here", indent=4))
    lines = buf.getvalue().splitlines()
    assert all(len(ln) <= 40 and ln == ln.rstrip() and ln.startswith("    ") for ln in lines), lines
    _assert_formulas_whole(buf.getvalue(), FORMULAS)
    assert 2 == len(lines)
