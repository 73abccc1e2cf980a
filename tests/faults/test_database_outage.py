"""TimescaleDB stopped for 30 s under load: every alert raised meanwhile is emailed during the
outage (the notification log lives in Kafka-changelogged tables), nothing is dead-lettered,
and when the database returns every reading is stored once and the log is mirrored."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

import pytest

from citywatch.devservers.smtp import LocalSmtpServer
from citywatch.infra.timescale import LocalTimescale
from citywatch.publisher import KafkaPublisher
from tests.faults.conftest import (
    count,
    exactly,
    mailed_message_ids,
    now,
    reading,
    smtp_port,
    worker_config,
    write_rule,
)
from tests.worker_process import Worker, until

pytestmark = [pytest.mark.integration, pytest.mark.e2e]

OUTAGE_S = float(os.environ.get("FAULTS_DATABASE_OUTAGE_S", "30"))
SENSORS = 20


async def test_alerts_are_notified_during_a_database_outage_and_nothing_is_lost(
    tmp_path: Path, bootstrap: str, run: str, smtp: LocalSmtpServer, publisher: KafkaPublisher,
    outage_database: LocalTimescale,
) -> None:
    database = outage_database
    sources = [f"aq{i}-{run}" for i in range(SENSORS)]
    write_rule(tmp_path, run, sources)
    config = worker_config(tmp_path, run, bootstrap, database.dsn, smtp_port(smtp))
    worker = Worker(config, tmp_path / "worker.log")
    published = 0

    async def load(pm25: float, rounds: int = 1) -> None:
        nonlocal published
        for _ in range(rounds):
            for source in sources:
                await publisher.send("readings", source.encode(), reading(source, now(), pm25).to_json())
                published += 1

    worker.start()
    try:
        await load(10.0, 5)
        await until("the first readings stored",
                    lambda: _at_least(database.dsn, "SELECT count(*) FROM readings", published), worker)
        await asyncio.to_thread(database.stop)
        down_at = time.monotonic()
        await load(10.0, 5)
        await load(80.0)  # every sensor fires: 20 alerts while the database is down
        # the database stays down until every email is in: they cannot be waiting for it
        mailed = await until(f"{SENSORS} emails during the outage",
                             lambda: _mails(smtp, SENSORS), worker)
        while time.monotonic() - down_at < OUTAGE_S:  # the outage lasts, under load (still firing)
            await load(80.0)
            await asyncio.sleep(0.5)
        await asyncio.to_thread(database.start)
        await until(f"all {published} readings stored once",
                    lambda: exactly(database.dsn, "SELECT count(*) FROM readings", published), worker)
        await until("every alert stored", lambda: exactly(
            database.dsn, "SELECT count(DISTINCT alert_id) FROM alerts WHERE state='fired'", SENSORS), worker)
        await until("the notification log mirrored", lambda: exactly(
            database.dsn, "SELECT count(*) FROM notification_log WHERE status='sent'", SENSORS), worker)
        await until("the notifications stored", lambda: exactly(
            database.dsn, "SELECT count(*) FROM notifications WHERE status='sent'", SENSORS), worker)
        worker.check_alive()
    finally:
        worker.stop()
    assert len(mailed) == SENSORS and len(set(mailed)) == SENSORS
    assert mailed_message_ids(smtp) == mailed  # and nothing sent twice after the database returned
    assert await _dead_letter_count(tmp_path) == 0
    log = (tmp_path / "worker.log").read_text()
    assert "retrying" in log  # the store waited the outage out


async def _at_least(dsn: str, sql: str, wanted: int) -> bool:
    return await count(dsn, sql) >= wanted


async def _mails(smtp: LocalSmtpServer, wanted: int) -> list[str] | None:
    mailed = mailed_message_ids(smtp)
    return mailed if len(mailed) >= wanted else None


async def _dead_letter_count(tmp_path: Path) -> int:
    return (tmp_path / "worker.log").read_text().count("dead letter from")
