"""Stored events read back as events, in time order: for replaying history through rules.

Rows become the same pydantic events the pipeline produced (readings, detections,
data-quality events), so a rule under test sees exactly what the live engine saw.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import datetime
from typing import Any

import asyncpg

from detectors.events import Box, Detection, LineCrossing
from ingest.events import DataQuality, DroneTelemetry, Event, GeoPoint, Reading

BATCH_ROWS = 5000


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


def _reading(row: asyncpg.Record) -> Reading:
    position = GeoPoint(lat=row["lat"], lon=row["lon"]) if row["lat"] is not None else None
    return Reading(event_id=row["event_id"], source_id=row["source_id"], time=row["time"],
                   values=_json(row["values"]), units=_json(row["units"]), period_s=row["period_s"],
                   aqi=row["aqi"], aqi_pollutant=row["aqi_pollutant"], position=position,
                   nowcast_aqi=row["nowcast_aqi"], nowcast_pollutant=row["nowcast_pollutant"])


def _detection(row: asyncpg.Record) -> Detection:
    return Detection(
        event_id=row["event_id"], source_id=row["source_id"], time=row["time"],
        frame_event_id=row["frame_event_id"], kind=row["kind"] or "camera", model=row["model"],
        model_version=row["model_version"], frame_width=row["frame_width"] or 1,
        frame_height=row["frame_height"] or 1, inference_ms=row["inference_ms"],
        boxes=tuple(Box.model_validate(b) for b in _json(row["boxes"])),
        crossings=tuple(LineCrossing.model_validate(c) for c in _json(row["crossings"]) or []),
        snapshot=row["snapshot"],
        position=GeoPoint(lat=row["lat"], lon=row["lon"]) if row["lat"] is not None else None,
    )


def _telemetry(row: asyncpg.Record) -> DroneTelemetry:
    return DroneTelemetry(
        event_id=row["event_id"], source_id=row["source_id"], time=row["time"],
        position=GeoPoint(lat=row["lat"], lon=row["lon"]), altitude_m=row["altitude_m"],
        relative_altitude_m=row["relative_altitude_m"], heading_deg=row["heading_deg"],
        speed_m_s=row["speed_m_s"], battery_pct=row["battery_pct"])


def _quality(row: asyncpg.Record) -> DataQuality:
    return DataQuality.model_validate_json(row["body"])


QUERIES: dict[type, tuple[str, Callable[[asyncpg.Record], Event]]] = {
    Reading: ("SELECT * FROM readings WHERE time >= $1 AND time < $2"
              " AND ($3::text[] IS NULL OR source_id = ANY($3)) ORDER BY time", _reading),
    Detection: ("SELECT * FROM detections WHERE time >= $1 AND time < $2"
                " AND ($3::text[] IS NULL OR source_id = ANY($3)) ORDER BY time", _detection),
    DataQuality: ("SELECT * FROM source_events WHERE kind = 'quality' AND time >= $1 AND time < $2"
                  " AND ($3::text[] IS NULL OR source_id = ANY($3)) ORDER BY time", _quality),
    DroneTelemetry: ("SELECT * FROM drone_telemetry WHERE time >= $1 AND time < $2"
                     " AND ($3::text[] IS NULL OR source_id = ANY($3)) ORDER BY time", _telemetry),
}
LATE = ("SELECT (body->>'about_event')::uuid AS late FROM source_events WHERE kind = 'quality'"
        " AND issue = 'late' AND time >= $1 AND time < $2 AND ($3::text[] IS NULL OR source_id = ANY($3))")
"""The events the live worker found too late to evaluate (their `late` marks lie at their time)."""


async def history(
    pool: asyncpg.Pool, event_types: Sequence[type], start: datetime, end: datetime,
    sources: Sequence[str] | None = None,
) -> AsyncIterator[Event]:
    """Events of the given types in [start, end), merged in time order, without the ones the
    live worker marked late: it never evaluated them, so neither does a replay."""
    events: list[Event] = []
    chosen = list(sources) if sources else None
    async with pool.acquire() as connection:
        late = {row["late"] for row in await connection.fetch(LATE, start, end, chosen)}
    for event_type in event_types:
        query, build = QUERIES[event_type]
        async with pool.acquire() as connection, connection.transaction():
            async for row in connection.cursor(query, start, end, list(sources) if sources else None,
                                               prefetch=BATCH_ROWS):
                if row["event_id"] not in late:
                    events.append(build(row))
    events.sort(key=lambda e: e.time)
    for event in events:
        yield event
