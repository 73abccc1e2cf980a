"""Distances and polygons on the Earth, small enough for a city: haversine and ray casting."""

from __future__ import annotations

import math
from collections.abc import Sequence

EARTH_RADIUS_M = 6_371_008.8

LatLon = tuple[float, float]


def distance_m(a: LatLon, b: LatLon) -> float:
    """Great-circle distance in metres (haversine; under 0.5 % error at city scale)."""
    lat1, lon1, lat2, lon2 = map(math.radians, (a[0], a[1], b[0], b[1]))
    h = math.sin((lat2 - lat1) / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(h)))


def inside(point: LatLon, polygon: Sequence[LatLon]) -> bool:
    """Ray casting on (lat, lon); fine for polygons that do not straddle the antimeridian."""
    lat, lon = point
    result = False
    for (lat1, lon1), (lat2, lon2) in zip(polygon, [*polygon[1:], polygon[0]], strict=True):
        if (lon1 > lon) != (lon2 > lon):
            crossing_lat = lat1 + (lon - lon1) * (lat2 - lat1) / (lon2 - lon1)
            if lat < crossing_lat:
                result = not result
    return result
