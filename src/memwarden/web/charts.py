"""Small charts drawn on the server: the geometry here, the SVG in ``templates/_charts.html``
(autoescaped like every template, so a label can never become markup)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

WIDTH = 640
HEIGHT = 160
LEFT = 40  # room for the y-axis labels
BOTTOM = 20  # room for the x-axis labels
TOP = 10


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    label: str
    value: float


@dataclass(frozen=True)
class BarChart:
    bars: list[Bar]
    peak: float  # the value at the top of the y axis
    ticks: list[tuple[float, str]]  # (x, label) under the bars
    width: int = WIDTH
    height: int = HEIGHT
    left: int = LEFT
    top: int = TOP
    base: float = HEIGHT - BOTTOM

    @property
    def empty(self) -> bool:
        return not self.bars or self.peak <= 0


@dataclass(frozen=True)
class Point:
    x: float
    y: float
    label: str
    value: float


@dataclass(frozen=True)
class LineChart:
    points: list[Point]
    threshold_y: float | None
    threshold: float | None
    width: int = WIDTH
    height: int = HEIGHT
    left: int = LEFT
    top: int = TOP
    base: float = HEIGHT - BOTTOM

    @property
    def polyline(self) -> str:
        return " ".join(f"{p.x:.1f},{p.y:.1f}" for p in self.points)


def _tick_indexes(count: int, wanted: int = 5) -> list[int]:
    if count <= wanted:
        return list(range(count))
    step = (count - 1) / (wanted - 1)
    return sorted({round(i * step) for i in range(wanted)})


def bars(values: Sequence[tuple[str, float]]) -> BarChart:
    """One bar per (label, value), scaled to the largest value."""
    plot_width = WIDTH - LEFT - 10
    plot_height = HEIGHT - BOTTOM - TOP
    peak = max((v for _, v in values), default=0.0)
    slot = plot_width / max(1, len(values))
    drawn = []
    for index, (label, value) in enumerate(values):
        height = plot_height * value / peak if peak > 0 else 0.0
        drawn.append(
            Bar(
                x=LEFT + index * slot + slot * 0.1,
                y=HEIGHT - BOTTOM - height,
                width=slot * 0.8,
                height=height,
                label=label,
                value=value,
            )
        )
    ticks = [(drawn[i].x + drawn[i].width / 2, drawn[i].label) for i in _tick_indexes(len(drawn))]
    return BarChart(drawn, peak, ticks)


def line(values: Sequence[tuple[str, float]], threshold: float | None = None) -> LineChart:
    """Points for values between 0 and 1 (a rate), left to right, with a threshold line."""
    plot_width = WIDTH - LEFT - 10
    plot_height = HEIGHT - BOTTOM - TOP

    def y_of(value: float) -> float:
        return HEIGHT - BOTTOM - plot_height * min(max(value, 0.0), 1.0)

    step = plot_width / max(1, len(values) - 1)
    points = [
        Point(LEFT + (i * step if len(values) > 1 else plot_width / 2), y_of(v), label, v)
        for i, (label, v) in enumerate(values)
    ]
    return LineChart(points, y_of(threshold) if threshold is not None else None, threshold)
