"""Run the configured sources into Kafka: settings → ingest adapters → a sink over the publisher.

A source that fails is logged and retried (cameras reconnect themselves); it never
takes the other sources or the worker down. Whatever a source rejects goes to the
dead-letter topic with the reason.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from citywatch.agents.policy import PermanentFailure, keep_dead_letter, until_done
from citywatch.control import follow_control
from citywatch.deadletter import DeadLetter
from citywatch.publisher import Publisher
from citywatch.settings import Settings
from citywatch.topics import Topics
from ingest.aq_mqtt import MqttAirQualitySource
from ingest.aq_receiver import AirQualityReceiver
from ingest.aq_receiver import serve as serve_http
from ingest.backoff import Backoff
from ingest.camera import CameraSource
from ingest.dji_srt import read_srt_file
from ingest.events import DataQuality, Event, Reading
from ingest.frame_codec import Frame, encode_frame
from ingest.mavlink_live import LiveMavlink
from ingest.mavlink_log import load_tlog
from ingest.rejected import Rejected
from ingest.sensors import SensorRegistry, SensorWatch
from ingest.settings import CameraSourceSettings
from ingest.sink import Stream
from ingest.source_registry import SOURCE_TYPES
from ingest.source_types import SourceContext, SourceEntry, SourceType, cannot_start
from ingest.telemetry_track import TelemetryTrack

log = logging.getLogger(__name__)

Runnable = tuple[SourceType[Any], SourceEntry]


@dataclass
class SourceCounters:
    """What the sources produced, for status lines and the demo summary."""

    counts: Counter[str] = field(default_factory=Counter)


class PublisherSink:
    """The ingest EventSink over a Kafka publisher: every event keyed by its source id.

    Under the failure policy: a broker that is away is waited for (the source slows down
    behind its bounded buffer, nothing is lost); a message the broker refuses for good (too
    large) is kept as a dead letter (its first 64 KiB, if that is what fits), and the source
    carries on."""

    def __init__(self, publisher: Publisher, topics: Topics, counters: SourceCounters) -> None:
        self.publisher = publisher
        self.topics = topics
        self.counters = counters

    async def _send(self, stream: Stream, key: str, value: bytes) -> bool:
        try:
            await until_done(lambda: self.publisher.send(stream, key.encode(), value), f"source:{key}",
                             f"publishing to {stream}")
            return True
        except PermanentFailure as failure:
            log.error("source %s: %s", key, failure)
            self.counters.counts["unpublishable"] += 1
            await self.rejected(Rejected(key, str(failure), value), stream)
            return False

    async def frame(self, frame: Frame) -> None:
        if await self._send("frames", frame.source_id, encode_frame(frame)):
            self.counters.counts["frames"] += 1

    async def reading(self, reading: Reading) -> None:
        if await self._send("readings", reading.source_id, reading.to_json()):
            self.counters.counts["readings"] += 1

    async def telemetry(self, event: Event) -> None:
        if await self._send("telemetry", event.source_id, event.to_json()):
            self.counters.counts["telemetry"] += 1

    async def rejected(self, item: Rejected, stream: Stream) -> None:
        letter = DeadLetter(origin_topic=self.topics.name(stream), reason=item.reason, raw=item.raw,
                            consumer=f"source:{item.source_id}", source_id=item.source_id)
        if await keep_dead_letter(self.publisher, letter, letter.consumer):
            self.counters.counts["rejected"] += 1


def live_link(cfg: CameraSourceSettings) -> LiveMavlink | None:
    """A drone's live MAVLink link, where its settings give one."""
    telemetry = cfg.telemetry
    if telemetry is None or telemetry.format != "mavlink_live" or telemetry.address is None:
        return None
    return LiveMavlink(telemetry.address, telemetry.stale_after_s)


def telemetry_track(cfg: CameraSourceSettings) -> TelemetryTrack | None:
    """The drone's flight log, read at start-up (a broken log is an error now, not mid-flight)."""
    telemetry = cfg.telemetry
    if telemetry is None or telemetry.path is None:
        return None  # none, or a live link (live_link)
    if telemetry.format == "dji_srt":
        read = read_srt_file(telemetry.path, telemetry.timezone, telemetry.start_time, telemetry.gps_order)
        if read.without_position or read.unreadable or read.clock_from_flight:
            log.warning("%s: %s has %d subtitles: %d without a position and %d unreadable were skipped, "
                        "%d took the flight's clock", cfg.id, telemetry.path.name, read.subtitles,
                        read.without_position, read.unreadable, read.clock_from_flight)
        return read.track
    return load_tlog(telemetry.path)


@dataclass(frozen=True)
class BrokenSource:
    """A configured source that could not be built (an unreadable flight log, say)."""

    source_id: str
    kind: str
    reason: str

    def offline(self) -> DataQuality:
        return cannot_start(self.source_id, self.kind, self.reason)


def runnable_sources(settings: Settings, only: Sequence[str] = ()) -> list[Runnable]:
    """Every configured source whose type runs its sources one by one (ingest/source_types.py)."""
    return [(SOURCE_TYPES[key], entry) for key, entry in settings.sources.entries()
            if SOURCE_TYPES[key].run is not None and (not only or entry.id in only)]


def build_cameras(
    settings: Settings, only: Sequence[str] = ()
) -> tuple[list[CameraSource], list[BrokenSource]]:
    """Each camera on its own: one that cannot be built is reported, the others run."""
    cameras: list[CameraSource] = []
    broken: list[BrokenSource] = []
    for cfg in settings.sources.cameras:
        if only and cfg.id not in only:
            continue
        try:
            cameras.append(CameraSource(cfg, telemetry_track(cfg), live=live_link(cfg)))
        except Exception as exc:
            log.error("source %s cannot start: %s", cfg.id, exc)
            broken.append(BrokenSource(cfg.id, cfg.kind, f"{type(exc).__name__}: {exc}"))
    return cameras, broken


async def supervised(name: str, run: Callable[[], Awaitable[None]], restart_max_s: float = 60.0) -> None:
    """Run a source until it finishes; an unexpected error is logged and the source restarted
    with backoff, so it never takes the other sources down with it."""
    backoff = Backoff(1.0, restart_max_s)
    while True:
        try:
            await run()
            return
        except Exception:
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                raise  # stopping: an error raised on the way out (a closed producer) is no failure
            delay = backoff.next_delay()
            log.exception("source %s failed; restarting it in %.1f s", name, delay)
            await asyncio.sleep(delay)


def air_quality_receiver(settings: Settings, sink: PublisherSink) -> AirQualityReceiver:
    registry = SensorRegistry(settings.sources.sensors)
    http = settings.sources.http_receiver
    return AirQualityReceiver(registry, sink, SensorWatch(http.stuck_after, http.missing_after_intervals),
                              max_future_skew_s=http.max_future_skew_s)


async def run_sources(
    settings: Settings, publisher: Publisher, counters: SourceCounters,
    cameras: Sequence[CameraSource] | None = None,
    others: Sequence[Runnable] | None = None,
    broken: Sequence[BrokenSource] = (),
    receivers: bool = True,
) -> None:
    """The given (default: all configured) sources concurrently, until cancelled; those that
    could not be built are reported offline on the telemetry topic. `others`: the sources of
    the types that run them one by one (all but cameras); `receivers`: whether the HTTP and
    MQTT receivers of pushing sensors run too."""
    if cameras is None or others is None:
        cameras, broken = build_cameras(settings)
        others = runnable_sources(settings)
    sink = PublisherSink(publisher, Topics(settings.broker.topic_prefix), counters)
    for source in broken:
        counters.counts["source_errors"] += 1
        await sink.telemetry(source.offline())
    tasks = [supervised(camera.source_id, partial(camera.run, sink)) for camera in cameras]
    async def report_broken(record: DataQuality) -> None:
        counters.counts["source_errors"] += 1
        await sink.telemetry(record)

    context = SourceContext(sink, settings.infra.state_dir, report_broken)
    for source_type, entry in others:
        assert source_type.run is not None
        tasks.append(supervised(entry.id, partial(source_type.run, entry, context)))
    http, mqtt = settings.sources.http_receiver, settings.sources.mqtt
    if receivers and (http.enabled or mqtt.enabled):
        receiver = air_quality_receiver(settings, sink)
        tasks.append(supervised("sensor watch", receiver.watch_missing))
        if http.enabled:
            log.info("air-quality HTTP receiver on http://%s:%d", http.host, http.port)
            tasks.append(supervised("HTTP receiver", partial(serve_http, receiver, http.host, http.port)))
        if mqtt.enabled:
            mqtt_source = MqttAirQualitySource(mqtt, receiver)
            tasks.append(supervised("MQTT", mqtt_source.run))
    helpers = []
    if cameras:
        helpers.append(asyncio.create_task(_publish_metrics(cameras)))
        helpers.append(asyncio.create_task(follow_control(
            settings.broker.bootstrap_servers, sink.topics, {c.source_id: c for c in cameras})))
    try:
        if tasks:
            await asyncio.gather(*tasks)
    finally:
        for helper in helpers:
            helper.cancel()


async def _publish_metrics(cameras: Sequence[CameraSource], every_s: float = 5.0) -> None:
    from citywatch.metrics import update_source_metrics

    while True:
        update_source_metrics(cameras, time.monotonic())
        await asyncio.sleep(every_s)
