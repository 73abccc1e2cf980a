"""MAVLink telemetry (PX4, ArduPilot) from a telemetry log (.tlog), read with pymavlink.

A .tlog is what ground stations (QGroundControl, Mission Planner) record: each
MAVLink packet prefixed by its receive time. Positions come from GLOBAL_POSITION_INT
(lat/lon in 1e-7 degrees, altitudes in mm, heading in centidegrees, velocities in cm/s),
battery from SYS_STATUS. Video time 0 is the first position unless `start` is given.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from pathlib import Path

from pymavlink import mavutil

from ingest.telemetry_track import TelemetryPoint, TelemetryTrack


class MavlinkLogError(ValueError):
    pass


def load_tlog(path: Path, start: datetime | None = None) -> TelemetryTrack:
    if not path.is_file():
        raise MavlinkLogError(f"telemetry log not found: {path}")
    log = mavutil.mavlink_connection(str(path), dialect="common")
    points: list[TelemetryPoint] = []
    battery: float | None = None
    origin = start.timestamp() if start else None
    try:
        while True:
            message = log.recv_match(type=["GLOBAL_POSITION_INT", "SYS_STATUS"], blocking=False)
            if message is None:
                break
            if message.get_type() == "SYS_STATUS":
                battery = None if message.battery_remaining < 0 else float(message.battery_remaining)
                continue
            stamp = float(message._timestamp)
            origin = stamp if origin is None else origin
            heading = None if message.hdg == 65535 else message.hdg / 100
            points.append(TelemetryPoint(
                t=stamp - origin, lat=message.lat / 1e7, lon=message.lon / 1e7,
                time=datetime.fromtimestamp(stamp, UTC), altitude_m=message.alt / 1000,
                relative_altitude_m=message.relative_alt / 1000, heading_deg=heading,
                speed_m_s=math.hypot(message.vx, message.vy) / 100, battery_pct=battery,
            ))
    finally:
        log.close()
    if not points:
        raise MavlinkLogError(f"{path.name}: no GLOBAL_POSITION_INT messages")
    return TelemetryTrack(points)
