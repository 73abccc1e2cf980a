"""What the fault suite shares: a worker's configuration, a publisher, and counting what arrived."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from uuid import uuid4

import asyncpg
import pytest

from citywatch.devservers.smtp import LocalSmtpServer
from citywatch.infra.process import free_port
from citywatch.infra.timescale import LocalTimescale
from citywatch.publisher import KafkaPublisher
from citywatch.topics import Topics, ensure_topics
from ingest.events import Reading

THRESHOLD_RULE = """
id: pm-{run}
title: PM2.5 high
severity: critical
sources: {{ids: [{sources}]}}
condition: {{type: threshold, field: pm25, above: 50}}
notify: [{{recipient: ops, channels: [{channels}]}}]
"""


QUICK_NOTIFY = "attempts: 2, base_delay_s: 0.1, max_delay_s: 0.2, outbox_retry_every_s: 1"


def worker_config(tmp: Path, run: str, bootstrap: str, dsn: str, smtp_port: int, *, sms: str = "",
                  recipients: str = "ops: {email: ops@example.org}", notify: str = "", name: str = "",
                  partitions: int = 2, table_store: str = "memory") -> Path:
    """A worker's settings: email to the local SMTP server (and SMS where `sms` says how),
    quick retries, and whatever `notify` adds (policies, outbox limits). `name`: one of
    several workers of the group, each with its own file and state folder; `table_store`:
    where the worker keeps its tables (memory, or RocksDB files kept across restarts)."""
    config = tmp / f"{name or 'citywatch'}.yaml"
    config.write_text(f"""
broker: {{url: "kafka://{bootstrap}", topic_prefix: {run}, app_id: {run}, partitions: {partitions}}}
storage: {{dsn: "{dsn}", batch_size: 50, batch_window_s: 0.2}}
infra: {{state_dir: "{tmp / (name or 'state')}"}}
rules: {{paths: ["{tmp / 'rules'}"], reload_every_s: 1, tick_every_s: 0.5}}
channels:
  email: {{host: 127.0.0.1, port: {smtp_port}, from_addr: citywatch@localhost, timeout_s: 2}}
  {sms}
recipients: {{{recipients}}}
notify: {{{QUICK_NOTIFY}{", " + notify if notify else ""}}}
worker: {{table_store: {table_store}}}
""")
    return config


def write_rule(tmp: Path, run: str, sources: list[str], channels: str = "email") -> None:
    (tmp / "rules").mkdir(exist_ok=True)
    (tmp / "rules" / "pm.yaml").write_text(
        THRESHOLD_RULE.format(run=run, sources=", ".join(sources), channels=channels))


def reading(source: str, at: datetime, pm25: float) -> Reading:
    return Reading(source_id=source, time=at, values={"pm25": pm25}, units={"pm25": "ug/m3"})


@pytest.fixture
def run() -> str:
    return f"f{uuid4().hex[:8]}"


def smtp_port(server: LocalSmtpServer) -> int:
    return int(server.address.rsplit(":", 1)[1])


@pytest.fixture
async def outage_database(tmp_path: Path) -> AsyncIterator[LocalTimescale]:
    """A TimescaleDB of the test's own, started, to stop and start again (an outage)."""
    database = LocalTimescale(tmp_path / "db", "127.0.0.1", free_port())
    await asyncio.to_thread(database.start)
    yield database
    await asyncio.to_thread(database.remove)


@pytest.fixture
async def publisher(bootstrap: str, run: str) -> AsyncIterator[KafkaPublisher]:
    await ensure_topics(bootstrap, Topics(run), partitions=2)
    kafka = KafkaPublisher(bootstrap, Topics(run), 4 << 20)
    await kafka.start()
    yield kafka
    await kafka.stop()


async def count(dsn: str, sql: str, *args: object) -> int:
    """A count, or -1 while the database cannot be reached."""
    try:
        connection = await asyncpg.connect(dsn, timeout=2)
    except (OSError, asyncpg.PostgresError, TimeoutError):
        return -1
    try:
        return int(await connection.fetchval(sql, *args))
    except asyncpg.UndefinedTableError:
        return 0
    finally:
        await connection.close()


async def exactly(dsn: str, sql: str, wanted: int) -> bool:
    """Whether the count reached `wanted`; more than that fails at once (a duplicate)."""
    found = await count(dsn, sql)
    assert found <= wanted, f"{sql}: {found} > {wanted}"
    return found == wanted


def mailed_message_ids(server: LocalSmtpServer) -> list[str]:
    """The Message-ID of every email received (a firing's is its alert's thread), duplicates kept."""
    return [str(m["message_id"]) for m in server.store.messages()]


def now() -> datetime:
    return datetime.now(UTC)
