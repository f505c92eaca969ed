"""Opt-in rate charts for the overview page, drawn on the server as SVG.

``opt_in_charts(counts, days)`` turns per-day counts of consent choices
(``OptInCount``: day, law, purpose, how many said yes, how many chose) into
one ``Chart`` per law: a line per purpose over the days, the opt-in rate
(yes / choices, 0..1) on the y axis. A day without any choice for a purpose
leaves a gap in its line rather than a made-up zero. The template draws the
geometry computed here (no JavaScript, no library in the browser) and adds
the same numbers as a table for screen readers. Pure; no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta

from collector.storage.ports import OptInCount

WIDTH, HEIGHT = 640, 240
LEFT, RIGHT, TOP, BOTTOM = 48, 16, 16, 32
# Colour and dash per line, so lines differ without colour too (WCAG 1.4.1);
# colours keep 3:1 contrast against white (WCAG 1.4.11).
STYLES = (
    ("#1d3557", ""),
    ("#b5179e", "6 3"),
    ("#2a7f3f", "2 3"),
    ("#c2410c", "10 3 2 3"),
    ("#6d28d9", "1 5"),
)


@dataclass(frozen=True, slots=True)
class Point:
    x: float
    y: float
    day: str
    rate: float
    granted: int
    choices: int


@dataclass(frozen=True, slots=True)
class Line:
    purpose: str
    colour: str
    dash: str
    segments: list[list[Point]]  # runs of consecutive days with choices

    def paths(self) -> list[str]:
        """SVG path data, one per segment (``M x,y L x,y ...``)."""
        return [
            "M " + " L ".join(f"{p.x:.1f},{p.y:.1f}" for p in segment) for segment in self.segments
        ]


@dataclass(frozen=True, slots=True)
class Chart:
    law: str
    days: list[str]
    lines: list[Line]
    x_ticks: list[tuple[float, str, str]]  # (x, day, SVG text-anchor)
    y_ticks: list[tuple[float, str]] = field(default_factory=list)
    choices: int = 0

    def table(self) -> list[tuple[str, list[str]]]:
        """(day, per purpose "73% of 41" or "no choices"), for the data table."""
        by_day: dict[str, dict[str, Point]] = {}
        for line in self.lines:
            for segment in line.segments:
                for p in segment:
                    by_day.setdefault(p.day, {})[line.purpose] = p
        rows = []
        for day in self.days:
            found = by_day.get(day, {})
            if not found:
                continue
            cells = [_cell(found.get(line.purpose)) for line in self.lines]
            rows.append((day, cells))
        return rows


def _cell(point: Point | None) -> str:
    return "—" if point is None else f"{round(point.rate * 100)}% of {point.choices}"


def _anchor(index: int, count: int) -> str:
    """Labels at the ends align inwards so they stay inside the picture."""
    if count > 1 and index == 0:
        return "start"
    if count > 1 and index == count - 1:
        return "end"
    return "middle"


def window(today: date, days: int = 30) -> list[str]:
    """The `days` calendar days ending with `today`, oldest first, as ISO dates."""
    return [(today - timedelta(days=n)).isoformat() for n in range(days - 1, -1, -1)]


def x_of(index: int, count: int) -> float:
    """The x coordinate of day `index` of `count` (first at the left edge of
    the plot, last at the right; a single day in the middle)."""
    span = WIDTH - LEFT - RIGHT
    if count <= 1:
        return LEFT + span / 2
    return LEFT + span * index / (count - 1)


def y_of(rate: float) -> float:
    """The y coordinate of an opt-in rate (0 at the bottom, 1 at the top;
    clamped to 0..1)."""
    rate = min(1.0, max(0.0, rate))
    return TOP + (HEIGHT - TOP - BOTTOM) * (1.0 - rate)


def opt_in_charts(
    counts: Iterable[OptInCount], days: Sequence[str], *, skip: Iterable[str] = ("necessary",)
) -> list[Chart]:
    """One chart per law, its lines ordered by purpose name; counts for days
    outside `days` and purposes in `skip` are left out."""
    index = {d: i for i, d in enumerate(days)}
    skipped = set(skip)
    table: dict[str, dict[str, dict[int, tuple[int, int]]]] = {}
    for c in counts:
        if c.day not in index or c.purpose in skipped or c.choices <= 0:
            continue
        per_day = table.setdefault(c.law, {}).setdefault(c.purpose, {})
        granted, choices = per_day.get(index[c.day], (0, 0))
        per_day[index[c.day]] = (granted + c.granted, choices + c.choices)
    charts = []
    for law in sorted(table):
        lines = []
        total = 0
        for n, purpose in enumerate(sorted(table[law])):
            colour, dash = STYLES[n % len(STYLES)]
            segments: list[list[Point]] = []
            previous = -2
            for i in sorted(table[law][purpose]):
                granted, choices = table[law][purpose][i]
                total += choices
                rate = granted / choices
                point = Point(x_of(i, len(days)), y_of(rate), days[i], rate, granted, choices)
                if i != previous + 1:
                    segments.append([])
                segments[-1].append(point)
                previous = i
            lines.append(Line(purpose, colour, dash, segments))
        ticks = sorted({0, len(days) // 2, len(days) - 1}) if days else []
        charts.append(
            Chart(
                law=law,
                days=list(days),
                lines=lines,
                x_ticks=[(x_of(i, len(days)), days[i], _anchor(i, len(days))) for i in ticks],
                y_ticks=[(y_of(r), f"{round(r * 100)}%") for r in (0.0, 0.5, 1.0)],
                choices=total,
            )
        )
    return charts
