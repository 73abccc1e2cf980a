"""DJI flight telemetry from the `.SRT` subtitle file a DJI aircraft writes beside each video.

One subtitle per frame (or second): its start is the frame's video time, its text what the
aircraft knew then. DJI has shipped several layouts across aircraft and firmware; each is
read by what it says, not by which model wrote it:
- bracketed key/value (Mavic 2/3, Air 2S, Mini 2-4, Matrice 30/300, Phantom 4 Pro v2 ...):
    2023-05-12 14:32:10.123   (or 2021-03-14 14:34:20,384,165: milliseconds, microseconds)
    [iso : 100] [latitude: 51.507351] [longitude: -0.127758] [rel_alt: 50.300 abs_alt: 120.500]
  with `longtitude` (DJI's spelling in several firmwares), spaces on either side of the
  colon, one `altitude` instead of rel/abs, and the heading as `gb_yaw`, `drone_yaw` or
  `[Drone: Yaw:1.9, Pitch:-3.1, Roll:1.5]`;
- DJI GO (Phantom 3/4, Inspire 1):
    HOME(149.0251,-20.2532) 2017.08.05 14:11:51
    GPS(149.0251,-20.2532,19) BAROMETER:1.9
  the tuple is (longitude, latitude, satellites): the height is the barometer's;
- DJI GO 4 (Mavic Pro, Spark):
    F/2.8, SS 1000, ISO 100, EV 0, GPS (-81.3712, 41.3401, 19), D 24.50m, H 60.00m, H.S 0.00m/s
  a tuple with spaces, height `H`, horizontal speed `H.S`, and no clock at all.

A subtitle without a position (no fix yet: `GPS(N/A,N/A,3)`, 0/0, or no GPS in its layout)
is skipped and counted, never fatal. Times are local, in the zone the settings name; a
subtitle without a clock of its own takes the flight's clock (the median offset between the
other subtitles' clocks and their video times), and a file with no clock anywhere needs the
flight's start time in the settings: it is an error, never the wall clock.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo

from ingest.telemetry_track import TelemetryPoint, TelemetryTrack

_TIMING = re.compile(r"(\d+):(\d+):(\d+)[,.](\d+)\s*-->")
_TAG = re.compile(r"</?font[^>]*>", re.IGNORECASE)
_NUMBER = r"[-+]?(?:\d+\.?\d*|\.\d+)"
_KEYED = re.compile(rf"\b([A-Za-z_]+)\s*:\s*({_NUMBER})(?![\w.])")
_STAMP = re.compile(r"(\d{4})[-./](\d{1,2})[-./](\d{1,2})[ T]+(\d{1,2}):(\d{2}):(\d{2})"
                    r"(?:[.,](\d{1,6})(?:,(\d{1,3}))?)?")
_GPS = re.compile(r"GPS\s*\(\s*([^,()]+?)\s*,\s*([^,()]+?)\s*(?:,\s*([^,()]*?)\s*)?\)")
_BARO = re.compile(rf"BAROMETER\s*[(:]\s*({_NUMBER})")
_HEIGHT = re.compile(rf"(?<![\w.])H\s+({_NUMBER})\s*m\b")
_SPEED = re.compile(rf"(?<![\w])H\.S\s+({_NUMBER})\s*m/s")
_KEYED_POSITION = re.compile(r"\[\s*latitude\s*:", re.IGNORECASE)
_DRONE_YAW = re.compile(rf"Drone\s*:\s*Yaw\s*:\s*({_NUMBER})", re.IGNORECASE)


class SrtError(ValueError):
    pass


GpsOrder = Literal["lat_lon", "lon_lat"]
_LAT_FIRST_MARKS = re.compile(r"BAROMETER\s*\(|\bF\.PRY\b|\bG\.PRY\b")
"""Layouts whose GPS tuple is (latitude, longitude, altitude): Avata 2's `BAROMETER(91.2)`,
the Phantom 4 RTK's compact line with `F.PRY`/`G.PRY`."""
_UNIT_ALTITUDE = re.compile(rf"GPS\s*\([^,()]+,[^,()]+,\s*{_NUMBER}\s*[A-Za-z]+\s*\)")
"""Matrice 300's legacy `GPS(lat,lon,0.0M)`: a height with its unit, latitude first."""


def gps_order(bodies: list[str], given: GpsOrder | None = None) -> GpsOrder:
    """Which way round a file's GPS tuples are. DJI GO (Phantom 3/4, Inspire) and DJI GO 4
    (Mavic Pro, Spark) write (longitude, latitude, satellites); Avata 2, Matrice 300 and the
    Phantom 4 RTK write (latitude, longitude, height). The settings' `gps_order` decides,
    else a value beyond 90° (only a longitude can be), else the layout's own marks; a file
    where nothing tells is refused rather than put in the wrong hemisphere."""
    if given is not None:
        return given
    tuples = [match for body in bodies if (match := _GPS.search(body))]
    for match in tuples:
        try:
            first, second = abs(float(match.group(1))), abs(float(match.group(2)))
        except ValueError:
            continue
        if first > 90 >= second:
            return "lon_lat"
        if second > 90 >= first:
            return "lat_lon"
    if any(_LAT_FIRST_MARKS.search(body) or _UNIT_ALTITUDE.search(body) for body in bodies):
        return "lat_lon"
    if any(re.search(r"\bHOME\s*\(", body) or _SPEED.search(body) or re.search(r"BAROMETER\s*:", body)
           for body in bodies):
        return "lon_lat"
    raise SrtError("the GPS tuples do not say which number is the latitude: set telemetry.gps_order "
                   "(lat_lon or lon_lat)")


@dataclass(frozen=True)
class SrtTrack:
    """The flight, and what of the file could not be used (said, not hidden)."""

    track: TelemetryTrack
    subtitles: int
    without_position: int
    unreadable: int
    clock_from_flight: int
    """Subtitles that had no clock of their own and took the flight's."""


def parse_srt(text: str, timezone: str = "UTC", start: datetime | None = None,
              order: GpsOrder | None = None) -> TelemetryTrack:
    """The track of a DJI subtitle file; `timezone`: the zone of the aircraft's clock;
    `start`: the flight's start, for a layout that writes no clock; `order`: the GPS
    tuples' order where the file cannot tell (gps_order)."""
    return read_srt(text, timezone, start, order).track


def read_srt(text: str, timezone: str = "UTC", start: datetime | None = None,
             order: GpsOrder | None = None) -> SrtTrack:
    tz = ZoneInfo(timezone)
    points: list[TelemetryPoint] = []
    subtitles = without_position = unreadable = 0
    timed_bodies: list[tuple[float, str]] = []
    for block in re.split(r"\r?\n\s*\r?\n", text.strip()):
        lines = [line.strip() for line in block.splitlines() if line.strip()]
        if not lines:
            continue
        subtitles += 1
        index = next((i for i, line in enumerate(lines) if _TIMING.search(line)), None)
        if index is None:
            unreadable += 1
            continue
        timing = _TIMING.search(lines[index])
        assert timing is not None
        h, m, s, fraction = timing.groups()
        t = int(h) * 3600 + int(m) * 60 + int(s) + int(fraction.ljust(3, "0")[:3]) / 1000
        timed_bodies.append((t, _TAG.sub(" ", " ".join(lines[index + 1:]))))
    tuple_bodies = [body for _, body in timed_bodies
                    if not _KEYED_POSITION.search(body) and _GPS.search(body)]
    tuple_order = gps_order(tuple_bodies, order) if tuple_bodies else "lon_lat"
    for t, body in timed_bodies:
        point = subtitle_point(body, t, tz, tuple_order)
        if point is None:
            without_position += 1
            continue
        if not _finite_on_earth(point):
            unreadable += 1
            continue
        points.append(point)
    if not points:
        raise SrtError(f"no subtitle with a position ({subtitles} subtitles: {without_position} without a "
                       f"position, {unreadable} unreadable)")
    timed, clock_from_flight = _with_clock(points, start, tz)
    return SrtTrack(TelemetryTrack(timed), subtitles, without_position, unreadable, clock_from_flight)


def subtitle_point(body: str, t: float, tz: ZoneInfo, order: GpsOrder = "lon_lat") -> TelemetryPoint | None:
    """One subtitle's text to a point (None: no position in it); `order`: of a GPS tuple."""
    keyed = {key.lower(): float(value) for key, value in _KEYED.findall(body)}
    lat = keyed.get("latitude")
    lon = keyed.get("longitude", keyed.get("longtitude"))
    relative = keyed.get("rel_alt")
    absolute = keyed.get("abs_alt", keyed.get("altitude"))
    speed = None
    if lat is None or lon is None:
        gps = _GPS.search(body)
        if gps is None:
            return None
        try:
            first, second = float(gps.group(1)), float(gps.group(2))
        except ValueError:
            return None  # GPS(N/A,N/A,3): no fix yet
        lat, lon = (first, second) if order == "lat_lon" else (second, first)
        height = _BARO.search(body) or _HEIGHT.search(body)
        relative = float(height.group(1)) if height else None
        absolute = None  # the tuple's third number: satellites (lon_lat layouts) or a GPS height
        moving = _SPEED.search(body)
        speed = float(moving.group(1)) if moving else None
    if lat == 0 and lon == 0:
        return None  # what DJI writes until the GPS has a fix
    yaw = _DRONE_YAW.search(body)
    heading = float(yaw.group(1)) if yaw else keyed.get("drone_yaw", keyed.get("gb_yaw"))
    return TelemetryPoint(
        t=t, lat=lat, lon=lon, time=_clock(body, tz), altitude_m=absolute, relative_altitude_m=relative,
        heading_deg=heading % 360 if heading is not None and math.isfinite(heading) else None,
        speed_m_s=speed)


def _clock(body: str, tz: ZoneInfo) -> datetime | None:
    match = _STAMP.search(body)
    if match is None:
        return None
    year, month, day, hour, minute, second, fraction, micro = match.groups()
    if micro is not None:  # 14:34:20,384,165: milliseconds, then microseconds
        microseconds = int(fraction.ljust(3, "0")[:3]) * 1000 + int(micro.ljust(3, "0")[:3])
    else:
        microseconds = int((fraction or "0").ljust(6, "0")[:6])
    try:
        return datetime(int(year), int(month), int(day), int(hour), int(minute), int(second), microseconds,
                        tzinfo=tz)
    except ValueError:
        return None  # 2020-13-45: not a clock


def _finite_on_earth(point: TelemetryPoint) -> bool:
    numbers = [point.lat, point.lon, point.altitude_m, point.relative_altitude_m, point.speed_m_s]
    return (all(math.isfinite(n) for n in numbers if n is not None)
            and -90 <= point.lat <= 90 and -180 <= point.lon <= 180)


def _with_clock(points: list[TelemetryPoint], start: datetime | None,
                tz: ZoneInfo) -> tuple[list[TelemetryPoint], int]:
    """Every point with a clock: its own, else the flight's (see the module)."""
    offsets = [point.time - timedelta(seconds=point.t) for point in points if point.time is not None]
    if offsets:
        flight_start = sorted(offsets)[len(offsets) // 2]  # the median: one bad clock cannot move it
    elif start is not None:
        flight_start = start if start.tzinfo is not None else start.replace(tzinfo=tz)
    else:
        raise SrtError("no subtitle carries a clock (this layout writes none): set the flight's start "
                       "time (telemetry.start_time)")
    missing = sum(point.time is None for point in points)
    return [point if point.time is not None
            else replace(point, time=flight_start + timedelta(seconds=point.t)) for point in points], missing


def load_srt(path: Path, timezone: str = "UTC", start: datetime | None = None,
             order: GpsOrder | None = None) -> TelemetryTrack:
    return read_srt_file(path, timezone, start, order).track


def read_srt_file(path: Path, timezone: str = "UTC", start: datetime | None = None,
                  order: GpsOrder | None = None) -> SrtTrack:
    try:
        return read_srt(path.read_text(encoding="utf-8-sig"), timezone, start, order)
    except SrtError as exc:
        raise SrtError(f"{path.name}: {exc}") from exc
    except (UnicodeDecodeError, ValueError) as exc:
        raise SrtError(f"{path.name}: not a DJI subtitle file ({exc})") from exc

