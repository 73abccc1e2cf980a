"""History queries against the real TimescaleDB on known data: filters, keyset pages,
aggregates with gaps, exports, retention, hostile filters, and migrations from every
earlier version."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from uuid import uuid4

import asyncpg
import pyarrow.parquet as pq
import pytest
from pydantic import ValidationError

from detectors.events import Box, Detection
from ingest.events import GeoPoint, Reading
from notifier.events import AlertAck
from rules.events import Alert
from storage.aggregates import AggregateQuery, aggregate, build, reads_rollups
from storage.community import ROLLUPS, server_license
from storage.connection import Connection
from storage.export import export
from storage.migrate import available_migrations, migrate
from storage.retention import apply_retention
from storage.search import COLUMNS, EventQuery, QueryError, search
from storage.writer import EventWriter

pytestmark = pytest.mark.integration
T0 = datetime(2026, 3, 2, 8, tzinfo=UTC)


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


@pytest.fixture
async def known(pg_pool: asyncpg.Pool) -> str:
    """A small city with a unique prefix: 2 cameras, 2 sensors, 3 alerts, 1 acknowledgement."""
    run = uuid4().hex[:8]
    person = Box(label="person", class_id=0, score=0.9, x1=0, y1=0, x2=1, y2=1)
    car = Box(label="car", class_id=2, score=0.8, x1=0, y1=0, x2=1, y2=1)
    events: list[object] = []
    for minute in range(0, 180, 10):  # cam-a: a person every 10 min for 3 h; none in hour 2 (offline)
        if 60 <= minute < 120:
            continue
        events.append(Detection(source_id=f"cam-a-{run}", time=at(minute), frame_event_id=uuid4(), model="m",
                                model_version="1", frame_width=10, frame_height=10, boxes=(person, person),
                                inference_ms=1))
    events.append(Detection(source_id=f"cam-b-{run}", time=at(5), frame_event_id=uuid4(), model="m",
                            model_version="1", frame_width=10, frame_height=10, boxes=(car,), inference_ms=1))
    for minute in range(0, 180, 30):
        events.append(Reading(source_id=f"aq-x-{run}", time=at(minute), values={"pm25": 10.0 + minute},
                              units={"pm25": "µg/m³"}, aqi=40 + minute // 30,
                              position=GeoPoint(lat=51.5007, lon=-0.1246)))
        events.append(Reading(source_id=f"aq-y-{run}", time=at(minute), values={"pm25": 5.0},
                              units={"pm25": "µg/m³"}, aqi=20, position=GeoPoint(lat=51.6, lon=-0.3)))
    fire_id = uuid4()
    for i, (rule, severity, title, labels) in enumerate([
        (f"fire-{run}", "critical", "Fire near the market", {"area": "market"}),
        (f"crowd-{run}", "warning", "Crowd forming 100% sure", {"area": "station"}),
        (f"crowd-{run}", "warning", "Crowd forming again", {"area": "market"}),
    ]):
        alert_id = fire_id if i == 0 else uuid4()
        events.append(Alert.model_validate({
            "source_id": f"cam-a-{run}", "time": at(20 + i * 30), "alert_id": alert_id, "rule_id": rule,
            "title": title, "severity": severity, "state": "fired", "group_key": f"cam-a-{run}",
            "started_at": at(20 + i * 30), "labels": labels}))
    events.append(AlertAck(source_id=f"cam-a-{run}", time=at(26), alert_id=fire_id, rule_id=f"fire-{run}",
                           group_key=f"cam-a-{run}", by="ana", via="console"))
    await EventWriter(pg_pool).write(events)  # type: ignore[arg-type]
    return run


def window(**extra: object) -> dict[str, object]:
    return {"start": T0, "end": at(180), **extra}


async def test_filters_find_exactly_the_matching_events(pg_pool: asyncpg.Pool, known: str) -> None:
    run = known

    async def count(**filters: object) -> int:
        return len((await search(pg_pool, EventQuery.model_validate(window(limit=1000, **filters)))).rows)

    assert await count(kind="detections", sources=[f"cam-a-{run}"]) == 12
    assert await count(kind="detections", sources=[f"cam-a-{run}", f"cam-b-{run}"], classes=["car"]) == 1
    assert await count(kind="alerts", rules=[f"crowd-{run}"]) == 2
    assert await count(kind="alerts", sources=[f"cam-a-{run}"], severities=["critical"]) == 1
    assert await count(kind="alerts", sources=[f"cam-a-{run}"], label={"area": "market"}) == 2
    assert await count(kind="alerts", sources=[f"cam-a-{run}"], text="100%") == 1  # % is a literal here
    assert await count(kind="readings", sources=[f"aq-x-{run}", f"aq-y-{run}"],
                       near={"lat": 51.5, "lon": -0.125, "radius_m": 500}) == 6
    assert await count(kind="readings", sources=[f"aq-x-{run}", f"aq-y-{run}"],
                       bbox={"min_lat": 51.55, "min_lon": -0.4, "max_lat": 51.65, "max_lon": -0.2}) == 6
    assert await count(kind="alert_acks", rules=[f"fire-{run}"]) == 1


async def test_keyset_pages_walk_everything_once_in_time_order(pg_pool: asyncpg.Pool, known: str) -> None:
    seen: list[datetime] = []
    cursor = None
    while True:
        page = await search(pg_pool, EventQuery.model_validate(
            window(kind="detections", sources=[f"cam-a-{known}"], limit=5, after=cursor)))
        seen += [row["time"] for row in page.rows]
        cursor = page.next_cursor
        if cursor is None:
            break
    assert len(seen) == 12 and seen == sorted(seen, reverse=True) and len(set(seen)) == 12


async def test_aggregates_have_a_row_per_bucket_and_gaps_stay_gaps(pg_pool: asyncpg.Pool, known: str) -> None:
    per_class = AggregateQuery(name="detections_per_class", start=T0, end=at(180), sources=[f"cam-a-{known}"])
    rows = await aggregate(pg_pool, per_class)
    assert [(r["label"], r["frames"]) for r in rows] == [("person", 6), ("person", None), ("person", 6)]
    series = await aggregate(pg_pool, AggregateQuery(
        name="aqi_series", start=T0, end=at(180), bucket="1h", field="pm25", sources=[f"aq-x-{known}"]))
    assert [r["mean"] for r in series] == [25.0, 85.0, 145.0]
    rules = [f"crowd-{known}", f"fire-{known}"]
    alerts = await aggregate(pg_pool, AggregateQuery(
        name="alerts_per_rule", start=T0, end=at(180), bucket="1h", rules=rules))
    assert {(r["rule_id"], r["bucket"].hour, r["fired"]) for r in alerts if r["fired"]} == {
        (f"fire-{known}", 8, 1), (f"crowd-{known}", 8, 1), (f"crowd-{known}", 9, 1)}
    ack = await aggregate(pg_pool, AggregateQuery(name="time_to_ack", start=T0, end=at(180), bucket="1d",
                                                  rules=[f"fire-{known}"]))
    assert [(r["fired"], r["acknowledged"], r["mean_seconds"]) for r in ack] == [(1, 1, 360.0)]


@pytest.fixture
async def rollup_views(pg_pool: asyncpg.Pool) -> AsyncIterator[Connection]:
    """The hourly rollups as plain views in a schema of their own, first on the search path:
    the Apache edition has no continuous aggregates, but the same SELECTs give the same rows."""
    schema = f"rollups_{uuid4().hex[:8]}"
    async with pg_pool.acquire() as connection:
        await connection.execute(f"CREATE SCHEMA {schema}")
        for name, select in ROLLUPS.items():
            await connection.execute(f"CREATE VIEW {schema}.{name} AS {select}")
        await connection.execute(f"SET search_path = {schema}, public")
        try:
            yield connection
        finally:
            await connection.execute("RESET search_path")
            await connection.execute(f"DROP SCHEMA {schema} CASCADE")


async def test_hourly_rollups_answer_exactly_as_the_raw_rows(rollup_views: Connection, known: str) -> None:
    cameras, sensors = [f"cam-a-{known}", f"cam-b-{known}"], [f"aq-x-{known}", f"aq-y-{known}"]
    rules = [f"crowd-{known}", f"fire-{known}"]
    queries = [AggregateQuery(name="detections_per_class", start=T0, end=at(180), bucket=b, sources=cameras)
               for b in ("1h", "6h", "1d")]
    queries += [AggregateQuery(name="detections_per_class", start=T0, end=at(180), sources=cameras,
                               classes=["car"]),
                AggregateQuery(name="aqi_series", start=T0, end=at(180), bucket="1h", sources=sensors),
                AggregateQuery(name="aqi_series", start=T0, end=at(24 * 60), bucket="1d", sources=sensors),
                AggregateQuery(name="alerts_per_rule", start=T0, end=at(180), bucket="1h", rules=rules),
                AggregateQuery(name="alerts_per_rule", start=T0, end=at(180), bucket="6h", rules=rules,
                               sources=cameras[:1])]
    for query in queries:
        assert reads_rollups(query) and "_hourly" in build(query, rollups=True)[0], query
        raw = await aggregate(rollup_views, query)
        assert any(value is not None for row in raw for value in row.values()), query
        assert await aggregate(rollup_views, query, rollups=True) == raw, query


def test_rollups_are_read_only_where_they_give_the_same_answer() -> None:
    def query(**changes: object) -> AggregateQuery:
        return AggregateQuery.model_validate({"name": "aqi_series", "start": T0, "end": at(180), **changes})

    assert reads_rollups(query())
    assert not reads_rollups(query(start=at(30)))  # half an hour: the rollup has the whole one
    assert not reads_rollups(query(end=at(170)))
    assert not reads_rollups(query(bucket="15m"))
    assert not reads_rollups(query(field="pm25"))  # the rollup keeps the AQI only
    assert not reads_rollups(query(name="time_to_ack"))
    assert "_hourly" not in build(query(start=at(30)), rollups=True)[0]
    assert "_hourly" not in build(query(), rollups=False)[0]


async def test_exports_round_trip(pg_pool: asyncpg.Pool, known: str) -> None:
    query = EventQuery.model_validate(window(kind="readings", sources=[f"aq-x-{known}"]))
    page = await search(pg_pool, query)
    assert page.rows[0]["values"] == {"pm25": 160.0} and page.rows[0]["units"]["pm25"]  # objects, not text
    columns = COLUMNS["readings"]
    assert json.loads(export(page.rows, columns, "json"))[0]["values"] == {"pm25": 160.0}
    rows = list(csv.DictReader(io.StringIO(export(page.rows, columns, "csv").decode())))
    assert len(rows) == 6 and json.loads(rows[0]["values"]) == {"pm25": 160.0}
    table = pq.read_table(io.BytesIO(export(page.rows, columns, "parquet")))
    assert table.num_rows == 6 and table.column("aqi").to_pylist()[0] == 45
    geo = json.loads(export(page.rows, columns, "geojson"))
    assert len(geo["features"]) == 6 and geo["features"][0]["geometry"]["coordinates"] == [-0.1246, 51.5007]


@pytest.mark.parametrize("hostile", [
    {"sources": ["x' OR '1'='1"]},
    {"sources": ["x'); DROP TABLE alerts; --"]},
    {"text": "'; DROP TABLE alerts; --"},
    {"rules": ["' UNION SELECT * FROM pg_shadow --"]},
    {"label": {"area' OR true --": "x"}},
])
async def test_hostile_filters_match_nothing_and_harm_nothing(
    pg_pool: asyncpg.Pool, known: str, hostile: dict[str, object]
) -> None:
    page = await search(pg_pool, EventQuery.model_validate(window(kind="alerts", **hostile)))
    assert page.rows == []
    assert await pg_pool.fetchval("SELECT count(*) FROM alerts WHERE rule_id = $1", f"fire-{known}") == 1


def test_filters_that_do_not_apply_or_are_malformed_are_refused() -> None:
    with pytest.raises(ValidationError, match="classes cannot filter readings"):
        EventQuery.model_validate(window(kind="readings", classes=["car"]))
    with pytest.raises(ValidationError):
        EventQuery.model_validate(window(kind="alerts; DROP TABLE alerts"))
    with pytest.raises(ValidationError, match="pattern"):
        AggregateQuery(name="aqi_series", start=T0, end=at(60), field="pm25'); DROP TABLE readings; --")
    with pytest.raises(QueryError):
        from storage.search import build

        build(EventQuery.model_validate(window(kind="alerts", after="not-a-cursor")))


async def test_retention_drops_old_chunks_only(pg_pool: asyncpg.Pool) -> None:
    run = uuid4().hex[:8]
    now = datetime.now(UTC)
    old, recent = now - timedelta(days=200), now - timedelta(days=1)
    await EventWriter(pg_pool).write([
        Reading(source_id=f"aq-ret-{run}", time=moment, values={"pm25": 1.0}, units={"pm25": "µg/m³"})
        for moment in (old, recent)])
    async with pg_pool.acquire() as connection:
        assert await server_license(connection) in ("apache", "timescale")
        dropped = await apply_retention(connection, {"readings": timedelta(days=100)})
    assert dropped["readings"] >= 1
    times = await pg_pool.fetch("SELECT time FROM readings WHERE source_id = $1", f"aq-ret-{run}")
    assert [r["time"] for r in times] == [recent]


async def test_migrations_apply_from_empty_and_from_every_earlier_version(
    dsn: str, pg_pool: asyncpg.Pool
) -> None:
    versions = [name for name, _ in available_migrations()]
    for done in range(len(versions) + 1):
        database = f"cw_migrate_{uuid4().hex[:8]}"
        await pg_pool.execute(f"CREATE DATABASE {database}")
        connection = await asyncpg.connect(dsn.rsplit("/", 1)[0] + f"/{database}")
        try:
            await connection.execute("CREATE TABLE schema_migrations"
                                     " (version text PRIMARY KEY, applied_at timestamptz DEFAULT now())")
            for name, sql in available_migrations()[:done]:  # a database left at an earlier version
                await connection.execute(sql)
                await connection.execute("INSERT INTO schema_migrations (version) VALUES ($1)", name)
            applied = await migrate(connection)
            assert applied == versions[done:]
            assert await migrate(connection) == []  # and again: nothing
            recorded = [r["version"] for r in await connection.fetch("SELECT version FROM schema_migrations")]
            assert sorted(recorded) == versions
            await assert_writable_tables(connection)
        finally:
            await connection.close()
            await pg_pool.execute(f"DROP DATABASE {database}")


async def assert_writable_tables(connection: asyncpg.Connection) -> None:
    """Every table the writer knows exists with the columns it writes."""
    from storage.rows import TABLES

    for spec in TABLES.values():
        await connection.execute(f"SELECT {', '.join(spec.columns)} FROM {spec.table} LIMIT 0")


async def test_the_http_api_serves_events_aggregates_and_exports(
    tmp_path: Path, dsn: str, bootstrap: str, pg_pool: asyncpg.Pool, known: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from fastapi.testclient import TestClient

    from citywatch.console.app import create_app
    from citywatch.settings import load_settings
    from tests.console_helpers import make_user, sign_in

    monkeypatch.setenv("CITYWATCH_CONSOLE__SESSION_SECRET", uuid4().hex)
    (tmp_path / "citywatch.yaml").write_text(
        f'broker: {{url: "kafka://{bootstrap}", topic_prefix: h{known}}}\nstorage: {{dsn: "{dsn}"}}\n')
    await make_user(pg_pool, f"analyst-{known}", "viewer")
    span = {"start": T0.isoformat(), "end": at(180).isoformat()}
    with TestClient(create_app(load_settings(tmp_path / "citywatch.yaml"))) as client:
        sign_in(client, f"analyst-{known}")
        first = client.get("/api/events/detections", params={**span, "source": f"cam-a-{known}", "limit": 10})
        assert first.status_code == 200 and len(first.json()["rows"]) == 10
        rest = client.get("/api/events/detections",
                          params={**span, "source": f"cam-a-{known}", "after": first.json()["next_cursor"]})
        assert len(rest.json()["rows"]) == 2 and rest.json()["next_cursor"] is None
        sensors = [f"aq-x-{known}", f"aq-y-{known}"]
        near = client.get("/api/events/readings",
                          params={**span, "source": sensors, "near": "51.5,-0.125,500"})
        assert len(near.json()["rows"]) == 6
        assert near.json()["rows"][0]["values"]["pm25"] == 160.0  # an object, as the CLI shows it
        misspelt = client.get("/api/events/readings", params={**span, "sensor": sensors[0]})
        assert misspelt.status_code == 422 and "unknown query parameter 'sensor'" in misspelt.text
        assert "source" in misspelt.json()["detail"][0]["msg"]  # and the ones it knows
        series = client.get("/api/aggregates/detections_per_class",
                            params={**span, "source": f"cam-a-{known}", "class": "person"}).json()
        assert [row["frames"] for row in series] == [6, None, 6]
        geo = client.get("/api/export/readings.geojson", params={**span, "source": f"aq-x-{known}"})
        assert geo.headers["content-type"] == "application/geo+json" and len(geo.json()["features"]) == 6
        csv_text = client.get("/api/export/alerts.csv", params={**span, "rule": f"fire-{known}"}).text
        assert csv_text.splitlines()[0].startswith("time,event_id,alert_id")
        assert len(csv_text.splitlines()) == 2
        refused = client.get("/api/events/readings", params={**span, "class": "car"})
        assert refused.status_code == 422 and "classes cannot filter readings" in refused.text
        assert client.get("/api/events/alerts", params={**span, "after": "garbage"}).status_code == 400
        assert client.get("/api/events/users", params=span).status_code == 422
        assert "/api/events/{kind}" in client.get("/openapi.json").json()["paths"]


def test_the_cli_prints_and_exports_with_the_same_filters(tmp_path: Path, dsn: str, known: str) -> None:
    from click.testing import CliRunner

    from citywatch.cli import main

    config = tmp_path / "citywatch.yaml"
    config.write_text(f'storage: {{dsn: "{dsn}"}}\n')
    span = ["--from", T0.isoformat(), "--to", at(180).isoformat()]
    runner = CliRunner()
    table = runner.invoke(main, ["--config", str(config), "history", "events", "alerts", *span,
                                 "--source", f"cam-a-{known}", "--label", "area=market"])
    assert table.exit_code == 0, table.output
    assert table.output.count(f"cam-a-{known}") == 2 * 2  # two alerts; source and group key columns
    parquet = tmp_path / "readings.parquet"
    cli = ["--config", str(config), "history"]
    exported = runner.invoke(main, [*cli, "events", "readings", *span, "--source", f"aq-x-{known}",
                                    "--format", "parquet", "--output", str(parquet)])
    assert exported.exit_code == 0 and pq.read_table(parquet).num_rows == 6
    series = runner.invoke(main, [*cli, "aggregate", "detections_per_class", *span,
                                  "--source", f"cam-a-{known}"])
    assert series.exit_code == 0 and len(series.output.strip().splitlines()) == 4  # header + 3 hours
    wrong = runner.invoke(main, [*cli, "events", "readings", *span, "--class", "car"])
    assert wrong.exit_code != 0 and "classes cannot filter readings" in wrong.output


async def test_a_replay_leaves_out_what_the_live_worker_marked_late(pg_pool: asyncpg.Pool) -> None:
    from rules.timekeeping import late_mark
    from storage.history import history

    run = uuid4().hex[:8]
    on_time, late = (Reading(source_id=f"aq-late-{run}", time=at(m), values={"pm25": 9.0},
                             units={"pm25": "µg/m³"}) for m in (1, 2))
    await EventWriter(pg_pool).write([on_time, late, late_mark(late, 60_000_000, 0)])
    replayed = [e async for e in history(pg_pool, [Reading], at(0), at(5), [f"aq-late-{run}"])]
    assert [e.event_id for e in replayed] == [on_time.event_id]
