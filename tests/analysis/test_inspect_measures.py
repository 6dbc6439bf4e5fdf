"""bpcli inspect labels each ratio it prints: the table's at the last epoch, a finding's as a median."""

from __future__ import annotations

import json
import re
import statistics

import pytest
from typer.testing import CliRunner

from bpcli.cli.app import app

from tests.conftest import read_history, train_shipped

runner = CliRunner()


@pytest.fixture(scope="module")
def deep_sigmoid(tmp_path_factory):
    return train_shipped(tmp_path_factory.mktemp("inspect"), "deep_sigmoid", 150)


def _near(shown: str, r: float) -> bool:
    """'1/3900' agrees with r to its two significant digits."""
    inv = float(shown.split("/")[1])
    return abs(1 / r - inv) <= 0.05 * inv


def test_table_ratio_is_labelled_last_epoch_and_equals_it(deep_sigmoid):
    hist = read_history(deep_sigmoid)
    last = hist[-1]
    expected = last["grad_norm"][0] / last["grad_norm"][-1]  # layer A / output layer G at the last epoch
    text = runner.invoke(app, ["inspect", str(deep_sigmoid)], env={"COLUMNS": "120"}).stdout
    head = text[:text.index("A sigmoid")]
    assert f"at {last['epoch']}" in head.splitlines()[-3] + head.splitlines()[-2]
    row = next(line for line in text.splitlines() if line.strip().startswith("A sigmoid"))
    shown = row.split()[4]
    assert _near(shown, expected), (shown, expected)


def test_finding_ratio_is_labelled_median_and_equals_it(deep_sigmoid):
    hist = read_history(deep_sigmoid)
    ratios = [h["grad_norm"][0] / h["grad_norm"][-1] for h in hist]
    first = next(i for i, r in enumerate(ratios) if r < 0.01)
    held = [r for r in ratios[first:] if r < 0.01]
    expected = statistics.median(held)
    since = len(ratios) - first
    text = runner.invoke(app, ["inspect", str(deep_sigmoid)], env={"COLUMNS": "300"}).stdout
    line = next(line for line in text.splitlines() if line.startswith("- layer A: gradient"))
    m = re.search(r"gradient (1/\d+) of output layer G's from epoch (\d+) \(median over the (\d+) of (\d+) epochs "
                  r"it held\)", line)
    assert m, line
    assert _near(m.group(1), expected), (m.group(1), expected)
    assert (int(m.group(2)), int(m.group(3)), int(m.group(4))) == (first + 1, len(held), since)
    data = json.loads(runner.invoke(app, ["inspect", str(deep_sigmoid), "--json"]).stdout)
    found = next(f for f in data["findings"] if f["layer"] == "A")
    assert found["value"] == pytest.approx(expected, rel=1e-12)
    assert found["measure"] == f"median over the {len(held)} of {since} epochs it held"
    layer = next(la for la in data["layers"] if la["layer"] == "A")
    assert layer["grad_norm"]["vs_output"] == pytest.approx(hist[-1]["grad_norm"][0] / hist[-1]["grad_norm"][-1],
                                                          rel=1e-12)
