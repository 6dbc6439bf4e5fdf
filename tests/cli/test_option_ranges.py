"""An option's range is checked in one place: every command that takes it says the same line, exit 2."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from bpcli.cli.app import app

runner = CliRunner()


def _refusal(args: list[str]) -> tuple[int, str, str]:
    r = runner.invoke(app, args)
    return r.exit_code, r.stdout, r.stderr


@pytest.mark.parametrize("dpi", ["9", "601"])
def test_dpi_of_a_picture_is_one_message_for_plot_and_compare(tmp_path, dpi):
    expected = (2, "", f"error: --dpi: must be between 10 and 600, found {dpi}\n")
    # checked before any run is read: the run folders need not exist
    assert expected == _refusal(["plot", str(tmp_path / "r"), "--dpi", dpi])
    assert expected == _refusal(["compare", str(tmp_path / "a"), str(tmp_path / "b"), "--dpi", dpi])


@pytest.mark.parametrize("args", [["gradcheck"], ["step"]])
def test_rows_below_zero_is_one_message_for_gradcheck_and_step(args):
    expected = (2, "", "error: --rows: must be 0 or more, found -1\n")
    assert expected == _refusal([*args, "--rows", "-1"])


@pytest.mark.parametrize("option, value, lo, hi", [
    ("--frames", "0", 1, 1000), ("--fps", "61", 1, 60), ("--dpi", "19", 20, 300), ("--dpi", "301", 20, 300),
])
def test_animate_states_its_own_ranges_in_the_same_words(tmp_path, option, value, lo, hi):
    expected = (2, "", f"error: {option}: must be between {lo} and {hi}, found {value}\n")
    assert expected == _refusal(["animate", str(tmp_path / "r"), option, value])
