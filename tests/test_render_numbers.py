"""What the summary draws: the loss sparkline ends on the last value."""

from __future__ import annotations

from bpcli.render import SPARK, sparkline


def test_sparkline_shows_the_last_value():
    """A loss flat at 100 that falls to 1 in the last epoch: the curve must end on its lowest block."""
    line = sparkline([100.0] * 999 + [1.0], width=40)
    assert len(line) == 40
    assert line[-1] == SPARK[0]
    assert set(line[:-1]) == {SPARK[-1]}


def test_sparkline_keeps_the_first_value_and_short_series_whole():
    line = sparkline([1.0] + [100.0] * 999, width=40)
    assert line[0] == SPARK[0] and set(line[1:]) == {SPARK[-1]}
    # three values a decade apart on a log scale: top, middle, bottom
    assert sparkline([10.0, 1.0, 0.1], width=40) == SPARK[-1] + SPARK[4] + SPARK[0]  # 0.5 * 7 rounds up to 4
