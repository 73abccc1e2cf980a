"""A live MAVLink link over real UDP (pymavlink on both ends, as a ground station forwards
an autopilot's stream): the drone's live frames carry the position at their capture time,
and a link that falls silent leaves frames without a position, never with a stale one."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest
from pymavlink import mavutil

from citywatch.infra.process import free_port
from ingest.camera import CameraSource
from ingest.events import DroneTelemetry
from ingest.mavlink_live import LiveMavlink
from ingest.settings import CameraSourceSettings
from ingest.sink import MemorySink

pytestmark = pytest.mark.integration
DEADLINE_S = 30.0


def position(lat: float, lon: float, heading: float = 90.0) -> SimpleNamespace:
    return SimpleNamespace(get_type=lambda: "GLOBAL_POSITION_INT", lat=int(lat * 1e7), lon=int(lon * 1e7),
                           alt=120_000, relative_alt=80_000, vx=300, vy=400, vz=0, hdg=int(heading * 100))


def test_positions_interpolate_by_arrival_and_a_silent_link_has_none() -> None:
    now = [datetime(2026, 12, 2, 12, tzinfo=UTC)]
    link = LiveMavlink("udpin:127.0.0.1:0", stale_after_s=3.0, clock=lambda: now[0])
    assert link.at_time(now[0]) is None  # nothing heard yet
    link.receive(position(0.0, 0.0))  # no fix yet: 0, 0 is no place
    assert link.at_time(now[0]) is None
    link.receive(position(52.5, 13.4))
    now[0] += timedelta(seconds=1)
    link.receive(SimpleNamespace(get_type=lambda: "SYS_STATUS", battery_remaining=77))
    link.receive(position(52.5002, 13.4002))
    mid = link.at_time(now[0] - timedelta(seconds=0.5))
    assert mid is not None and (mid.lat, mid.lon) == pytest.approx((52.5001, 13.4001))
    assert mid.speed_m_s == pytest.approx(5.0)
    latest = link.at_time(now[0] + timedelta(seconds=2))
    assert latest is not None and latest.battery_pct == 77 and latest.lat == pytest.approx(52.5002)
    assert link.at_time(now[0] + timedelta(seconds=3.5)) is None  # out of radio range: no position


async def test_a_live_drone_streams_its_position_over_udp_into_its_frames(vtest_avi: Path) -> None:
    port = free_port()
    address = f"udpin:127.0.0.1:{port}"
    camera = CameraSource(CameraSourceSettings(
        id="drone-live", url=str(vtest_avi), kind="drone", loop=False, realtime=True, fps=4, idle_fps=4,
        telemetry={"format": "mavlink_live", "address": address}), live=LiveMavlink(address))
    sender = mavutil.mavlink_connection(f"udpout:127.0.0.1:{port}", source_system=1, dialect="common")
    sink = MemorySink()
    running = asyncio.create_task(camera.run(sink))
    started = time.monotonic()
    try:
        step = 0
        while not [e for e in sink.telemetry_events if isinstance(e, DroneTelemetry)]:
            assert time.monotonic() - started < DEADLINE_S, "no frame took a live position"
            sender.mav.global_position_int_send(step * 100, int((51.5 + step * 1e-5) * 1e7), int(-0.12 * 1e7),
                                                 35_000, 20_000, 500, 0, 0, 9000)
            step += 1
            await asyncio.sleep(0.1)
    finally:
        running.cancel()
        with pytest.raises(asyncio.CancelledError):
            await running
        sender.close()
    located = [e for e in sink.telemetry_events if isinstance(e, DroneTelemetry)]
    assert located[0].position.lat == pytest.approx(51.5, abs=1e-3) and located[0].heading_deg == 90.0
    frame = next(f for f in sink.frames if f.header.position is not None)
    assert frame.header.position is not None and frame.header.position.lon == pytest.approx(-0.12)
    assert camera.live is not None and camera.live.messages >= 1
