"""A drone's telemetry as a time series, interpolated to any moment (a frame's capture time).

Telemetry arrives at its own rate (DJI SRT: per video frame; MAVLink: 4-10 Hz), frames
at theirs; tagging a frame with the nearest point would misplace a drone flying 15 m/s
by metres. Positions and altitudes interpolate linearly, headings along the shorter arc.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, replace
from datetime import datetime, timedelta


@dataclass(frozen=True)
class TelemetryPoint:
    t: float  # seconds from the start of the recording (video time)
    lat: float
    lon: float
    time: datetime | None = None  # absolute time, when the source records it
    altitude_m: float | None = None
    relative_altitude_m: float | None = None
    heading_deg: float | None = None
    speed_m_s: float | None = None
    battery_pct: float | None = None


def _lerp(a: float | None, b: float | None, f: float) -> float | None:
    if a is None or b is None:
        return a if f < 0.5 else b
    return a + (b - a) * f


def _heading(a: float | None, b: float | None, f: float) -> float | None:
    if a is None or b is None:
        return a if f < 0.5 else b
    delta = (b - a + 540) % 360 - 180
    return (a + delta * f) % 360


class TelemetryTrack:
    def __init__(self, points: list[TelemetryPoint]) -> None:
        if not points:
            raise ValueError("a telemetry track needs at least one point")
        self.points = sorted(points, key=lambda p: p.t)
        self._times = [p.t for p in self.points]

    @property
    def duration_s(self) -> float:
        return self.points[-1].t - self.points[0].t

    def at(self, t: float) -> TelemetryPoint:
        """The interpolated point at video time `t` (clamped to the track's ends)."""
        index = bisect.bisect_right(self._times, t)
        if index == 0:
            return replace(self.points[0], t=t)
        if index == len(self.points):
            return replace(self.points[-1], t=t)
        a, b = self.points[index - 1], self.points[index]
        f = 0.0 if b.t == a.t else (t - a.t) / (b.t - a.t)
        time = a.time + timedelta(seconds=t - a.t) if a.time is not None else None
        return TelemetryPoint(
            t=t, lat=a.lat + (b.lat - a.lat) * f, lon=a.lon + (b.lon - a.lon) * f, time=time,
            altitude_m=_lerp(a.altitude_m, b.altitude_m, f),
            relative_altitude_m=_lerp(a.relative_altitude_m, b.relative_altitude_m, f),
            heading_deg=_heading(a.heading_deg, b.heading_deg, f),
            speed_m_s=_lerp(a.speed_m_s, b.speed_m_s, f),
            battery_pct=_lerp(a.battery_pct, b.battery_pct, f),
        )
