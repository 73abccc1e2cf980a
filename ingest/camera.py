"""A camera (or drone video) source: capture, adaptive sampling, motion gating, quality, health.

    reader ──sample at the adaptive rate──► thumbnail ─► quality checks ─► DataQuality events
                                                    └─► motion gate ─► buffer (policy) ─► JPEG ─► sink

A static scene is sampled at the idle rate and sends a heartbeat keyframe now and
then; motion raises the rate and every sampled frame goes out. A camera that drops
is reconnected with exponential backoff and jitter, reported offline while it is
down, and its health (connected, fps, counters) goes out periodically.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from uuid import UUID, uuid4

import cv2

from ingest.backoff import Backoff
from ingest.backpressure import BoundedBuffer
from ingest.capture import EndOfStream, FrameReader, Image, KeyframeFirst, SourceError, open_reader
from ingest.events import DataQuality, DroneTelemetry, FrameHeader, GeoPoint, QualityIssue, SourceHealth
from ingest.frame_codec import Frame
from ingest.geofence import Geofence, GeofenceMonitor
from ingest.identity import event_id_at, file_identity
from ingest.jpeg import encode_jpeg
from ingest.mavlink_live import LiveMavlink
from ingest.motion import MotionGate, thumbnail
from ingest.quality import ImageQualityMonitor
from ingest.rate import AdaptiveRate, RateConfig
from ingest.settings import CameraSourceSettings
from ingest.sink import EventSink
from ingest.telemetry_track import TelemetryPoint, TelemetryTrack

log = logging.getLogger(__name__)


@dataclass
class CameraStats:
    connected: bool = False
    reconnects: int = 0
    captured: int = 0
    sent: int = 0
    gated: int = 0
    last_frame_time: datetime | None = None
    _window: list[float] = field(default_factory=list)

    def measured_fps(self, now: float, span_s: float = 10.0) -> float:
        self._window = [t for t in self._window if now - t <= span_s]
        return len(self._window) / span_s


@dataclass(frozen=True)
class _Pending:
    image: Image
    captured_at: datetime
    position: GeoPoint | None = None
    altitude_m: float | None = None
    heading_deg: float | None = None
    event_id: UUID | None = None


def sampling_rate(settings: CameraSourceSettings) -> RateConfig:
    """A camera without motion gating samples at its full rate all the time."""
    idle = settings.idle_fps if settings.motion.enabled else settings.fps
    return RateConfig(active_fps=settings.fps, idle_fps=idle, hold_s=settings.motion.hold_s)


def recording_identity(config: CameraSourceSettings, telemetry: TelemetryTrack | None) -> UUID | None:
    """A recorded flight (a video file with its flight log) has an identity, so its frames and
    telemetry get ids from their video time: ingesting it again stores nothing twice. A live
    camera, or a file standing in for one (its frames are dated by the wall clock), has none."""
    if telemetry is None:
        return None
    path = Path(config.url.removeprefix("file://"))
    return file_identity(path) if path.is_file() else None


class CameraSource:
    """`config`: the camera's settings as they are; `telemetry`: a drone's flight log, loaded
    (where it was at each video time)."""

    def __init__(
        self,
        config: CameraSourceSettings,
        telemetry: TelemetryTrack | None = None,
        clock: Callable[[], float] = time.monotonic,
        reader_factory: Callable[[CameraSourceSettings], FrameReader] | None = None,
        live: LiveMavlink | None = None,
    ) -> None:
        self.config = config
        self.telemetry = telemetry
        self.live = live
        """A drone's live MAVLink link: its frames take the position at their capture time."""
        self.stats = CameraStats()
        self.rate = AdaptiveRate(sampling_rate(config))
        self._clock = clock
        self._position = config.position.point() if config.position else None
        self._gate = MotionGate(config.motion)
        self._quality = ImageQualityMonitor(config.quality)
        self._buffer: BoundedBuffer[_Pending] = BoundedBuffer(config.buffer_size, config.buffer_policy)
        self._sequence = 0
        self._offline = False
        self._fences = GeofenceMonitor([Geofence(name, tuple(points))
                                        for name, points in config.geofences.items()])
        self._identity = recording_identity(config, telemetry)
        self._keyframes_when_idle = config.keyframes_when_idle and config.motion.enabled
        self._seen_static = False  # the last frame compared showed no motion
        self._reader: FrameReader | None = None  # the open one, for its decoding state in health
        self._skipped_before = 0  # packets never decoded by the readers closed since start
        # A recorded flight plays once: played again, its frames would repeat their ids and
        # their video times, behind what the rules have seen (late, not new data).
        looping = config.loop and self._identity is None
        self._open = reader_factory or (
            lambda c: open_reader(c.url, loop=looping, stall_timeout_s=c.stall_timeout_s, decoder=c.decoder))

    @property
    def source_id(self) -> str:
        return self.config.id

    @property
    def dropped(self) -> int:
        return self._buffer.dropped

    async def run(self, sink: EventSink) -> None:
        """Until cancelled (or a non-looping file ends)."""
        if self.live is not None:
            await asyncio.to_thread(self.live.start)
        publisher = asyncio.create_task(self._publish(sink))
        health = asyncio.create_task(self._report_health(sink))
        try:
            await self._capture(sink)
            await self._buffer.join()  # a finished file: publish what is buffered
        finally:
            for task in (publisher, health):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            if self.live is not None:
                await asyncio.to_thread(self.live.stop)
            await sink.telemetry(self.health())

    async def _capture(self, sink: EventSink) -> None:
        cfg = self.config
        backoff = Backoff(cfg.reconnect_initial_s, cfg.reconnect_max_s)
        while True:
            try:
                reader = await asyncio.to_thread(self._open, cfg)
            except SourceError as exc:
                await self._went_offline(sink, str(exc))
                await asyncio.sleep(backoff.next_delay())
                self.stats.reconnects += 1
                continue
            backoff.reset()
            await self._came_online(sink)
            self._reader = reader
            try:
                await self._sample(reader, sink)
                return
            except EndOfStream:
                return
            except SourceError as exc:
                await self._went_offline(sink, str(exc))
                await asyncio.sleep(backoff.next_delay())
                self.stats.reconnects += 1
            finally:
                self._reader = None
                self._skipped_before += int(getattr(reader, "skipped", 0))
                await asyncio.to_thread(reader.close)

    async def _sample(self, reader: FrameReader, sink: EventSink) -> None:
        cfg = self.config
        next_due = self._clock()
        gated = reader if isinstance(reader, KeyframeFirst) else None  # a Protocol check: once, not per frame
        while True:
            now = self._clock()
            interval = self.rate.interval(now)
            if gated is not None:
                # a scene seen static: look for motion on keyframes alone; motion or a boost decodes
                # all again. Not before a frame was compared: a new camera's scene is not known yet.
                gated.keyframes_only = (self._keyframes_when_idle and self._seen_static
                                        and not self.rate.active(now))
            image = await asyncio.to_thread(reader.read, interval)
            if cfg.realtime:
                delay = next_due - self._clock()
                if delay > 0:
                    await asyncio.sleep(delay)
                next_due = max(next_due + interval, self._clock() - interval)
            await self._process(image, sink, getattr(reader, "position_s", None))

    async def _process(self, image: Image, sink: EventSink, video_time: float | None = None) -> None:
        now = self._clock()
        captured_at = datetime.now(UTC)
        pending = _Pending(image, captured_at, self._position)
        track = self.telemetry
        live = self.live.at_time(captured_at) if self.live is not None else None
        if live is not None:
            pending = await self._locate(live, image, sink, 0.0)
        elif track is not None and video_time is not None:
            point = track.at(video_time + (self.config.telemetry.offset_s if self.config.telemetry else 0.0))
            pending = await self._locate(point, image, sink, video_time)
            captured_at = pending.captured_at
        self.stats.captured += 1
        self.stats.last_frame_time = captured_at
        self.stats._window.append(now)
        thumb = thumbnail(image)
        for change in self._quality.observe(thumb, now):
            await sink.telemetry(DataQuality(
                source_id=self.config.id, source_kind=self.config.kind, time=captured_at,
                issue=change.issue,
                active=change.active, detail=change.detail))
        decision = self._gate.decide(thumb, now)
        if decision.reason == "motion":
            self.rate.boost(now)
        self._seen_static = decision.reason in ("static", "heartbeat")
        if decision.send:
            await self._buffer.put(pending)
        else:
            self.stats.gated += 1

    async def _publish(self, sink: EventSink) -> None:
        while True:
            pending = await self._buffer.get()
            frame = await asyncio.to_thread(self._encode, pending)
            await sink.frame(frame)
            self.stats.sent += 1
            self._buffer.task_done()

    def _encode(self, pending: _Pending) -> Frame:
        cfg = self.config
        image = pending.image
        if cfg.max_width and image.shape[1] > cfg.max_width:
            scale = cfg.max_width / image.shape[1]
            image = cv2.resize(image, (cfg.max_width, round(image.shape[0] * scale)),
                               interpolation=cv2.INTER_AREA)
        height, width = image.shape[:2]
        header = FrameHeader(event_id=pending.event_id or uuid4(),
                             source_id=cfg.id, time=pending.captured_at, kind=cfg.kind,
                             sequence=self._sequence, width=width, height=height, position=pending.position,
                             altitude_m=pending.altitude_m, heading_deg=pending.heading_deg)
        self._sequence += 1
        return Frame(header, encode_jpeg(image, cfg.jpeg_quality))

    async def _locate(
        self, point: TelemetryPoint, image: Image, sink: EventSink, video_time: float
    ) -> _Pending:
        """A drone frame: tagged with the interpolated position; telemetry and geofences reported."""
        source_id = self.config.id
        when = point.time.astimezone(UTC) if point.time is not None else datetime.now(UTC)
        position = GeoPoint(lat=point.lat, lon=point.lon)
        telemetry_id, frame_id = uuid4(), None
        if self._identity is not None and point.time is not None:  # a recorded flight: ids by video time
            telemetry_id = event_id_at(self._identity, source_id, "telemetry", f"{video_time:.3f}")
            frame_id = event_id_at(self._identity, source_id, "frame", f"{video_time:.3f}")
        await sink.telemetry(DroneTelemetry(
            event_id=telemetry_id, source_id=source_id, time=when, position=position,
            altitude_m=point.altitude_m, relative_altitude_m=point.relative_altitude_m,
            heading_deg=point.heading_deg, speed_m_s=point.speed_m_s, battery_pct=point.battery_pct))
        for event in self._fences.observe(source_id, when, point.lat, point.lon):
            await sink.telemetry(event)
        altitude = point.altitude_m if point.altitude_m is not None else point.relative_altitude_m
        return _Pending(image, when, position, altitude, point.heading_deg, frame_id)

    async def _report_health(self, sink: EventSink) -> None:
        while True:
            await asyncio.sleep(self.config.health_every_s)
            await sink.telemetry(self.health())

    def health(self) -> SourceHealth:
        s = self.stats
        return SourceHealth(
            source_id=self.config.id, time=datetime.now(UTC), connected=s.connected,
            last_frame_time=s.last_frame_time, measured_fps=round(s.measured_fps(self._clock()), 3),
            reconnects=s.reconnects, frames_captured=s.captured, frames_sent=s.sent,
            frames_gated=s.gated, frames_dropped=self.dropped,
            sample_fps=self.rate.fps(self._clock()),
            keyframes_only=bool(getattr(self._reader, "keyframes_only", False)),
            packets_skipped=self._skipped_before + int(getattr(self._reader, "skipped", 0)),
        )

    def _quality_event(self, issue: QualityIssue, active: bool, detail: str) -> DataQuality:
        cfg = self.config
        return DataQuality(source_id=cfg.id, source_kind=cfg.kind, time=datetime.now(UTC), issue=issue,
                           active=active, detail=detail)

    async def _went_offline(self, sink: EventSink, reason: str) -> None:
        self.stats.connected = False
        log.warning("camera %s offline: %s", self.config.id, reason)
        if not self._offline:
            self._offline = True
            await sink.telemetry(self._quality_event("offline", True, reason))

    async def _came_online(self, sink: EventSink) -> None:
        self.stats.connected = True
        if self._offline:
            self._offline = False
            await sink.telemetry(self._quality_event("offline", False, "reconnected"))
