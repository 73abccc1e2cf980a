"""Air-quality readings pushed over HTTP: Sensor.Community and the generic JSON format.

    POST /sensor-community   (X-Sensor: esp8266-<chip id>)  -> 201 {"accepted": 1}
    POST /readings           generic JSON, one object or a list -> 201 {"accepted": n}

Whatever cannot become a Reading (not JSON, wrong shape, unknown sensor, a value out of
range) is answered 4xx with the reason and goes to the dead-letter stream with the
original body. Accepted readings get the AQI where the averaging period allows it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from functools import partial

from aiohttp import web

from ingest.aq_formats import PUSH_FORMATS, FormatError, ParsedReading
from ingest.aqi import overall_aqi
from ingest.aqi_average import RollingAqi
from ingest.corrections import correct_pm25
from ingest.events import GeoPoint, Reading
from ingest.nowcast import NowCastTracker
from ingest.rejected import Rejected
from ingest.sensors import SensorRegistry, SensorWatch, UnknownSensor
from ingest.sink import EventSink
from ingest.validation import out_of_range

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 256 * 1024
DEFAULT_MAX_FUTURE_SKEW_S = 300.0
"""A reading dated further ahead than this is a sensor clock that is wrong: refused, so it
cannot poison a rolling AQI window or a rule's event time."""


class AirQualityReceiver:
    """Survives any message: whatever cannot become a Reading is a 4xx and a dead letter."""

    def __init__(self, registry: SensorRegistry, sink: EventSink, watch: SensorWatch | None = None,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC),
                 max_future_skew_s: float = DEFAULT_MAX_FUTURE_SKEW_S) -> None:
        self.max_future_skew = timedelta(seconds=max_future_skew_s)
        self.registry = registry
        self.sink = sink
        self.watch = watch or SensorWatch()
        self.rolling = RollingAqi()
        self.nowcast = NowCastTracker()
        self.clock = clock
        self.accepted = 0
        self.rejected = 0
        self._unknown_reported: set[tuple[str, str]] = set()

    async def receive(self, protocol: str, body: bytes, sensor_header: str | None = None) -> tuple[int, str]:
        """Returns (HTTP status, message). Every rejection is also a dead letter."""
        try:
            parsed = PUSH_FORMATS[protocol].parse(body, sensor_header)
            readings = [self._to_reading(item) for item in parsed]
        except Exception as exc:  # any message, however hostile, is answered and kept
            status = 404 if isinstance(exc, UnknownSensor) else 400
            known = isinstance(exc, FormatError | UnknownSensor | ValueError)
            reason = f"{protocol}: {exc}" if known else f"{protocol}: {type(exc).__name__}: {exc}"
            if not known:
                log.warning("a %s message was refused on an unexpected error", protocol, exc_info=True)
            return await self.refuse(status, reason, body, sensor_header)
        for reading in readings:
            await self.sink.reading(reading)
            spec = self.registry.lookup(reading.source_id)
            for event in self.watch.observe(spec, reading.time, reading.values):
                await self.sink.telemetry(event)
        self.accepted += len(readings)
        return 201, f"accepted {len(readings)}"

    async def refuse(
        self, status: int, reason: str, body: bytes, sensor_header: str | None
    ) -> tuple[int, str]:
        """Answer `status` with the reason, and keep the body as a dead letter."""
        self.rejected += 1
        source = sensor_header if sensor_header and len(sensor_header) <= 200 else "http"
        await self.sink.rejected(Rejected(source, reason[:2000], body), "readings")
        return status, reason

    def _to_reading(self, item: ParsedReading) -> Reading:
        spec = self.registry.lookup(item.device_id)
        values, units = correct_pm25(item.values, item.units, spec.pm25_correction)
        item = replace(item, values=values, units=units)
        problems = out_of_range(item.values, item.units)
        if problems:
            raise ValueError(f"sensor {spec.id}: " + "; ".join(problems))
        now = self.clock()
        time = item.time or now
        if time - now > self.max_future_skew:
            raise ValueError(f"sensor {spec.id}: time {time.isoformat()} is more than "
                             f"{self.max_future_skew.total_seconds():g} s ahead of this receiver's clock")
        # the reading's own period when it is the EPA's, else the rolling window's average
        rolling = self.rolling.add(spec.id, time, item.values, item.units,
                                   item.period_s or spec.expected_interval_s)
        aqi = overall_aqi(item.values, item.units, item.period_s) or rolling
        nowcast = self.nowcast.add(spec.id, time, item.values, item.units)
        self._report_unknown(spec.id, item.extras.get("unknown", ()))
        position = (GeoPoint(lat=item.position[0], lon=item.position[1]) if item.position is not None
                    else spec.position.point() if spec.position else None)
        return Reading(
            source_id=spec.id, time=time, values=item.values, units=item.units,
            period_s=item.period_s, position=position,
            aqi=aqi[0] if aqi else None, aqi_pollutant=aqi[1] if aqi else None,
            nowcast_aqi=nowcast[0] if nowcast else None, nowcast_pollutant=nowcast[1] if nowcast else None,
        )

    def _report_unknown(self, sensor_id: str, value_types: Iterable[str]) -> None:
        """A value type this receiver does not know is kept (no unit, no AQI) and said once
        per sensor, not on every report."""
        for value_type in value_types:
            if (sensor_id, value_type) not in self._unknown_reported and len(self._unknown_reported) < 10_000:
                self._unknown_reported.add((sensor_id, value_type))
                log.warning("sensor %s sends value type %r, which is not known here: kept under its own "
                            "name, without a unit or AQI", sensor_id, value_type)

    async def watch_missing(self, every_s: float = 30.0) -> None:
        """Until cancelled: report registered sensors that stopped reporting."""
        while True:
            await asyncio.sleep(every_s)
            for event in self.watch.check_missing(list(self.registry), self.clock()):
                await self.sink.telemetry(event)


def http_app(receiver: AirQualityReceiver) -> web.Application:
    async def handle(request: web.Request, protocol: str) -> web.Response:
        body = await request.content.read(MAX_BODY_BYTES + 1)
        sensor = request.headers.get("X-Sensor")
        if len(body) > MAX_BODY_BYTES:
            reason = f"{protocol}: body larger than {MAX_BODY_BYTES} bytes"
            status, message = await receiver.refuse(413, reason, body[:MAX_BODY_BYTES], sensor)
            return web.json_response({"error": message}, status=status)
        status, message = await receiver.receive(protocol, body, sensor)
        key = "accepted" if status < 300 else "error"
        return web.json_response({key: message}, status=status)

    app = web.Application(client_max_size=MAX_BODY_BYTES * 2)
    for push in PUSH_FORMATS.values():
        app.router.add_post(push.path, partial(handle, protocol=push.name))
    return app


async def serve(receiver: AirQualityReceiver, host: str, port: int) -> None:
    """Serve until cancelled."""
    runner = web.AppRunner(http_app(receiver), access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()
