"""Rules with one owner (issue 23): each is checked in one place, with one message, whichever command asks."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from bpcli.cli import app
from bpcli.errors import ArgumentError, sample_row

runner = CliRunner()


@pytest.mark.parametrize("number", [0, -1, 5, 9])
def test_sample_range_is_one_message_for_every_command(tmp_path, number):
    answers = tmp_path / "answers.yaml"
    answers.write_text("v1: 0.1\n")
    expected = f"--sample: there is no sample {number}; the data has 4 samples, numbered from 1 to 4"
    for args in (["explain", "-w", "v1"], ["show"], ["diagnose", str(answers)]):
        r = runner.invoke(app, [*args, "--sample", str(number)])
        assert (2, expected) == (r.exit_code, r.stderr.strip().removeprefix("error: ")), args


def test_sample_row_counts_from_one_and_names_the_argument():
    assert 0 == sample_row(1, 4)
    assert 3 == sample_row(4, 4)
    with pytest.raises(ArgumentError) as err:
        sample_row(5, 4)
    assert "sample" == err.value.argument
    assert "sample: there is no sample 5; the data has 4 samples, numbered from 1 to 4" == str(err.value)
    with pytest.raises(ArgumentError, match="the data has 1 sample, numbered from 1 to 1"):
        sample_row(0, 1)
