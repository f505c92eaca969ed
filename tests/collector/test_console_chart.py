"""The overview's opt-in rate charts: the geometry is a pure function of the
counts (hypothesis), and the chart reads the same numbers as its table."""

from __future__ import annotations

from datetime import date

from hypothesis import given
from hypothesis import strategies as st

from collector.console import chart
from collector.storage.ports import OptInCount

DAYS = chart.window(date(2026, 11, 29), 30)


def test_window_is_thirty_days_ending_today() -> None:
    assert len(DAYS) == 30 and DAYS[-1] == "2026-11-29" and DAYS[0] == "2026-10-31"
    assert sorted(DAYS) == DAYS


@given(st.floats(min_value=-1, max_value=2, allow_nan=False))
def test_rates_stay_inside_the_plot(rate: float) -> None:
    y = chart.y_of(rate)
    assert chart.TOP <= y <= chart.HEIGHT - chart.BOTTOM
    assert chart.y_of(1.0) == chart.TOP and chart.y_of(0.0) == chart.HEIGHT - chart.BOTTOM


@given(st.floats(min_value=0, max_value=1), st.floats(min_value=0, max_value=1))
def test_a_higher_rate_is_drawn_higher(a: float, b: float) -> None:
    if a <= b:
        assert chart.y_of(a) >= chart.y_of(b)
    if b - a >= 1e-9:  # rates are counts over counts: never closer than that
        assert chart.y_of(a) > chart.y_of(b)


@given(st.integers(min_value=1, max_value=400))
def test_days_run_left_to_right_inside_the_plot(count: int) -> None:
    xs = [chart.x_of(i, count) for i in range(count)]
    assert all(chart.LEFT <= x <= chart.WIDTH - chart.RIGHT for x in xs)
    assert xs == sorted(xs) and len(set(xs)) == count


counts = st.lists(
    st.builds(
        lambda day, law, purpose, granted, extra: OptInCount(
            day, law, purpose, granted, granted + extra
        ),
        st.sampled_from([*DAYS, "2020-01-01"]),
        st.sampled_from(["GDPR", "CCPA", "PIPL"]),
        st.sampled_from(["analytics", "advertising", "necessary", "marketing"]),
        st.integers(min_value=0, max_value=1000),
        st.integers(min_value=0, max_value=1000),
    ),
    max_size=60,
)


@given(counts)
def test_every_point_is_the_rate_of_its_counts(found: list[OptInCount]) -> None:
    charts = chart.opt_in_charts(found, DAYS)
    for c in charts:
        assert all(line.purpose != "necessary" for line in c.lines)
        for line in c.lines:
            days_seen = [p.day for seg in line.segments for p in seg]
            assert days_seen == sorted(days_seen) and "2020-01-01" not in days_seen
            for seg in line.segments:
                # a segment is a run of consecutive days
                idx = [DAYS.index(p.day) for p in seg]
                assert idx == list(range(idx[0], idx[0] + len(idx)))
                for p in seg:
                    granted = sum(
                        f.granted
                        for f in found
                        if (f.day, f.law, f.purpose) == (p.day, c.law, line.purpose)
                    )
                    choices = sum(
                        f.choices
                        for f in found
                        if (f.day, f.law, f.purpose) == (p.day, c.law, line.purpose)
                    )
                    assert (p.granted, p.choices) == (granted, choices)
                    assert 0 <= p.rate <= 1 and p.rate == granted / choices
                    assert p.y == chart.y_of(p.rate)


def test_gaps_split_the_line_and_the_table_matches() -> None:
    found = [
        OptInCount(DAYS[0], "GDPR", "analytics", 3, 4),
        OptInCount(DAYS[1], "GDPR", "analytics", 1, 4),
        OptInCount(DAYS[5], "GDPR", "analytics", 0, 2),
        OptInCount(DAYS[5], "GDPR", "advertising", 1, 1),
    ]
    (gdpr,) = chart.opt_in_charts(found, DAYS)
    advertising, analytics = gdpr.lines
    assert advertising.segments[0][0].rate == 1.0
    assert analytics.purpose == "analytics" and len(analytics.segments) == 2
    assert len(analytics.paths()) == 2 and analytics.paths()[0].count(" L ") == 1
    assert gdpr.choices == 11
    assert gdpr.table() == [
        (DAYS[0], ["—", "75% of 4"]),
        (DAYS[1], ["—", "25% of 4"]),
        (DAYS[5], ["100% of 1", "0% of 2"]),
    ]
    assert [(day, anchor) for _, day, anchor in gdpr.x_ticks] == [
        (DAYS[0], "start"),
        (DAYS[15], "middle"),
        (DAYS[29], "end"),
    ]
