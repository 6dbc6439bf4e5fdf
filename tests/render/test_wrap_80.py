"""Values wrapped at 80 columns break at spaces, or after a '/' or '_' in a long word, never inside a word or a
number: break_lines itself, and train's run folder in its panel."""

from __future__ import annotations

from typer.testing import CliRunner

from bpcli.cli.app import app
from bpcli.render.wrap import break_lines

runner = CliRunner()


def test_break_lines_breaks_at_spaces_and_a_long_word_after_a_slash_or_underscore():
    assert ["squared_error"] == break_lines("squared_error", 13)
    assert ["squared_", "error"] == break_lines("squared_error", 12)  # longer than a line: after its '_'
    assert ["a bb", "ccc"] == break_lines("a bb ccc", 5)
    assert ["/tmp/", "runs/", "seed"] == break_lines("/tmp/runs/seed", 6)
    assert ["/tmp/", "a_b_c/", "d_e"] == break_lines("/tmp/a_b_c/d_e", 8)  # a path at its folders first
    assert ["/tmp/", "a_b_", "c/d_e"] == break_lines("/tmp/a_b_c/d_e", 5)  # a folder wider than a line: after "_"
    assert ["1.23456e-05 and", "0.001"] == break_lines("1.23456e-05 and 0.001", 15)  # numbers whole
    assert ["abcdefgh"] == break_lines("abcdefgh", 3)  # no break point: one line, wider than asked
    assert ["squared_error"] == break_lines("squared_error", 10, whole=22)  # a short word stays whole


def test_trains_run_folder_wraps_after_a_slash_at_80_columns(tmp_path):
    folder = tmp_path / "a_rather_long_folder_name_for_the_runs_of_this_test" / "seed_with_a_long_run_name"
    res = runner.invoke(app, ["train", "--epochs", "2", "--out", str(folder)], env={"COLUMNS": "80"})
    assert 0 == res.exit_code, res.output
    lines = res.stdout.splitlines()
    assert all(len(ln) <= 80 for ln in lines if ln.startswith(("│", "╭", "╰")))  # the panel
    k = next(k for k, ln in enumerate(lines) if "run folder" in ln)
    parts = [lines[k].strip("│ ").removeprefix("run folder").strip()]
    for ln in lines[k + 1:]:
        cell = ln.strip("│ ")
        if not cell or cell.startswith("╰"):
            break
        parts.append(cell)
    assert str(folder) == "".join(parts), parts
    assert len(parts) > 1 and all(p.endswith("/") for p in parts[:-1]), parts


def test_compares_legend_wraps_a_long_run_folder_after_a_slash_at_80_columns(tmp_path):
    base = tmp_path / "a_rather_long_folder_name_for_the_runs_of_this_test"
    for name in ("first_run_with_a_long_name", "second_run_with_a_long_name"):
        assert 0 == runner.invoke(app, ["train", "--epochs", "2", "--out", str(base / name), "-q"]).exit_code
    res = runner.invoke(app, ["compare", str(base / "first_run_with_a_long_name"),
                              str(base / "second_run_with_a_long_name")], env={"COLUMNS": "80"})
    assert 0 == res.exit_code, res.output
    lines = res.stdout.splitlines()
    assert all(len(ln) <= 80 for ln in lines) and "…" not in res.stdout
    k = next(k for k, ln in enumerate(lines) if ln.startswith("1 "))
    end = next(j for j in range(k + 1, len(lines)) if lines[j].startswith("2 "))
    parts = [lines[k][1:].strip()] + [ln.strip() for ln in lines[k + 1:end]]
    assert f"{base / 'first_run_with_a_long_name'} (seed)" == "".join(parts).replace("name(", "name ("), parts
    assert len(parts) > 1 and all(p.endswith("/") for p in parts[:-1]), parts
