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
from ingest.aqi_average import RollingAqi
from ingest.checkpoint import Checkpoint
from ingest.csv_layout import SNIFF_BYTES, LayoutError, infer_time_format, parse_time, sniff_dialect
from ingest.events import Reading, first_lines
from ingest.identity import event_id_at, file_identity
from ingest.nowcast import NowCastTracker
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
    duplicates: int = 0
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
        self.rolling = RollingAqi()
        self.nowcast = NowCastTracker()
        with self._open() as handle:  # one look at the start: the dialect, then the header in it
            self.dialect = sniff_dialect(handle.read(SNIFF_BYTES), config.delimiter)
            handle.seek(0)
            header = next(csv.reader(handle, self.dialect), [])
        self.time_column = self._time_column([name.strip() for name in header])
        try:
            self.time_format = config.time_format or infer_time_format(
                (line, row.get(self.time_column) or "") for line, row in self.rows() if isinstance(row, dict))
        except LayoutError as exc:
            raise ValueError(f"{config.id}: {config.path.name}: {exc}") from exc

    def _open(self) -> io.TextIOBase:
        opener = gzip.open if self.config.path.suffix == ".gz" else open
        handle = opener(self.config.path, "rt", newline="", encoding="utf-8-sig", errors="replace")
        assert isinstance(handle, io.TextIOBase)
        return handle

    def _time_column(self, names: list[str]) -> str:
        """The configured time column, found in the header (case-insensitively where not exact);
        a header without it, or without a configured value column, is an error naming them."""
        cfg = self.config
        found = cfg.time_column if cfg.time_column in names else next(
            (name for name in names if name.lower() == cfg.time_column.lower()), None)
        missing = [column for column in cfg.columns if column not in names]
        if found is None or missing:
            lacking = ", ".join(repr(c) for c in ([] if found else [cfg.time_column]) + missing)
            delimiter = getattr(self.dialect, "delimiter", ",")
            raise ValueError(f"{cfg.id}: {cfg.path.name}: the header has no column {lacking} (columns read "
                             f"with delimiter {delimiter!r}: {', '.join(names)[:300]})")
        return found

    def rows(self) -> Iterator[tuple[int, Row]]:
        with self._open() as handle:
            reader = csv.DictReader(handle, dialect=self.dialect)
            reader.fieldnames = [name.strip() for name in reader.fieldnames or []]
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
            stamp = parse_time((row.get(self.time_column) or "").strip(), self.time_format)
        except (TypeError, ValueError) as exc:
            return Rejected(cfg.id, f"{cfg.path.name}:{line}: bad time: {exc}", raw)
        if stamp.tzinfo is None:
            stamp = stamp.replace(tzinfo=self._tz)
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
            return Reading(  # one id per measurement time: a duplicated row is stored once
                event_id=event_id_at(self.identity, cfg.id, "reading", stamp.isoformat()),
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

    def _with_rolling_aqi(self, reading: Reading) -> Reading:
        """The AQI of the reading's own period where it is the pollutant's, else of a rolling
        window's average once 75 % of it is covered, as for pushed readings (hourly PM2.5
        gets its 24-hour index); and the NowCast, as AirNow reports it each hour."""
        rolling = self.rolling.add(reading.source_id, reading.time, reading.values, reading.units,
                                   self.config.period_s or 3600)
        update: dict[str, object] = {}
        if reading.aqi is None and rolling is not None:
            update |= {"aqi": rolling[0], "aqi_pollutant": rolling[1]}
        nowcast = self.nowcast.add(reading.source_id, reading.time, reading.values, reading.units)
        if nowcast is not None:
            update |= {"nowcast_aqi": nowcast[0], "nowcast_pollutant": nowcast[1]}
        return reading.model_copy(update=update) if update else reading

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
            if previous is not None and item.time == previous:
                self.stats.duplicates += 1  # the same measurement time again: the first stands
                continue
            item = self._with_rolling_aqi(item)
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
