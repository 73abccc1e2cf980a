"""Storage throughput and recovery: the writer against raw COPY, and catch-up after an outage.

Starts a local TimescaleDB (and, for the outage part, a Tansu broker and a worker). Prints
one JSON object:
- raw: rows/s of a bare asyncpg COPY of the same, already converted rows into a hypertable
  shaped like readings (the baseline: no event-to-row conversion, no conflict handling),
  over one connection and split over the writer's connections as the writer splits;
- writer: rows/s of the EventWriter (COPY straight in; a batch holding a stored event goes
  through staging + INSERT ... ON CONFLICT DO NOTHING), and its ratio to both raw figures
  (goal >= 0.8 x raw and >= 100k rows/s); replay: the same rows again, all duplicates;
- outage: readings published at a steady rate through a worker while the database is down
  for `--outage` seconds; the seconds from its return until every row is stored.

    .venv/bin/python -m bench.storage [--rows 400000] [--batch 5000] [--connections 2] [--outage 30]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from uuid import uuid4

import asyncpg

from bench.worker_process import start_worker, stop_worker
from citywatch.infra.manager import LocalInfra
from citywatch.infra.process import free_port
from citywatch.publisher import KafkaPublisher
from citywatch.topics import Topics, ensure_topics
from ingest.events import Reading
from storage.migrate import migrate
from storage.rows import TABLES
from storage.writer import EventWriter


def make_readings(count: int, sources: int = 500) -> list[Reading]:
    start = datetime(2026, 5, 1, tzinfo=UTC)
    return [Reading(source_id=f"aq-{i % sources}", time=start + timedelta(milliseconds=100 * i),
                    values={"pm25": float(i % 90), "no2": float(i % 70)},
                    units={"pm25": "µg/m³", "no2": "µg/m³"}, aqi=i % 300) for i in range(count)]


async def raw_copy(pool: asyncpg.Pool, table: str, records: list[tuple[object, ...]],
                   columns: tuple[str, ...], batch: int, connections: int) -> float:
    """Rows/s of bare COPY of already converted rows, each batch split over `connections`
    concurrent connections exactly as the writer splits it."""
    async def copy(part: list[tuple[object, ...]]) -> None:
        async with pool.acquire() as connection:
            await connection.copy_records_to_table(table, records=part, columns=columns)

    started = time.perf_counter()
    for i in range(0, len(records), batch):
        chunk = records[i:i + batch]
        size = -(-len(chunk) // connections)
        await asyncio.gather(*(copy(chunk[j:j + size]) for j in range(0, len(chunk), size)))
    return len(records) / (time.perf_counter() - started)


async def throughput(dsn: str, rows: int, batch: int, connections: int) -> dict[str, object]:
    pool = await asyncpg.create_pool(dsn, min_size=connections, max_size=connections)
    assert pool is not None
    try:
        async with pool.acquire() as connection:
            await migrate(connection)
            for table in ("bench_raw_one", "bench_raw_split"):
                # the same table shape, indexes and chunking as readings: only the writer differs
                await connection.execute(f"CREATE TABLE IF NOT EXISTS {table} (LIKE readings INCLUDING ALL)")
                await connection.execute(
                    f"SELECT create_hypertable('{table}', by_range('time', INTERVAL '1 day'),"
                    " if_not_exists => TRUE)")
        readings = make_readings(rows)
        spec = TABLES[Reading]
        started = time.perf_counter()
        records = [spec.row(r) for r in readings]
        conversion = rows / (time.perf_counter() - started)
        raw_one = await raw_copy(pool, "bench_raw_one", records, spec.columns, batch, 1)
        raw_split = await raw_copy(pool, "bench_raw_split", records, spec.columns, batch, connections)
        writer = EventWriter(pool, connections)
        started = time.perf_counter()
        for i in range(0, rows, batch):
            await writer.write(readings[i:i + batch])
        through_writer = rows / (time.perf_counter() - started)
        started = time.perf_counter()
        replayed = sum([await writer.write(readings[i:i + batch]) for i in range(0, rows, batch)])
        replay = rows / (time.perf_counter() - started)
        return {"rows": rows, "batch": batch, "connections": connections,
                "event_to_row_rows_per_s": round(conversion),
                "raw_copy_one_connection_rows_per_s": round(raw_one),
                "raw_copy_split_rows_per_s": round(raw_split),
                "writer_rows_per_s": round(through_writer),
                "writer_vs_raw_split": round(through_writer / raw_split, 2),
                "writer_vs_raw_one_connection": round(through_writer / raw_one, 2),
                "replay_rows_per_s": round(replay), "replayed_rows_inserted": replayed}
    finally:
        await pool.close()


async def outage(infra: LocalInfra, state: Path, seconds: float, rate: float) -> dict[str, object]:
    bootstrap, run = f"127.0.0.1:{infra.broker.port}", f"bench{uuid4().hex[:6]}"
    dsn = infra.database.dsn
    (state / "rules").mkdir(exist_ok=True)
    (state / "citywatch.yaml").write_text(f"""
broker: {{url: "kafka://{bootstrap}", topic_prefix: {run}, app_id: {run}, partitions: 1}}
storage: {{dsn: "{dsn}", batch_size: 2000, batch_window_s: 0.5}}
infra: {{state_dir: "{state / 'worker-state'}"}}
rules: {{paths: ["{state / 'rules'}"]}}
worker: {{loglevel: warn}}
""")
    await ensure_topics(bootstrap, Topics(run), partitions=1)
    publisher = KafkaPublisher(bootstrap, Topics(run), 1 << 20)
    await publisher.start()
    worker = start_worker(state / "citywatch.yaml", state / "worker.log")
    source = f"aq-{run}"
    sent = 0

    async def publish_for(duration: float) -> None:
        nonlocal sent
        until = time.monotonic() + duration
        while time.monotonic() < until:
            reading = Reading(source_id=source, time=datetime.now(UTC), values={"pm25": 1.0},
                              units={"pm25": "µg/m³"})
            await publisher.send("readings", source.encode(), reading.to_json())
            sent += 1
            await asyncio.sleep(1 / rate)

    async def count() -> int:
        try:
            connection = await asyncpg.connect(dsn, timeout=2)
        except (OSError, asyncpg.PostgresError):
            return -1
        try:
            query = "SELECT count(*) FROM readings WHERE source_id = $1"
            return int(await connection.fetchval(query, source))
        finally:
            await connection.close()

    try:
        await publish_for(10)  # warm: the worker has joined and stores
        infra.database.stop()
        await publish_for(seconds)
        await asyncio.to_thread(infra.database.start)
        back = time.monotonic()
        while await count() < sent and time.monotonic() - back < 300:  # noqa: ASYNC110 - polling the database
            await asyncio.sleep(0.2)
        caught_up = time.monotonic() - back
        return {"outage_s": seconds, "rate_per_s": rate, "published": sent, "stored": await count(),
                "catch_up_s_after_return": round(caught_up, 1)}
    finally:
        await publisher.stop()
        stop_worker(worker)


async def main(rows: int, batch: int, connections: int, outage_s: float, rate: float) -> dict[str, object]:
    with tempfile.TemporaryDirectory(prefix="cw-bench-storage-") as folder:
        state = Path(folder)
        infra = LocalInfra.create(state / "infra", "127.0.0.1", free_port(), free_port())
        infra.up()
        try:
            result: dict[str, object] = {"benchmark": "storage", "cpu_count": os.cpu_count()}
            result["throughput"] = await throughput(infra.database.dsn, rows, batch, connections)
            result["outage"] = await outage(infra, state, outage_s, rate)
            return result
        finally:
            infra.down()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rows", type=int, default=400_000)
    parser.add_argument("--batch", type=int, default=5000)
    parser.add_argument("--connections", type=int, default=2, help="the writer's (storage.write_connections)")
    parser.add_argument("--outage", type=float, default=30.0)
    parser.add_argument("--rate", type=float, default=200.0, help="readings per second during the outage")
    args = parser.parse_args()
    print(json.dumps(asyncio.run(main(args.rows, args.batch, args.connections, args.outage, args.rate))))
