"""DJI flight telemetry from the `.SRT` subtitle file a DJI drone writes beside each video.

Two real layouts are read:
- bracketed (Mavic 3, Air 2S, Mini 3/4 ...):
    FrameCnt: 1, DiffTime: 33ms
    2023-05-12 14:32:10.123
    [iso: 100] [shutter: 1/1000.0] [fnum: 2.8] ... [latitude: 51.507351] [longitude: -0.127758]
    [rel_alt: 50.300 abs_alt: 120.500] [gb_yaw: 45.2 gb_pitch: -30.0 gb_roll: 0.0]
- older (Phantom 4, Mavic Pro/2):
    HOME(149.0251,-20.2532) 2020.06.12 09:51:40
    GPS(149.0251,-20.2532,19) BAROMETER:1.9
Each subtitle's start time is the video time of its frame. A block that cannot be read
is an error naming the block, not a silently missing point.
"""

from __future__ import annotations

import math
import re
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from ingest.telemetry_track import TelemetryPoint, TelemetryTrack

_TIMING = re.compile(r"(\d+):(\d+):(\d+)[,.](\d+)\s*-->")
_FIELD = re.compile(r"\[?\b([a-z_]+)\s*:\s*(-?[\d.]+)(?![\w.])")  # 1e999 is no number here
_STAMP = re.compile(r"(\d{4})[-.](\d{2})[-.](\d{2})\s+(\d{2}):(\d{2}):(\d{2})(?:[.,](\d+))?")
_OLD_GPS = re.compile(r"GPS\((-?[\d.]+),\s*(-?[\d.]+),\s*(-?[\d.]+)\)")
_BARO = re.compile(r"BAROMETER:\s*(-?[\d.]+)")


class SrtError(ValueError):
    pass


def parse_srt(text: str, timezone: str = "UTC") -> TelemetryTrack:
    """DJI records local time without a zone: pass the flight's time zone."""
    tz = ZoneInfo(timezone)
    points = []
    for block in re.split(r"\r?\n\s*\r?\n", text.strip()):
        lines = [line.strip() for line in block.splitlines() if line.strip()]
        if not lines:
            continue
        timing = next((_TIMING.search(line) for line in lines if _TIMING.search(line)), None)
        if timing is None:
            raise SrtError(f"subtitle {lines[0]!r}: no timing line")
        h, m, s, ms = (int(g) for g in timing.groups())
        t = h * 3600 + m * 60 + s + ms / 1000
        body = " ".join(lines[2:]) if len(lines) > 2 else ""
        point = _bracketed(body, t, tz) or _older(body, t, tz)
        if point is None:
            raise SrtError(f"subtitle {lines[0]!r} at {t:.3f} s: no GPS position")
        if point.lat == 0 and point.lon == 0:
            continue  # DJI writes 0, 0 until the GPS has a fix
        _check(point, lines[0])
        points.append(point)
    if not points:
        raise SrtError("no subtitles with telemetry")
    return TelemetryTrack(points)


def _check(point: TelemetryPoint, subtitle: str) -> None:
    numbers = [point.lat, point.lon, point.altitude_m, point.relative_altitude_m, point.heading_deg]
    if not all(math.isfinite(n) for n in numbers if n is not None):
        raise SrtError(f"subtitle {subtitle!r}: a value is not a finite number")
    if not (-90 <= point.lat <= 90 and -180 <= point.lon <= 180):
        raise SrtError(f"subtitle {subtitle!r}: position {point.lat}, {point.lon} is not on Earth")


def _time(body: str, tz: ZoneInfo) -> datetime | None:
    match = _STAMP.search(body)
    if match is None:
        return None
    year, month, day, hour, minute, second, fraction = match.groups()
    micro = int((fraction or "0").ljust(6, "0")[:6])
    return datetime(int(year), int(month), int(day), int(hour), int(minute), int(second), micro, tzinfo=tz)


def _bracketed(body: str, t: float, tz: ZoneInfo) -> TelemetryPoint | None:
    fields = {k: float(v) for k, v in _FIELD.findall(body)}
    if "latitude" not in fields or "longitude" not in fields:
        return None
    heading = fields.get("gb_yaw", fields.get("drone_yaw"))
    return TelemetryPoint(
        t=t, lat=fields["latitude"], lon=fields["longitude"], time=_time(body, tz),
        altitude_m=fields.get("abs_alt"), relative_altitude_m=fields.get("rel_alt"),
        heading_deg=heading % 360 if heading is not None else None,
    )


def _older(body: str, t: float, tz: ZoneInfo) -> TelemetryPoint | None:
    gps = _OLD_GPS.search(body)
    if gps is None:
        return None
    # DJI writes GPS(lon, lat, x); x is GPS altitude or a satellite count depending on the model,
    # so the barometric altitude is the one used.
    lon, lat, _ = (float(g) for g in gps.groups())
    baro = _BARO.search(body)
    return TelemetryPoint(t=t, lat=lat, lon=lon, time=_time(body, tz),
                          relative_altitude_m=float(baro.group(1)) if baro else None)


def load_srt(path: Path, timezone: str = "UTC") -> TelemetryTrack:
    try:
        return parse_srt(path.read_text(encoding="utf-8-sig"), timezone)
    except SrtError as exc:
        raise SrtError(f"{path.name}: {exc}") from exc
    except (UnicodeDecodeError, ValueError) as exc:
        raise SrtError(f"{path.name}: not a DJI subtitle file ({exc})") from exc
