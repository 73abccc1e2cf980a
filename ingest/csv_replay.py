"""Replay a CSV of real air-quality measurements as a sensor, at real or accelerated speed.

Real data sets (docs/models-and-data.md) are hourly tables; a replay turns each row
into a `Reading` with the row's own measurement time (when it happened), paced so
that `speed` data-seconds pass per wall-second. Rows that do not parse become
`Rejected` with the row number and reason, never silently skipped; a file that is not
UTF-8, holds NUL bytes or a huge field costs those rows, never the replay.

A reading's id is the file's identity plus its line (ingest.identity), and with a
checkpoint the replay resumes after the last row it handed on: restarting a replay, or
replaying the same file again, stores nothing twice.
"""

from __future__ import annotations

import asyncio
import csv
import gzip
import io
import logging
import math
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from ingest.aqi import overall_aqi
from ingest.checkpoint import Checkpoint
from ingest.events import Reading, first_lines
from ingest.identity import event_id_at, file_identity
from ingest.rejected import Rejected
from ingest.settings import AirQualitySourceSettings
from ingest.sink import EventSink
from ingest.source_types import SourceContext, SourceType

log = logging.getLogger(__name__)

Row = dict[str, str] | str
"""A CSV row by column, or the reason the line could not be read as one."""


@dataclass
class ReplayStats:
    rows: int = 0
    readings: int = 0
    rejected: int = 0
    empty_rows: int = 0
    notes: list[str] = field(default_factory=list)


class CsvReplaySensor:
    """Yields `Reading`s (or `Rejected`) from a CSV or gzip'd CSV file."""

    def __init__(self, config: AirQualitySourceSettings, checkpoint: Path | None = None) -> None:
        """`checkpoint`: where a restarted replay finds the last row it sent (None: from the start)."""
        if not config.path.is_file():
            raise FileNotFoundError(f"{config.id}: CSV file not found: {config.path}")
        if config.speed <= 0:
            raise ValueError("speed must be positive")
        self.config = config
        self.stats = ReplayStats()
        self._tz = ZoneInfo(config.timezone)
        self.identity = file_identity(config.path)
        self.checkpoint = Checkpoint(checkpoint, self.identity) if checkpoint else None
        self._position = config.position.point() if config.position else None

    def rows(self) -> Iterator[tuple[int, Row]]:
        opener = gzip.open if self.config.path.suffix == ".gz" else open
        with opener(self.config.path, "rt", newline="", encoding="utf-8", errors="replace") as handle:
            assert isinstance(handle, io.TextIOBase)
            reader = csv.DictReader(handle)
            line = 1
            while True:
                line += 1
                try:
                    row = next(reader)
                except StopIteration:
                    return
                except csv.Error as exc:
                    yield line, f"unreadable CSV line: {exc}"
                    continue
                yield line, row

    def parse(self, line: int, row: Row) -> Reading | Rejected | None:
        """One CSV row to a Reading; None for a row with no measured value (a gap)."""
        cfg = self.config
        if isinstance(row, str):
            return Rejected(cfg.id, f"{cfg.path.name}:{line}: {row}", b"")
        raw = ",".join(f"{k}={v}" for k, v in row.items()).encode()
        try:
            stamp = datetime.strptime(row[cfg.time_column], cfg.time_format).replace(tzinfo=self._tz)
        except (KeyError, TypeError, ValueError) as exc:
            return Rejected(cfg.id, f"{cfg.path.name}:{line}: bad time: {exc}", raw)
        values: dict[str, float] = {}
        units: dict[str, str] = {}
        for column, spec in cfg.columns.items():
            text = (row.get(column) or "").strip()
            if not text or text.upper() == "NA":
                continue
            try:
                value = float(text)
            except ValueError:
                value = math.nan
            if not math.isfinite(value):
                reason = f"{cfg.path.name}:{line}: {column}={text[:40]!r} is not a finite number"
                return Rejected(cfg.id, reason, raw)
            values[spec.field] = value
            units[spec.field] = spec.unit
        if not values:
            return None
        try:
            aqi = overall_aqi(values, units, cfg.period_s)
            return Reading(
                event_id=event_id_at(self.identity, cfg.id, "reading", line),
                source_id=cfg.id,
                time=stamp,
                values=values,
                units=units,
                period_s=cfg.period_s,
                position=self._position,
                aqi=aqi[0] if aqi else None,
                aqi_pollutant=aqi[1] if aqi else None,
            )
        except (ValueError, ArithmeticError) as exc:  # a time outside the years events may have ...
            return Rejected(cfg.id, f"{cfg.path.name}:{line}: {first_lines(str(exc), 3)}", raw)

    async def run(self, sink: EventSink) -> None:
        """Play the file into the sink: readings, and every rejected row as a dead letter;
        the checkpoint moves on only once the sink has taken the row."""
        try:
            async for line, item in self._played():
                if isinstance(item, Rejected):
                    await sink.rejected(item, "readings")
                else:
                    await sink.reading(item)
                if self.checkpoint is not None:
                    self.checkpoint.advance(line)
        finally:  # stopped, failed or done: where it got to (a kill -9 loses at most one second)
            if self.checkpoint is not None:
                self.checkpoint.flush()

    async def readings(self) -> AsyncIterator[Reading | Rejected]:
        """Play the file once (a replay never repeats a measurement time)."""
        async for _, item in self._played():
            yield item

    async def _played(self) -> AsyncIterator[tuple[int, Reading | Rejected]]:
        cfg = self.config
        previous: datetime | None = None
        emitted = 0
        resume_after = self.checkpoint.position if self.checkpoint is not None else 0
        for line, row in self.rows():
            if line - 2 < cfg.start_row:
                continue
            if cfg.max_rows is not None and emitted >= cfg.max_rows:
                return
            if line <= resume_after:  # handed on before a restart: counted, not sent again
                emitted += self.parse(line, row) is not None
                continue
            self.stats.rows += 1
            item = self.parse(line, row)
            if item is None:
                self.stats.empty_rows += 1
                continue
            emitted += 1
            if isinstance(item, Rejected):
                self.stats.rejected += 1
                yield line, item
                continue
            if previous is not None:
                gap = (item.time - previous).total_seconds() / cfg.speed
                if gap > 0:
                    await asyncio.sleep(min(gap, 60.0))
            previous = item.time
            self.stats.readings += 1
            yield line, item



def replay_checkpoint(settings: AirQualitySourceSettings, state_dir: Path | None) -> Path | None:
    """Where a replay that resumes keeps the last row it sent."""
    return state_dir / "replay" / f"{settings.id}.json" if settings.resume and state_dir is not None else None


async def run_replay(settings: AirQualitySourceSettings, context: SourceContext) -> None:
    """One air-quality file replayed; a file that cannot be opened is reported offline."""
    try:
        sensor = CsvReplaySensor(settings, replay_checkpoint(settings, context.state_dir))
    except (OSError, ValueError) as exc:
        log.error("air-quality source %s cannot start: %s", settings.id, exc)
        await context.cannot_start(settings.id, "sensor", f"{type(exc).__name__}: {exc}")
        return
    await sensor.run(context.sink)
    log.info("air-quality replay %s finished: %s", settings.id, sensor.stats)


AIR_QUALITY_FILES = SourceType("air_quality", AirQualitySourceSettings, kinds=("sensor",), run=run_replay)
