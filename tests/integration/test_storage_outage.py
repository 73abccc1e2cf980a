"""The database goes away under a running worker: the store agent stops consuming, keeps
retrying, loses nothing, and catches up when it returns, even if the worker is killed
during the outage (offsets are committed only after rows are durable)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from uuid import uuid4

import asyncpg
import pytest

from citywatch.infra.process import free_port
from citywatch.infra.timescale import LocalTimescale
from citywatch.publisher import KafkaPublisher
from citywatch.topics import Topics, ensure_topics
from ingest.events import Reading
from tests.worker_process import Worker, until

pytestmark = [pytest.mark.integration, pytest.mark.e2e]


async def stored(dsn: str, source: str) -> int:
    try:
        connection = await asyncpg.connect(dsn, timeout=2)
    except (OSError, asyncpg.PostgresError):
        return -1
    try:
        return int(await connection.fetchval("SELECT count(*) FROM readings WHERE source_id = $1", source))
    except asyncpg.UndefinedTableError:
        return 0
    finally:
        await connection.close()


async def test_nothing_is_lost_when_the_database_is_down(tmp_path: Path, bootstrap: str) -> None:
    database = LocalTimescale(tmp_path / "db", "127.0.0.1", free_port())
    await asyncio.to_thread(database.start)
    run = f"out{uuid4().hex[:8]}"
    source = f"aq-{run}"
    config = tmp_path / "citywatch.yaml"
    config.write_text(f"""
broker: {{url: "kafka://{bootstrap}", topic_prefix: {run}, app_id: {run}, partitions: 1}}
storage: {{dsn: "{database.dsn}", batch_size: 20, batch_window_s: 0.2}}
infra: {{state_dir: "{tmp_path / 'state'}"}}
rules: {{paths: ["{tmp_path / 'rules'}"]}}
""")
    (tmp_path / "rules").mkdir()
    await ensure_topics(bootstrap, Topics(run), partitions=1)
    publisher = KafkaPublisher(bootstrap, Topics(run), 1 << 20)
    await publisher.start()
    start = datetime.now(UTC)

    async def publish(first: int, count: int) -> None:
        for i in range(first, first + count):
            reading = Reading(source_id=source, time=start + timedelta(seconds=i), values={"pm25": float(i)},
                              units={"pm25": "µg/m³"})
            await publisher.send("readings", source.encode(), reading.to_json())

    worker = Worker(config, tmp_path / "worker.log")
    worker.start()
    try:
        await publish(0, 50)
        await until("the first 50 rows", lambda: _equals(database.dsn, source, 50), worker)
        await asyncio.to_thread(database.stop)  # the outage
        await publish(50, 100)
        await until("the store waiting the outage out", lambda: _retrying(worker), worker)  # still up
        worker.kill()  # and killed during the outage
        await asyncio.to_thread(database.start)
        worker.start()
        await until("all 150 rows after the outage", lambda: _equals(database.dsn, source, 150), worker)
        assert await stored(database.dsn, source) == 150  # and not one more
    finally:
        worker.stop()
        await publisher.stop()
        await asyncio.to_thread(database.remove)


async def _equals(dsn: str, source: str, expected: int) -> bool:
    return await stored(dsn, source) == expected


async def _retrying(worker: Worker) -> bool:
    return "retrying" in worker.log.read_text()
