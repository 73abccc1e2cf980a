"""Dashboard aggregates with `time_bucket`: detections per class per camera, an air-quality
series per sensor, alerts per rule, and the mean time to acknowledge.

Every series has a row for every bucket of the range; a bucket without data is NULL, not
zero and not interpolated, so a camera that was offline shows a gap instead of a quiet
street. Bucket widths come from a fixed list; every value is a bind parameter. Where the
server keeps hourly rollups (community license, storage.community), whole-hour queries read
them instead of the raw rows.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any, Literal

import asyncpg
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from storage.connection import Connection

AggregateName = Literal["detections_per_class", "aqi_series", "alerts_per_rule", "time_to_ack"]
BUCKETS: dict[str, timedelta] = {
    "1m": timedelta(minutes=1), "5m": timedelta(minutes=5), "15m": timedelta(minutes=15),
    "1h": timedelta(hours=1), "6h": timedelta(hours=6), "1d": timedelta(days=1),
}
MAX_BUCKETS = 5000
_FIELD = r"^[a-z][a-z0-9_]{0,31}$"


class AggregateQuery(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: AggregateName
    start: AwareDatetime
    end: AwareDatetime
    bucket: Literal["1m", "5m", "15m", "1h", "6h", "1d"] = "1h"
    sources: list[str] = Field(default_factory=list, max_length=1000)
    classes: list[str] = Field(default_factory=list, max_length=100)
    rules: list[str] = Field(default_factory=list, max_length=1000)
    field: str = Field(default="aqi", pattern=_FIELD, description="aqi_series: 'aqi' or a pollutant")

    @model_validator(mode="after")
    def _bounded(self) -> AggregateQuery:
        if self.end <= self.start:
            raise ValueError("'end' must be after 'start'")
        if (self.end - self.start) / BUCKETS[self.bucket] > MAX_BUCKETS:
            raise ValueError(f"more than {MAX_BUCKETS} buckets: choose a wider bucket or a shorter range")
        return self


_SERIES = """
WITH buckets AS (
    SELECT generate_series(time_bucket(:bucket::interval, :start::timestamptz),
                           :end::timestamptz - interval '1 microsecond', :bucket::interval) AS bucket),
data AS ({data}),
keys AS (SELECT DISTINCT {keys} FROM data)
SELECT b.bucket, {key_columns}, {values}
  FROM buckets b CROSS JOIN keys k
  LEFT JOIN data d ON d.bucket = b.bucket AND {join}
 ORDER BY {key_columns}, b.bucket
"""

_QUERIES: dict[str, dict[str, str]] = {
    "detections_per_class": {
        "data": "SELECT time_bucket(:bucket::interval, time) AS bucket, source_id, label, count(*) AS frames"
                " FROM detections, unnest(labels) AS label WHERE time >= :start AND time < :end"
                " AND (cardinality(:sources::text[]) = 0 OR source_id = ANY(:sources::text[]))"
                " AND (cardinality(:classes::text[]) = 0 OR label = ANY(:classes::text[])) GROUP BY 1, 2, 3",
        "keys": "source_id, label", "key_columns": "k.source_id, k.label", "values": "d.frames",
        "join": "d.source_id = k.source_id AND d.label = k.label",
    },
    "aqi_series": {
        "data": "SELECT time_bucket(:bucket::interval, time) AS bucket, source_id,"
                " avg(CASE WHEN :field::text = 'aqi' THEN aqi::double precision"
                " ELSE (values ->> :field::text)::double precision END) AS mean,"
                " count(*) AS readings"
                " FROM readings WHERE time >= :start AND time < :end"
                " AND (cardinality(:sources::text[]) = 0 OR source_id = ANY(:sources::text[]))"
                " AND (:field::text = 'aqi' OR values ? :field::text) GROUP BY 1, 2",
        "keys": "source_id", "key_columns": "k.source_id", "values": "d.mean, d.readings",
        "join": "d.source_id = k.source_id",
    },
    "alerts_per_rule": {
        "data": "SELECT time_bucket(:bucket::interval, time) AS bucket, rule_id, count(*) AS fired"
                " FROM alerts WHERE time >= :start AND time < :end AND state = 'fired' AND reminder = 0"
                " AND (cardinality(:sources::text[]) = 0 OR source_id = ANY(:sources::text[]))"
                " AND (cardinality(:rules::text[]) = 0 OR rule_id = ANY(:rules::text[])) GROUP BY 1, 2",
        "keys": "rule_id", "key_columns": "k.rule_id", "values": "d.fired",
        "join": "d.rule_id = k.rule_id",
    },
    "time_to_ack": {
        "data": "SELECT time_bucket(:bucket::interval, a.time) AS bucket, a.rule_id, count(*) AS fired,"
                " count(k.first_ack) AS acknowledged,"
                " avg(extract(epoch FROM k.first_ack - a.started_at)) AS mean_seconds"
                " FROM alerts a LEFT JOIN LATERAL (SELECT min(time) AS first_ack FROM alert_acks"
                " WHERE alert_acks.alert_id = a.alert_id) k ON TRUE"
                " WHERE a.time >= :start AND a.time < :end AND a.state = 'fired' AND a.reminder = 0"
                " AND (cardinality(:sources::text[]) = 0 OR a.source_id = ANY(:sources::text[]))"
                " AND (cardinality(:rules::text[]) = 0 OR a.rule_id = ANY(:rules::text[])) GROUP BY 1, 2",
        "keys": "rule_id", "key_columns": "k.rule_id", "values": "d.fired, d.acknowledged, d.mean_seconds",
        "join": "d.rule_id = k.rule_id",
    },
}


_SOURCES = "(cardinality(:sources::text[]) = 0 OR h.source_id = ANY(:sources::text[]))"
_ROLLUP_DATA: dict[str, str] = {
    "detections_per_class": "SELECT time_bucket(:bucket::interval, h.bucket) AS bucket, h.source_id, label,"
                            " sum(h.frames)::bigint AS frames"
                            " FROM detections_hourly h, unnest(h.labels) AS label"
                            f" WHERE h.bucket >= :start AND h.bucket < :end AND {_SOURCES}"
                            " AND (cardinality(:classes::text[]) = 0 OR label = ANY(:classes::text[]))"
                            " GROUP BY 1, 2, 3",
    "aqi_series": "SELECT time_bucket(:bucket::interval, h.bucket) AS bucket, h.source_id,"
                  " sum(h.aqi_sum)::double precision / NULLIF(sum(h.aqi_count), 0)::double precision AS mean,"
                  " sum(h.readings)::bigint AS readings FROM readings_hourly h"
                  f" WHERE h.bucket >= :start AND h.bucket < :end AND {_SOURCES} GROUP BY 1, 2",
    "alerts_per_rule": "SELECT time_bucket(:bucket::interval, h.bucket) AS bucket, h.rule_id,"
                       " sum(h.fired)::bigint AS fired FROM alerts_hourly h"
                       f" WHERE h.bucket >= :start AND h.bucket < :end AND {_SOURCES}"
                       " AND (cardinality(:rules::text[]) = 0 OR h.rule_id = ANY(:rules::text[]))"
                       " GROUP BY 1, 2",
}
"""The same series from the hourly rollups (storage.community.ROLLUPS), where they exist."""
_HOUR_S = 3600


def reads_rollups(query: AggregateQuery) -> bool:
    """Whether the hourly rollups answer exactly what the raw tables would: whole hours only,
    buckets of an hour or more, and series the rollups keep (AQI, not any pollutant)."""
    return (query.name in _ROLLUP_DATA and BUCKETS[query.bucket] >= timedelta(hours=1)
            and query.start.timestamp() % _HOUR_S == 0 and query.end.timestamp() % _HOUR_S == 0
            and (query.name != "aqi_series" or query.field == "aqi"))


_NAMED = re.compile(r":([a-z]+)\b")


def build(query: AggregateQuery, rollups: bool = False) -> tuple[str, list[Any]]:
    """The SQL with numbered parameters: only those the query uses, in order. With `rollups`
    (the continuous aggregates exist), from them where they give the same answer."""
    values: dict[str, Any] = {
        "bucket": BUCKETS[query.bucket], "start": query.start, "end": query.end, "sources": query.sources,
        "classes": query.classes, "field": query.field, "rules": query.rules,
    }
    order: list[str] = []

    def number(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in values:
            return match.group(0)  # not a parameter (e.g. '::interval' is matched as ':interval')
        if name not in order:
            order.append(name)
        return f"${order.index(name) + 1}"

    parts = _QUERIES[query.name]
    if rollups and reads_rollups(query):
        parts = {**parts, "data": _ROLLUP_DATA[query.name]}
    text = _NAMED.sub(number, _SERIES.format(**parts))
    return text, [values[name] for name in order]


async def aggregate(
    db: asyncpg.Pool | Connection, query: AggregateQuery, rollups: bool = False
) -> list[dict[str, Any]]:
    text, args = build(query, rollups)
    rows = await db.fetch(text, *args)
    return [dict(row) for row in rows]
