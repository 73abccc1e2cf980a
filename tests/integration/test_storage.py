"""The writer, migrations and notification log against a real TimescaleDB."""

from datetime import UTC, datetime, timedelta
from uuid import uuid4, uuid5

import asyncpg
import pytest

from detectors.events import Box, Detection
from ingest.events import Reading
from notifier.log import DeliveryKey
from rules.events import Alert
from storage.migrate import migrate
from storage.notification_log import PgNotificationLog
from storage.writer import EventWriter

pytestmark = pytest.mark.integration


async def test_tables_are_hypertables_and_migrations_are_idempotent(pg_pool: asyncpg.Pool) -> None:
    async with pg_pool.acquire() as connection:
        assert await migrate(connection) == []
        tables = {r["hypertable_name"] for r in await connection.fetch(
            "SELECT hypertable_name FROM timescaledb_information.hypertables")}
    assert {"readings", "detections", "alerts", "notifications"} <= tables


async def test_writer_stores_each_event_once(pg_pool: asyncpg.Pool) -> None:
    now = datetime.now(UTC)
    source = f"test-{uuid4()}"
    reading = Reading(source_id=source, time=now, values={"no2": 120.0}, units={"no2": "ug/m3"},
                      period_s=3600, aqi=60, aqi_pollutant="no2", nowcast_aqi=58, nowcast_pollutant="no2")
    detection = Detection(source_id=source, time=now, frame_event_id=uuid4(), model="m", model_version="1",
                          frame_width=10, frame_height=10, inference_ms=3.5,
                          boxes=(Box(label="person", class_id=0, score=0.9, x1=0, y1=0, x2=5, y2=5),))
    alert = Alert(source_id=source, time=now, alert_id=uuid4(), rule_id="r", title="t", severity="critical",
                  state="fired", group_key=source, started_at=now - timedelta(hours=2))
    writer = EventWriter(pg_pool)
    assert await writer.write([reading, detection, alert]) == 3
    assert await writer.write([reading, detection, alert]) == 0  # redelivered: nothing new
    row = await pg_pool.fetchrow(
        "SELECT values->>'no2' AS no2, aqi, nowcast_aqi FROM readings WHERE source_id=$1", source)
    assert row is not None and (float(row["no2"]), row["aqi"], row["nowcast_aqi"]) == (120.0, 60, 58)
    labels = await pg_pool.fetchval("SELECT labels FROM detections WHERE source_id=$1", source)
    assert labels == ["person"]
    assert await pg_pool.fetchval("SELECT count(*) FROM alerts WHERE source_id=$1", source) == 1


async def test_notification_log_claims_once_and_counts_attempts(pg_pool: asyncpg.Pool) -> None:
    log = PgNotificationLog(pg_pool)
    key = DeliveryKey(uuid4(), "fired", "on-call", "sms")
    first = await log.claim(key, max_attempts=2)
    assert (first.send, first.attempt) == (True, 1)
    await log.mark_failed(key, "timeout", permanent=False)
    second = await log.claim(key, max_attempts=2)
    assert (second.send, second.attempt) == (True, 2)
    await log.mark_sent(key, "SM123")
    third = await log.claim(key, max_attempts=5)
    assert (third.send, third.reason) == (False, "already sent")


async def test_source_events_and_drone_telemetry_are_stored(pg_pool: asyncpg.Pool) -> None:
    from ingest.events import DataQuality, DroneTelemetry, GeofenceEvent, GeoPoint, SourceHealth

    now = datetime.now(UTC)
    source = f"drone-{uuid4()}"
    here = GeoPoint(lat=52.5, lon=13.4)
    events = [
        SourceHealth(source_id=source, time=now, connected=True, frames_sent=3),
        DataQuality(source_id=source, time=now, issue="frozen", active=True, detail="identical frames"),
        GeofenceEvent(source_id=source, time=now, fence="mission", inside=False, position=here),
        DroneTelemetry(source_id=source, time=now, position=here, altitude_m=84.0, heading_deg=350.0),
    ]
    writer = EventWriter(pg_pool)
    assert await writer.write(events) == 4
    assert await writer.write(events) == 0
    rows = await pg_pool.fetch(
        "SELECT kind, issue, active FROM source_events WHERE source_id=$1 ORDER BY kind", source)
    assert [tuple(r) for r in rows] == [("geofence", "mission", False), ("health", None, None),
                                        ("quality", "frozen", True)]
    assert await pg_pool.fetchval("SELECT altitude_m FROM drone_telemetry WHERE source_id=$1", source) == 84.0


async def test_a_big_batch_split_over_connections_stores_each_event_once(pg_pool: asyncpg.Pool) -> None:
    source = f"split-{uuid4()}"
    start = datetime.now(UTC) - timedelta(hours=1)
    readings = [Reading(source_id=source, time=start + timedelta(milliseconds=i), values={"pm25": float(i)},
                        units={"pm25": "µg/m³"}) for i in range(4000)]
    writer = EventWriter(pg_pool, connections=3)
    assert [len(part) for part in writer._slices(readings[:2500])] == [1250, 1250]
    assert await writer.write(readings[:2500]) == 2500
    assert await writer.write(readings) == 1500  # slices that hold stored events take the careful path
    counts = await pg_pool.fetchrow(
        "SELECT count(*) AS rows, count(DISTINCT event_id) AS events FROM readings WHERE source_id = $1",
        source)
    assert counts is not None and (counts["rows"], counts["events"]) == (4000, 4000)


async def test_an_alert_transition_is_stored_once_whatever_its_time(pg_pool: asyncpg.Pool) -> None:
    """Two owners of one partition in a rebalance can both resolve an alert, at two event
    times: one transition, one row (the earliest of a batch, or the one stored first)."""
    now = datetime.now(UTC)
    source = f"test-{uuid4()}"
    alert_id = uuid4()

    def resolved(at: datetime) -> Alert:
        return Alert(source_id=source, time=at, alert_id=alert_id, rule_id="r", title="t",
                     severity="critical", state="resolved", group_key=source,
                     started_at=now - timedelta(hours=1), resolved_at=at,
                     event_id=uuid5(alert_id, "resolved"))

    fired = Alert(source_id=source, time=now - timedelta(hours=1), alert_id=alert_id, rule_id="r", title="t",
                  severity="critical", state="fired", group_key=source, started_at=now - timedelta(hours=1),
                  event_id=uuid5(alert_id, "fired"))
    writer = EventWriter(pg_pool)
    assert await writer.write([fired, resolved(now + timedelta(seconds=5)), resolved(now)]) == 2
    assert await writer.write([resolved(now + timedelta(seconds=9))]) == 0
    assert await writer.write([fired]) == 0
    rows = await pg_pool.fetch("SELECT state, time FROM alerts WHERE alert_id=$1 ORDER BY time", alert_id)
    assert [(r["state"], r["time"]) for r in rows] == [("fired", fired.time), ("resolved", now)]
