"""Run the configured sources: cameras (video files) and air-quality replays, into Kafka.

A source that fails (file missing, decoder error) is logged and retried after a
pause; it never takes the other sources or the worker down. Rows a source cannot
parse go to the dead-letter topic with the reason.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from dataclasses import dataclass, field

from citywatch.deadletter import DeadLetter
from citywatch.publisher import Publisher, publish_dead_letter
from citywatch.settings import AirQualitySourceSettings, CameraSourceSettings, Settings
from citywatch.topics import Topics
from ingest.csv_replay import Column, CsvReplayConfig, CsvReplaySensor
from ingest.events import GeoPoint
from ingest.frame_codec import encode_frame
from ingest.rejected import Rejected
from ingest.video import SourceError, VideoFileCamera, VideoFileConfig

log = logging.getLogger(__name__)

RETRY_DELAY_S = 10.0


@dataclass
class SourceCounters:
    """What the sources produced, for the demo summary and metrics."""

    counts: Counter[str] = field(default_factory=Counter)


def camera_config(cfg: CameraSourceSettings) -> VideoFileConfig:
    return VideoFileConfig(
        source_id=cfg.id, path=cfg.path, fps=cfg.fps, loop=cfg.loop,
        jpeg_quality=cfg.jpeg_quality, max_width=cfg.max_width,
    )


def air_quality_config(cfg: AirQualitySourceSettings) -> CsvReplayConfig:
    return CsvReplayConfig(
        source_id=cfg.id, path=cfg.path,
        columns={name: Column(c.field, c.unit) for name, c in cfg.columns.items()},
        time_column=cfg.time_column, time_format=cfg.time_format, timezone=cfg.timezone,
        period_s=cfg.period_s, speed=cfg.speed, start_row=cfg.start_row, max_rows=cfg.max_rows,
        position=GeoPoint(lat=cfg.position.lat, lon=cfg.position.lon) if cfg.position else None,
    )


async def run_camera(
    cfg: CameraSourceSettings, publisher: Publisher, counters: SourceCounters
) -> None:
    while True:
        try:
            camera = VideoFileCamera(camera_config(cfg))
            async for frame in camera.frames():
                await publisher.send("frames", cfg.id.encode(), encode_frame(frame))
                counters.counts["frames"] += 1
            return  # a non-looping file has ended
        except SourceError as exc:
            log.error("camera %s failed: %s; retrying in %.0f s", cfg.id, exc, RETRY_DELAY_S)
            counters.counts["source_errors"] += 1
            await asyncio.sleep(RETRY_DELAY_S)


async def run_air_quality(
    cfg: AirQualitySourceSettings, publisher: Publisher, topics: Topics, counters: SourceCounters
) -> None:
    try:
        sensor = CsvReplaySensor(air_quality_config(cfg))
    except (OSError, ValueError) as exc:
        log.error("air-quality source %s cannot start: %s", cfg.id, exc)
        counters.counts["source_errors"] += 1
        return
    async for item in sensor.readings():
        if isinstance(item, Rejected):
            await publish_dead_letter(publisher, topics, DeadLetter(
                origin_topic=topics.name("readings"), reason=item.reason, raw=item.raw,
                consumer=f"source:{cfg.id}", source_id=cfg.id))
            counters.counts["rejected_rows"] += 1
            continue
        await publisher.send("readings", cfg.id.encode(), item.to_json())
        counters.counts["readings"] += 1
    log.info("air-quality replay %s finished: %s", cfg.id, sensor.stats)


async def run_sources(settings: Settings, publisher: Publisher, counters: SourceCounters) -> None:
    """All configured sources concurrently, until cancelled."""
    topics = Topics(settings.broker.topic_prefix)
    tasks = [run_camera(c, publisher, counters) for c in settings.sources.cameras]
    tasks += [run_air_quality(a, publisher, topics, counters) for a in settings.sources.air_quality]
    if tasks:
        await asyncio.gather(*tasks)
