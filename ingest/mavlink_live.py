"""A live MAVLink link (PX4, ArduPilot, a ground station forwarding): the drone's position
as it flies, for the frames of its live video.

pymavlink listens on the address the settings give (`udpin:0.0.0.0:14550`, the ground
station's default forward; `udp:`, `tcp:` and serial devices work the same) in a thread of
its own, since its reads block. Each GLOBAL_POSITION_INT (lat/lon in 1e-7 degrees,
altitudes in mm, heading in centidegrees, velocities in cm/s) becomes a point stamped with
its arrival time; SYS_STATUS gives the battery. A frame takes the position interpolated to
its capture time, and none once the link has been silent for `stale_after_s`: a drone out
of radio range has no known position, never its last one repeated.
"""

from __future__ import annotations

import logging
import math
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from ingest.telemetry_track import TelemetryPoint, TelemetryTrack

log = logging.getLogger(__name__)
KEEP_POINTS = 600  # about a minute at 10 Hz: enough to interpolate any frame still in flight


class LiveMavlink:
    def __init__(self, address: str, stale_after_s: float = 3.0,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.address = address
        self.stale_after_s = stale_after_s
        self.messages = 0
        self._clock = clock
        self._points: deque[TelemetryPoint] = deque(maxlen=KEEP_POINTS)
        self._lock = threading.Lock()
        self._battery: float | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._link: Any = None

    def start(self) -> None:
        from pymavlink import mavutil

        self._link = mavutil.mavlink_connection(self.address, dialect="common")
        self._stop.clear()
        self._thread = threading.Thread(target=self._read, name=f"mavlink {self.address}", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self._link is not None:
            self._link.close()

    def _read(self) -> None:
        while not self._stop.is_set():
            try:
                message = self._link.recv_match(type=["GLOBAL_POSITION_INT", "SYS_STATUS"], blocking=True,
                                                timeout=0.5)
            except (OSError, ValueError) as exc:  # a closed socket on stop, a corrupt packet
                if not self._stop.is_set():
                    log.warning("MAVLink link %s: %s", self.address, exc)
                continue
            if message is not None:
                self.receive(message)

    def receive(self, message: Any) -> None:
        """One decoded message (from the link's thread, or a test)."""
        self.messages += 1
        if message.get_type() == "SYS_STATUS":
            self._battery = None if message.battery_remaining < 0 else float(message.battery_remaining)
            return
        now = self._clock()
        heading = None if message.hdg == 65535 else message.hdg / 100
        point = TelemetryPoint(
            t=now.timestamp(), lat=message.lat / 1e7, lon=message.lon / 1e7, time=now,
            altitude_m=message.alt / 1000, relative_altitude_m=message.relative_alt / 1000,
            heading_deg=heading, speed_m_s=math.hypot(message.vx, message.vy) / 100,
            battery_pct=self._battery)
        if (point.lat, point.lon) == (0.0, 0.0):
            return  # no GPS fix yet
        with self._lock:
            self._points.append(point)

    def at_time(self, when: datetime) -> TelemetryPoint | None:
        """The position at `when` (a frame's capture time), or None: no point yet, or the link
        silent for longer than `stale_after_s` before it."""
        with self._lock:
            points = list(self._points)
        if not points:
            return None
        moment = when.timestamp()
        if moment - points[-1].t > self.stale_after_s:
            return None
        return replace(TelemetryTrack(points).at(moment), time=when)
