import struct
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pymavlink.dialects.v20 import common as mavlink

from ingest.camera import CameraSource
from ingest.dji_srt import SrtError, load_srt, parse_srt
from ingest.events import DroneTelemetry, GeofenceEvent
from ingest.geofence import Geofence, GeofenceMonitor
from ingest.mavlink_log import load_tlog
from ingest.settings import CameraSourceSettings
from ingest.sink import MemorySink
from ingest.telemetry_track import TelemetryPoint, TelemetryTrack

DATA = Path(__file__).resolve().parents[1] / "data"
OLD_DJI = """1
00:00:00,000 --> 00:00:00,033
HOME(149.0251,-20.2532) 2020.06.12 09:51:40
GPS(149.0251,-20.2532,19) BAROMETER:1.9
ISO:110 Shutter:1000 EV: F-Num:2.8

2
00:00:01,000 --> 00:00:01,033
HOME(149.0251,-20.2532) 2020.06.12 09:51:41
GPS(149.0261,-20.2542,19) BAROMETER:3.9
ISO:110 Shutter:1000 EV: F-Num:2.8
"""


def test_dji_srt_bracketed_layout() -> None:
    track = load_srt(DATA / "DJI_0001.SRT", timezone="Europe/Berlin")
    assert len(track.points) == 21 and track.duration_s == 10.0
    first = track.points[0]
    assert (first.lat, first.lon, first.relative_altitude_m, first.altitude_m, first.heading_deg) == (
        52.516275, 13.377704, 50.0, 84.0, 350.0)
    assert first.time == datetime(2024, 6, 1, 8, 15, tzinfo=UTC)  # 10:15 in Berlin (CEST)


def test_dji_srt_older_layout_and_errors() -> None:
    track = parse_srt(OLD_DJI)
    assert [(p.t, p.lat, p.lon, p.relative_altitude_m) for p in track.points] == [
        (0.0, -20.2532, 149.0251, 1.9), (1.0, -20.2542, 149.0261, 3.9)]
    with pytest.raises(SrtError, match=r"no subtitle with a position \(1 subtitles: 1 without a position"):
        parse_srt("1\n00:00:00,000 --> 00:00:01,000\nhello\n")
    with pytest.raises(SrtError, match="0 without a position, 1 unreadable"):
        parse_srt("1\nnot a subtitle\n")


def test_track_interpolates_position_and_heading_across_north() -> None:
    track = TelemetryTrack([
        TelemetryPoint(t=0, lat=52.0, lon=13.0, heading_deg=350, altitude_m=100,
                       time=datetime(2024, 1, 1, tzinfo=UTC)),
        TelemetryPoint(t=2, lat=52.002, lon=13.004, heading_deg=10, altitude_m=110),
    ])
    mid = track.at(0.5)
    assert (mid.lat, mid.lon, mid.altitude_m) == pytest.approx((52.0005, 13.001, 102.5))
    assert mid.heading_deg == pytest.approx(355.0)  # through north, not back through south
    assert track.at(1.5).heading_deg == pytest.approx(5.0)
    assert mid.time == datetime(2024, 1, 1, 0, 0, 0, 500000, tzinfo=UTC)
    assert track.at(-1).lat == 52.0 and track.at(99).lat == 52.002


def test_geofence_reports_leaving_and_returning_once() -> None:
    fence = Geofence("tiergarten", ((52.510, 13.350), (52.520, 13.350), (52.520, 13.380), (52.510, 13.380)))
    assert fence.contains(52.515, 13.365) and not fence.contains(52.525, 13.365)
    monitor = GeofenceMonitor([fence])
    t = datetime(2024, 1, 1, tzinfo=UTC)
    path = [(52.515, 13.365), (52.519, 13.379), (52.521, 13.381), (52.522, 13.382), (52.515, 13.370)]
    events = [e for lat, lon in path for e in monitor.observe("drone-1", t, lat, lon)]
    assert [(e.fence, e.inside, e.position.lat) for e in events] == [
        ("tiergarten", False, 52.521), ("tiergarten", True, 52.515)]


def write_tlog(path: Path, start: datetime, seconds: int = 5) -> None:
    """A real-format telemetry log: each packet prefixed by its big-endian receive time in µs."""
    mav = mavlink.MAVLink(None, srcSystem=1, srcComponent=1)
    with path.open("wb") as out:
        for i in range(seconds * 4):
            usec = int((start + timedelta(seconds=i / 4)).timestamp() * 1e6)
            if i % 4 == 0:
                status = mav.sys_status_encode(0, 0, 0, 500, 16000, -1, 90 - i, 0, 0, 0, 0, 0, 0)
                out.write(struct.pack(">Q", usec) + status.pack(mav))
            position = mav.global_position_int_encode(
                i * 250, int((52.5 + i * 1e-5) * 1e7), int(13.4 * 1e7), 120_000 + i * 100, 80_000 + i * 100,
                300, 400, 0, 9000)
            out.write(struct.pack(">Q", usec) + position.pack(mav))


def test_mavlink_tlog(tmp_path: Path) -> None:
    start = datetime(2024, 6, 1, 10, tzinfo=UTC)
    write_tlog(tmp_path / "flight.tlog", start)
    track = load_tlog(tmp_path / "flight.tlog")
    assert len(track.points) == 20 and track.duration_s == pytest.approx(4.75)
    first, last = track.points[0], track.points[-1]
    assert first.time == start and (first.lat, first.lon) == pytest.approx((52.5, 13.4))
    assert (first.altitude_m, first.relative_altitude_m, first.heading_deg) == (120.0, 80.0, 90.0)
    assert first.speed_m_s == pytest.approx(5.0) and first.battery_pct == 90
    assert last.lat == pytest.approx(52.5 + 19e-5)


async def test_drone_frames_carry_the_interpolated_position(vtest_avi: Path) -> None:
    track = load_srt(DATA / "DJI_0001.SRT")
    # the drone leaves this fence (north edge 52.5168) about 5.5 s into the flight
    corners = ((52.5150, 13.3760), (52.5168, 13.3760), (52.5168, 13.3820), (52.5150, 13.3820))
    camera = CameraSource(CameraSourceSettings(
        id="drone-1", url=str(vtest_avi), kind="drone", loop=False, realtime=False, fps=2, idle_fps=2,
        geofences={"mission": list(corners)}), telemetry=track)
    sink = MemorySink()
    await camera.run(sink)
    frame = sink.frames[2]
    assert frame.header.kind == "drone" and frame.header.position is not None
    expected = track.at(1.0)  # third sample at 2 fps: frame 10 of the 10 fps video (0, 5, 10)
    position = frame.header.position
    assert (position.lat, position.lon) == pytest.approx((expected.lat, expected.lon))
    assert frame.header.altitude_m == pytest.approx(expected.altitude_m)
    assert frame.header.time == expected.time  # the flight's own time, not the replay's
    telemetry = [e for e in sink.telemetry_events if isinstance(e, DroneTelemetry)]
    assert len(telemetry) == camera.stats.captured
    fences = [e for e in sink.telemetry_events if isinstance(e, GeofenceEvent)]
    assert [(e.fence, e.inside) for e in fences] == [("mission", False)]
    assert 52.5168 < fences[0].position.lat < 52.5171


async def test_a_recorded_flight_ingested_twice_has_the_same_event_ids(vtest_avi: Path) -> None:
    track = load_srt(DATA / "DJI_0001.SRT")

    async def ingest() -> MemorySink:
        camera = CameraSource(CameraSourceSettings(
            id="drone-1", url=str(vtest_avi), kind="drone", loop=False, realtime=False, fps=2, idle_fps=2),
            telemetry=track)
        sink = MemorySink()
        await camera.run(sink)
        return sink

    first, second = await ingest(), await ingest()
    frame_ids = [f.header.event_id for f in first.frames]
    assert frame_ids and frame_ids == [f.header.event_id for f in second.frames]
    assert len(set(frame_ids)) == len(frame_ids)
    ids = [e.event_id for e in first.telemetry_events if isinstance(e, DroneTelemetry)]
    assert ids == [e.event_id for e in second.telemetry_events if isinstance(e, DroneTelemetry)]
