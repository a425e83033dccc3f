"""Small chart helpers for server-rendered pages: plain functions, no drawing library."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Sparkline:
    """An inline SVG polyline of a series, oldest first: `points` goes into `<polyline points=...>`."""

    points: str
    width: int
    height: int
    first: int
    last: int
    low: int
    high: int

    @property
    def trend(self) -> str:
        """"up", "down" or "flat": the last value against the first, for the line's colour and its label."""
        if self.last > self.first:
            return "up"
        if self.last < self.first:
            return "down"
        return "flat"


def sparkline(values: Sequence[int], *, width: int = 120, height: int = 28, pad: int = 2) -> Sparkline | None:
    """Scale a series into a width x height box (y grows downwards in SVG); None for fewer than two values.

    >>> sparkline([10, 20, 15], width=100, height=20, pad=0).points
    '0.0,20.0 50.0,0.0 100.0,10.0'
    """
    if len(values) < 2:
        return None
    low, high = min(values), max(values)
    span = (high - low) or 1
    step = (width - 2 * pad) / (len(values) - 1)
    inner = height - 2 * pad
    points = []
    for index, value in enumerate(values):
        x = pad + index * step
        # A flat series sits in the middle rather than on the floor.
        y = pad + inner / 2 if high == low else pad + inner - (value - low) / span * inner
        points.append(f"{x:.1f},{y:.1f}")
    return Sparkline(" ".join(points), width, height, values[0], values[-1], low, high)
