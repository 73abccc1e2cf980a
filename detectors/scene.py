"""A camera's scene geometry in frame pixels: zones, counting lines, ground scale."""

from __future__ import annotations

from dataclasses import dataclass, field

Point = tuple[float, float]


@dataclass(frozen=True)
class SceneSpec:
    zones: dict[str, tuple[Point, ...]] = field(default_factory=dict)
    lines: dict[str, tuple[Point, Point]] = field(default_factory=dict)
    m_per_px: float | None = None  # ground-plane scale, for speeds in m/s


def in_polygon(point: Point, polygon: tuple[Point, ...]) -> bool:
    x, y = point
    inside = False
    for (x1, y1), (x2, y2) in zip(polygon, polygon[1:] + polygon[:1], strict=True):
        if (y1 > y) != (y2 > y) and x < x1 + (y - y1) * (x2 - x1) / (y2 - y1):
            inside = not inside
    return inside


def side_of(line: tuple[Point, Point], point: Point) -> float:
    """< 0 left of the line, > 0 right, seen from its first point towards the second, in image
    coordinates (y grows downwards, which mirrors the usual mathematical orientation)."""
    (ax, ay), (bx, by) = line
    return (bx - ax) * (point[1] - ay) - (by - ay) * (point[0] - ax)


def segments_cross(line: tuple[Point, Point], p: Point, q: Point) -> bool:
    """Whether the move p -> q crosses the line segment (not just its extension)."""
    d1, d2 = side_of(line, p), side_of(line, q)
    if d1 == 0 or d2 == 0 or (d1 > 0) == (d2 > 0):
        return False
    d3, d4 = side_of((p, q), line[0]), side_of((p, q), line[1])
    return (d3 > 0) != (d4 > 0)
