"""Finding events: filters on time, source, class, severity, rule, label, place and text,
sorted by time, paged by keyset (a cursor, not an offset, so page 1,000 costs what page 1
does). Every value travels as a bind parameter and every column name comes from the
whitelists below, so no filter can inject SQL.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal
from uuid import UUID

import asyncpg
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from storage.connection import Connection

EventKind = Literal["readings", "detections", "alerts", "notifications", "source_events", "drone_telemetry",
                    "alert_acks"]
MAX_PAGE = 10_000

# What each kind returns (and may be filtered on), in order.
COLUMNS: dict[str, tuple[str, ...]] = {
    "readings": ("time", "event_id", "source_id", "values", "units", "aqi", "aqi_pollutant", "nowcast_aqi",
                 "nowcast_pollutant", "lat", "lon"),
    "detections": ("time", "event_id", "source_id", "model", "box_count", "labels", "inference_ms",
                   "snapshot", "kind"),
    "alerts": ("time", "event_id", "alert_id", "rule_id", "state", "severity", "source_id", "group_key",
               "title", "started_at", "resolved_at", "labels", "muted", "reminder"),
    "notifications": ("time", "event_id", "alert_id", "alert_state", "rule_id", "recipient", "channel",
                      "status", "attempts", "step", "error"),
    "source_events": ("time", "event_id", "source_id", "kind", "issue", "active"),
    "drone_telemetry": ("time", "event_id", "source_id", "lat", "lon", "altitude_m", "speed_m_s",
                        "battery_pct"),
    "alert_acks": ("time", "event_id", "alert_id", "rule_id", "group_key", "by_whom", "via", "note"),
}
LOCATED = frozenset({"readings", "drone_telemetry"})


class QueryError(ValueError):
    """A filter that does not apply to this kind of event (said plainly, never run)."""


class BoundingBox(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    min_lat: float = Field(ge=-90, le=90)
    min_lon: float = Field(ge=-180, le=180)
    max_lat: float = Field(ge=-90, le=90)
    max_lon: float = Field(ge=-180, le=180)


class Radius(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)
    radius_m: float = Field(gt=0, le=500_000)


class EventQuery(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: EventKind
    start: AwareDatetime
    end: AwareDatetime
    sources: list[str] = Field(default_factory=list, max_length=1000)
    classes: list[str] = Field(
        default_factory=list, max_length=100, description="detections: any of these labels")
    severities: list[Literal["info", "warning", "critical"]] = Field(default_factory=list)
    rules: list[str] = Field(default_factory=list, max_length=1000)
    label: dict[str, str] = Field(default_factory=dict, description="alerts: labels containing these pairs")
    bbox: BoundingBox | None = None
    near: Radius | None = None
    text: str | None = Field(default=None, max_length=200, description="alerts: words in the title")
    limit: int = Field(default=100, ge=1, le=MAX_PAGE)
    after: str | None = Field(default=None, description="the cursor of the previous page")

    @model_validator(mode="after")
    def _applicable(self) -> EventQuery:
        if self.end <= self.start:
            raise ValueError("'end' must be after 'start'")
        wrong = [
            name for name, given, kinds in (
                ("classes", self.classes, {"detections"}),
                ("severities", self.severities, {"alerts"}),
                ("rules", self.rules, {"alerts", "notifications", "alert_acks"}),
                ("label", self.label, {"alerts"}),
                ("text", self.text, {"alerts"}),
                ("bbox", self.bbox, LOCATED),
                ("near", self.near, LOCATED),
            ) if given and self.kind not in kinds
        ]
        if wrong:
            raise ValueError(f"{', '.join(wrong)} cannot filter {self.kind}")
        return self


@dataclass(frozen=True)
class Page:
    rows: list[dict[str, Any]]
    next_cursor: str | None


async def fetch_decoded(connection: Connection, text: str, args: list[Any]) -> list[dict[str, Any]]:
    """Rows as dicts, with json and jsonb columns as the objects they hold (asyncpg gives
    their text): every output, the API's JSON as much as the CLI's, shows `values` as an
    object. The columns are told by their type, never by what a text looks like."""
    statement = await connection.prepare(text)
    structured = [attribute.name for attribute in statement.get_attributes()
                  if attribute.type.name in ("json", "jsonb")]
    rows = [dict(row) for row in await statement.fetch(*args)]
    for row in rows:
        for name in structured:
            if isinstance(row[name], str):
                row[name] = json.loads(row[name])
    return rows


def encode_cursor(time: datetime, event_id: UUID) -> str:
    return base64.urlsafe_b64encode(f"{time.isoformat()}|{event_id}".encode()).decode()


def decode_cursor(cursor: str) -> tuple[datetime, UUID]:
    try:
        moment, _, event_id = base64.urlsafe_b64decode(cursor.encode()).decode().partition("|")
        return datetime.fromisoformat(moment), UUID(event_id)
    except (ValueError, binascii.Error, UnicodeDecodeError) as exc:
        raise QueryError("not a cursor from a previous page") from exc


class _Sql:
    """WHERE clauses with numbered parameters."""

    def __init__(self) -> None:
        self.clauses: list[str] = []
        self.args: list[Any] = []

    def param(self, value: Any) -> str:
        self.args.append(value)
        return f"${len(self.args)}"

    def where(self, clause: str) -> None:
        self.clauses.append(clause)


def build(query: EventQuery) -> tuple[str, list[Any]]:
    """The SQL and its parameters (exposed for tests of what can and cannot get in)."""
    sql = _Sql()
    sql.where(f"time >= {sql.param(query.start)}")
    sql.where(f"time < {sql.param(query.end)}")
    if query.sources:
        column = "group_key" if query.kind == "alert_acks" else "source_id"
        sql.where(f"{column} = ANY({sql.param(query.sources)}::text[])")
    if query.classes:
        sql.where(f"labels && {sql.param(query.classes)}::text[]")
    if query.severities:
        sql.where(f"severity = ANY({sql.param(list(query.severities))}::text[])")
    if query.rules:
        sql.where(f"rule_id = ANY({sql.param(query.rules)}::text[])")
    if query.label:
        import json

        sql.where(f"labels @> {sql.param(json.dumps(query.label))}::jsonb")
    if query.text:
        pattern = "%" + query.text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        sql.where(f"title ILIKE {sql.param(pattern)}")
    if query.bbox is not None:
        box = query.bbox
        sql.where(f"lat BETWEEN {sql.param(box.min_lat)}::float8 AND {sql.param(box.max_lat)}::float8")
        sql.where(f"lon BETWEEN {sql.param(box.min_lon)}::float8 AND {sql.param(box.max_lon)}::float8")
    if query.near is not None:
        near = query.near
        lat_span = near.radius_m / 111_320
        lon_span = near.radius_m / (111_320 * max(0.01, math.cos(math.radians(near.lat))))
        lat, lon = f"{sql.param(near.lat)}::float8", f"{sql.param(near.lon)}::float8"
        dlat, dlon = f"{sql.param(lat_span)}::float8", f"{sql.param(lon_span)}::float8"
        sql.where(f"lat BETWEEN {lat} - {dlat} AND {lat} + {dlat}")
        sql.where(f"lon BETWEEN {lon} - {dlon} AND {lon} + {dlon}")
        radius = f"{sql.param(near.radius_m)}::float8"
        sql.where(  # haversine, after the box has done the cheap part
            f"2 * 6371008.8 * asin(sqrt(power(sin(radians(lat - {lat}) / 2), 2) + cos(radians({lat}))"
            f" * cos(radians(lat)) * power(sin(radians(lon - {lon}) / 2), 2))) <= {radius}")
    if query.after:
        moment, event_id = decode_cursor(query.after)
        sql.where(f"(time, event_id) < ({sql.param(moment)}, {sql.param(event_id)})")
    columns = ", ".join(COLUMNS[query.kind])
    text = (f"SELECT {columns} FROM {query.kind} WHERE {' AND '.join(sql.clauses)}"
            f" ORDER BY time DESC, event_id DESC LIMIT {sql.param(query.limit + 1)}")
    return text, sql.args


async def search(db: asyncpg.Pool | asyncpg.Connection, query: EventQuery) -> Page:
    text, args = build(query)
    if isinstance(db, asyncpg.Pool):
        async with db.acquire() as connection:
            rows = await fetch_decoded(connection, text, args)
    else:
        rows = await fetch_decoded(db, text, args)
    more = len(rows) > query.limit
    rows = rows[: query.limit]
    cursor = encode_cursor(rows[-1]["time"], rows[-1]["event_id"]) if more and rows else None
    return Page(rows, cursor)
