"""Every DJI subtitle layout, generated from one flight, reads back to that flight: modern
bracketed (rel/abs altitude, gimbal yaw), the legacy spaced one with DJI's `longtitude` and a
millisecond,microsecond clock, Matrice's `[Drone: Yaw:...]`, DJI GO's HOME/GPS/BAROMETER
(with and without a space before the tuple), and DJI GO 4's clockless line. Blocks without a
fix, unreadable blocks and CRLF files cost only themselves."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

from ingest.dji_srt import SrtError, read_srt

START = datetime(2023, 7, 15, 11, 55, 16, 320933)  # local time of the aircraft's clock


@dataclass(frozen=True)
class Fix:
    t: float
    lat: float
    lon: float
    rel: float
    abs: float
    yaw: float


FLIGHT = [Fix(t=i * 0.5, lat=41.3401 + i * 1e-4, lon=-81.3712 - i * 2e-4, rel=10.0 + i, abs=300.0 + i,
              yaw=(350 + 5 * i) % 360) for i in range(8)]


def timing(t: float) -> str:
    def show(seconds: float) -> str:
        whole = int(seconds)
        millis = round((seconds - whole) * 1000)
        return f"{whole // 3600:02d}:{whole // 60 % 60:02d}:{whole % 60:02d},{millis:03d}"
    return f"{show(t)} --> {show(t + 0.033)}"


def clock(fix: Fix, sep: str = "-", micro: bool = False) -> str:
    moment = START + timedelta(seconds=fix.t)
    day = f"{moment:%Y{sep}%m{sep}%d %H:%M:%S}"
    if micro:
        return f"{day},{moment.microsecond // 1000:03d},{moment.microsecond % 1000:03d}"
    return f"{day}.{moment.microsecond // 1000:03d}"


def yaw180(f: Fix) -> float:
    return f.yaw - 360 if f.yaw > 180 else f.yaw


LAYOUTS: dict[str, Callable[[Fix], str]] = {
    "modern": lambda f: (
        f'<font size="28">FrameCnt: 1, DiffTime: 33ms\n{clock(f)}\n[iso: 100] [shutter: 1/1000.0] '
        f"[latitude: {f.lat:.6f}] [longitude: {f.lon:.6f}] "
        f"[rel_alt: {f.rel:.3f} abs_alt: {f.abs:.3f}] "
        f"[gb_yaw: {yaw180(f):.1f} gb_pitch: -30.0 gb_roll: 0.0] </font>"),
    "legacy-spaced": lambda f: (
        f'<font size="36">SrtCnt : 1, DiffTime : 33ms\n{clock(f, micro=True)}\n'
        f"[iso : 100] [shutter : 1/320.0] [fnum : 280] [ev : 0] [ct : 5500] "
        f"[color_md : default] [focal_len : 240] [latitude : {f.lat:.6f}] "
        f"[longtitude : {f.lon:.6f}] [altitude: {f.abs:.6f}] </font>"),
    "matrice": lambda f: (
        f'<font size="28">FrameCnt: 1 {clock(f)}\n[focal_len: 24.00] [dzoom_ratio: 1.00], '
        f"[latitude: {f.lat:.6f}] [longitude: {f.lon:.6f}] [rel_alt: {f.rel:.3f} abs_alt: "
        f"{f.abs:.3f}] [Drone: Yaw:{f.yaw:.1f}, Pitch:-3.1, Roll:1.5] [weird_token] </font>"),
    "dji-go": lambda f: (
        f"HOME(-81.3712,41.3401) {clock(f, '.')[:19]}\nGPS({f.lon:.6f},{f.lat:.6f},19) "
        f"BAROMETER:{f.rel:.1f}\nISO:100 Shutter:60 EV:0 Fnum:2.2"),
    "dji-go-spaced": lambda f: (
        f"HOME (-81.3712, 41.3401) {clock(f, '/')[:19]}\n"
        f"GPS ({f.lon:.6f}, {f.lat:.6f}, 19) BAROMETER: {f.rel:.1f}"),
    "dji-go-4": lambda f: (
        f"F/2.8, SS 1000, ISO 100, EV 0, GPS ({f.lon:.6f}, {f.lat:.6f}, 19), D 24.50m, "
        f"H {f.rel:.2f}m, H.S 3.20m/s, V.S 0.00m/s"),
    "avata-2": lambda f: (
        f"{clock(f)}\nF/2.8, SS 100.0, ISO 100, EV 0.0, GPS({f.lat:.6f},{f.lon:.6f},{f.abs:.1f}), "
        f"BAROMETER({f.rel:.1f})"),
    "matrice-300-legacy": lambda f: (
        f"{clock(f)}\nGPS({f.lat:.6f},{f.lon:.6f},0.0M) BAROMETER:{f.rel:.1f}M"),
    "phantom-4-rtk": lambda f: (
        f"{clock(f)}\nF/5.6, SS 320, ISO 100, EV 0, GPS ({f.lat:.6f}, {f.lon:.6f}, {f.abs:.1f}), "
        f"HOME (41.340100, -81.371200, 0.0), D 24.5m, H {f.rel:.2f}m, H.S 3.2m/s, V.S 0.0m/s, "
        f"F.PRY (1.2°, 3.4°, 90.0°), G.PRY (-90.0°, 0.0°, 90.0°)"),
}
HAS = {"modern": {"rel", "abs", "yaw"}, "legacy-spaced": {"abs"}, "matrice": {"rel", "abs", "yaw"},
       "dji-go": {"rel"}, "dji-go-spaced": {"rel"}, "dji-go-4": {"rel"}, "avata-2": {"rel"},
       "matrice-300-legacy": {"rel"}, "phantom-4-rtk": {"rel"}}


def srt(layout: str, extra: dict[int, str] | None = None, newline: str = "\n") -> str:
    blocks = []
    for number, fix in enumerate(FLIGHT, start=1):
        body = (extra or {}).get(number, LAYOUTS[layout](fix))
        blocks.append(f"{number}\n{timing(fix.t)}\n{body}")
    return newline.join(f"{block}\n".replace("\n", newline) for block in blocks)


@pytest.mark.parametrize("layout", LAYOUTS)
def test_every_layout_reads_back_to_the_flight(layout: str) -> None:
    start = START if layout == "dji-go-4" else None  # the one layout with no clock
    read = read_srt(srt(layout), "Europe/Berlin", start)
    points = read.track.points
    zone = points[0].time.tzinfo if points[0].time is not None else None
    assert len(points) == len(FLIGHT) and read.without_position == read.unreadable == 0
    for point, fix in zip(points, FLIGHT, strict=True):
        assert (point.t, point.lat, point.lon) == pytest.approx((fix.t, fix.lat, fix.lon), abs=1e-6)
        assert point.relative_altitude_m == (pytest.approx(fix.rel) if "rel" in HAS[layout] else None)
        assert point.altitude_m == (pytest.approx(fix.abs) if "abs" in HAS[layout] else None)
        assert point.heading_deg == (pytest.approx(fix.yaw) if "yaw" in HAS[layout] else None)
        expected = (START + timedelta(seconds=fix.t)).replace(tzinfo=zone)
        precision = {"dji-go": timedelta(seconds=1), "dji-go-spaced": timedelta(seconds=1),
                     "legacy-spaced": timedelta(microseconds=1), "dji-go-4": timedelta(microseconds=1)}.get(
                         layout, timedelta(milliseconds=1))
        assert point.time is not None and abs(point.time - expected) < precision
    assert points[0].time is not None and points[0].time.utcoffset() == timedelta(hours=2)  # CEST


def test_blocks_without_a_fix_or_unreadable_cost_only_themselves() -> None:
    text = srt("legacy-spaced", extra={2: "GPS(N/A,N/A,3) BAROMETER:1.0", 3: "[latitude : 0.000000] "
                                       "[longtitude : 0.000000] [altitude: 0.000000]",
                                       5: "[latitude: 95.000000] [longitude: 2.0]"}, newline="\r\n")
    text = text.replace(timing(FLIGHT[6].t), "not a timing line")
    read = read_srt("\ufeff" + text)
    assert (read.subtitles, read.without_position, read.unreadable) == (8, 2, 2)
    assert [p.t for p in read.track.points] == [FLIGHT[i].t for i in (0, 3, 5, 7)]


def test_a_subtitle_without_a_clock_takes_the_flights_and_a_clockless_file_needs_a_start() -> None:
    read = read_srt(srt("modern", extra={4: LAYOUTS["dji-go-4"](FLIGHT[3])}))
    assert read.clock_from_flight == 1
    fourth = read.track.points[3]
    assert fourth.time is not None
    drift = fourth.time.replace(tzinfo=None) - (START + timedelta(seconds=1.5))
    assert abs(drift) < timedelta(milliseconds=2)
    with pytest.raises(SrtError, match=r"no subtitle carries a clock .*telemetry.start_time"):
        read_srt(srt("dji-go-4"))
    aware = read_srt(srt("dji-go-4"), "UTC", START.replace(tzinfo=UTC)).track.points[-1]
    assert aware.time == START.replace(tzinfo=UTC) + timedelta(seconds=3.5) and aware.speed_m_s == 3.2


def test_a_tuple_whose_order_nothing_tells_is_refused_unless_the_settings_say() -> None:
    plain = "\n\n".join(f"{i}\n{timing(f.t)}\n{clock(f)}\nGPS({f.lat:.6f},{f.lon:.6f},19)"
                        for i, f in enumerate(FLIGHT, start=1))
    with pytest.raises(SrtError, match=r"set telemetry\.gps_order"):
        read_srt(plain)
    read = read_srt(plain, order="lat_lon")
    first = read.track.points[0]
    assert (first.lat, first.lon) == pytest.approx((FLIGHT[0].lat, FLIGHT[0].lon))
    far_west = plain.replace("-81.37", "-121.37")  # a longitude beyond 90°: the file tells
    assert read_srt(far_west).track.points[0].lon < -121
