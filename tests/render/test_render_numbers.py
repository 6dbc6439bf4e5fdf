"""What the summary draws: the loss sparkline ends on the last value."""

from __future__ import annotations

from bpcli.render.numbers import SPARK, sparkline


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


def test_a_value_that_only_rounds_to_a_whole_number_gets_the_digits_to_show_it():
    from bpcli.render.numbers import fmt
    assert fmt(0.99995) == "0.99995"  # six digits: 0.99995 is not 1
    assert fmt(0.99999997) == "0.99999997"  # at six digits it would read 1: a certain-looking probability
    assert fmt(1 - 2**-53) == "0.9999999999999999"
    assert fmt(10.00000004) == "10.00000004"  # an update too small for six digits: not shown as x - tiny = x
    assert fmt(1.0) == "1" and fmt(0.5) == "0.5" and fmt(0.123456789) == "0.123457"
