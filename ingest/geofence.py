"""Mission geofences: polygons a drone must stay inside; leaving (or re-entering) is an event.

Point-in-polygon by ray casting on lon/lat, which is exact enough for the few-km
polygons of a city mission (no fence crosses the antimeridian or a pole).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from ingest.events import GeofenceEvent, GeoPoint


@dataclass(frozen=True)
class Geofence:
    name: str
    polygon: tuple[tuple[float, float], ...]  # (lat, lon) vertices

    def __post_init__(self) -> None:
        if len(self.polygon) < 3:
            raise ValueError(f"geofence {self.name!r} needs at least 3 points")

    def contains(self, lat: float, lon: float) -> bool:
        inside = False
        points = self.polygon
        for (lat_a, lon_a), (lat_b, lon_b) in zip(points, points[1:] + points[:1], strict=True):
            if (lat_a > lat) != (lat_b > lat):
                crossing = lon_a + (lat - lat_a) * (lon_b - lon_a) / (lat_b - lat_a)
                if lon < crossing:
                    inside = not inside
        return inside


@dataclass
class GeofenceMonitor:
    """Reports transitions only: one event when the drone leaves, one when it is back."""

    fences: list[Geofence]
    _inside: dict[str, bool] = field(default_factory=dict)

    def observe(self, source_id: str, time: datetime, lat: float, lon: float) -> list[GeofenceEvent]:
        events = []
        for fence in self.fences:
            inside = fence.contains(lat, lon)
            before = self._inside.get(fence.name, True)  # a mission starts inside its fences
            self._inside[fence.name] = inside
            if inside != before:
                events.append(GeofenceEvent(source_id=source_id, time=time, fence=fence.name, inside=inside,
                                            position=GeoPoint(lat=lat, lon=lon)))
        return events
