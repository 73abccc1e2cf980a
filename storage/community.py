"""TimescaleDB's community features, used only where the server has them.

A laptop builds the Apache edition (`SHOW timescaledb.license` = `apache`); production runs
the official image with the community `timescale` license. There, and only there, the
database does the upkeep itself:

- compression of chunks older than a week (segmented by source, so one camera's history
  stays one read), by `add_compression_policy`;
- retention by `add_retention_policy` (the Apache edition drops chunks from our own job);
- continuous aggregates, hourly rollups of the dashboard series (`ROLLUPS`), filled once
  from all history, then refreshed by a policy and read with real-time aggregation, so the
  newest hour is never missing.

Every statement is idempotent (`IF NOT EXISTS`, existing policies compared and replaced
only when the configured interval changed), so this runs at every worker start.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import asyncpg

from storage.connection import Connection

log = logging.getLogger(__name__)

COMMUNITY_LICENSE = "timescale"
_LOCK_KEY = 0x63_77_63_66  # 'cwcf': one worker sets the features up while the others wait

COMPRESS_AFTER: dict[str, timedelta] = {
    "readings": timedelta(days=7),
    "detections": timedelta(days=7),
    "drone_telemetry": timedelta(days=7),
    "source_events": timedelta(days=30),
    "alerts": timedelta(days=30),
}
"""The tables that grow with the city; each has `source_id`, the segment key."""

ROLLUPS: dict[str, str] = {
    "detections_hourly": (
        "SELECT time_bucket(INTERVAL '1 hour', time) AS bucket, source_id, labels, count(*) AS frames"
        " FROM detections GROUP BY 1, 2, 3"),
    "readings_hourly": (
        "SELECT time_bucket(INTERVAL '1 hour', time) AS bucket, source_id, sum(aqi) AS aqi_sum,"
        " count(aqi) AS aqi_count, count(*) AS readings FROM readings GROUP BY 1, 2"),
    "alerts_hourly": (
        "SELECT time_bucket(INTERVAL '1 hour', time) AS bucket, rule_id, source_id, count(*) AS fired"
        " FROM alerts WHERE state = 'fired' AND reminder = 0 GROUP BY 1, 2, 3"),
}
"""Hourly rollups of the aggregates' series (storage.aggregates reads them when they exist).
Sums and counts, never averages, so they roll up again into 6-hour and daily buckets."""

ROLLUP_REFRESH = {"start_offset": timedelta(days=30), "end_offset": timedelta(hours=1),
                  "schedule_interval": timedelta(minutes=30)}
"""Refreshed over the last 30 days: late data within them is folded in; rollups of older
hours stay when retention drops their raw chunks (a year of hourly rows per camera is small)."""


@dataclass(frozen=True)
class Statement:
    sql: str
    args: tuple[Any, ...] = ()
    in_transaction: bool = True


def compression_statements(table: str, after: timedelta) -> list[Statement]:
    return [
        Statement(f"ALTER TABLE {table} SET (timescaledb.compress, timescaledb.compress_segmentby"
                  " = 'source_id', timescaledb.compress_orderby = 'time DESC')"),
        Statement("SELECT add_compression_policy($1::regclass, compress_after => $2::interval,"
                  " if_not_exists => TRUE)", (table, after)),
    ]


def rollup_create(name: str) -> Statement:
    return Statement(f"CREATE MATERIALIZED VIEW IF NOT EXISTS {name}"
                     " WITH (timescaledb.continuous, timescaledb.materialized_only = false)"
                     f" AS {ROLLUPS[name]} WITH NO DATA")


def rollup_fill(name: str) -> Statement:
    """Materialize all history up to the policy's end (a procedure: not inside a transaction).
    The policy alone would fill only its last 30 days, and older hours would be missing."""
    return Statement("CALL refresh_continuous_aggregate($1::regclass, NULL, now() - $2::interval)",
                     (name, ROLLUP_REFRESH["end_offset"]), in_transaction=False)


def rollup_policy(name: str) -> Statement:
    refresh = ROLLUP_REFRESH
    return Statement(
        "SELECT add_continuous_aggregate_policy($1::regclass, start_offset => $2::interval,"
        " end_offset => $3::interval, schedule_interval => $4::interval, if_not_exists => TRUE)",
        (name, refresh["start_offset"], refresh["end_offset"], refresh["schedule_interval"]))


def rollup_statements(name: str) -> list[Statement]:
    return [rollup_create(name), rollup_fill(name), rollup_policy(name)]


def retention_statements(table: str, keep: timedelta) -> list[Statement]:
    """Replace the policy (the caller runs this only when the interval changed or none exists)."""
    return [
        Statement("SELECT remove_retention_policy($1::regclass, if_exists => TRUE)", (table,)),
        Statement("SELECT add_retention_policy($1::regclass, drop_after => $2::interval)", (table, keep)),
    ]


async def server_license(db: Connection) -> str:
    """'apache' or 'timescale' (the community license with policies and aggregates)."""
    return str(await db.fetchval("SHOW timescaledb.license"))


async def policy_interval(db: Connection, proc: str, table: str, key: str) -> timedelta | None:
    """The interval of an existing policy job on `table` (e.g. proc 'policy_retention',
    key 'drop_after'), or None where there is none."""
    value = await db.fetchval(
        "SELECT (config ->> $3)::interval FROM timescaledb_information.jobs"
        " WHERE proc_name = $1 AND hypertable_name = $2 LIMIT 1", proc, table, key)
    return value if isinstance(value, timedelta) else None


async def _run(db: Connection, *statements: Statement) -> None:
    for statement in statements:
        await db.execute(statement.sql, *statement.args)


async def ensure_retention_policies(db: Connection, retention: dict[str, timedelta]) -> list[str]:
    """Community license: the database drops old chunks; returns the tables whose policy changed."""
    changed = []
    for table, keep in retention.items():
        if await policy_interval(db, "policy_retention", table, "drop_after") != keep:
            async with db.transaction():
                await _run(db, *retention_statements(table, keep))
            changed.append(table)
    return changed


async def ensure_community_features(db: Connection) -> bool:
    """Compression and rollups where the server has the community license; False (and
    nothing done) on the Apache edition. Safe to run at every start, by many workers."""
    if await server_license(db) != COMMUNITY_LICENSE:
        return False
    await db.execute("SELECT pg_advisory_lock($1)", _LOCK_KEY)
    try:
        for table, after in COMPRESS_AFTER.items():
            async with db.transaction():
                if await policy_interval(db, "policy_compression", table, "compress_after") is None:
                    await _run(db, *compression_statements(table, after))
        ready = {r["name"] for r in await db.fetch("SELECT name FROM rollups_ready")}
        for name in ROLLUPS:
            if name in ready:
                continue
            log.info("filling the rollup %s from all stored history (once)", name)
            await _run(db, rollup_create(name))
            await _run(db, rollup_fill(name))  # a worker dying here fills the rest next time
            async with db.transaction():
                await _run(db, rollup_policy(name))
                await db.execute("INSERT INTO rollups_ready (name) VALUES ($1) ON CONFLICT DO NOTHING", name)
    finally:
        await db.execute("SELECT pg_advisory_unlock($1)", _LOCK_KEY)
    log.info("community features in place: compression of %s, rollups %s",
             ", ".join(COMPRESS_AFTER), ", ".join(ROLLUPS))
    return True


async def rollups_available(db: asyncpg.Pool | Connection) -> bool:
    """True when every rollup exists as a continuous aggregate and holds all history
    (storage.aggregates reads them then, and the raw rows before)."""
    count = await db.fetchval(
        "SELECT count(*) FROM timescaledb_information.continuous_aggregates c"
        " JOIN rollups_ready r ON r.name = c.view_name WHERE c.view_name = ANY($1::text[])", list(ROLLUPS))
    return bool(count == len(ROLLUPS))
