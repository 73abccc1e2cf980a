"""A rebalance and a SIGTERM while TimescaleDB is down: neither may wait for the database.

While the database is away the store agent holds its batch, unacknowledged, and waits for
the database to return (transient: nothing is lost, nothing dead-lettered). Faust's revoke
step waits for every unacknowledged message, so before the fix a worker joining the group
during an outage froze it (the old worker waited in the revoke step until the database
returned, the group re-formed every few seconds without it) and SIGTERM was ignored. Now
a wait on a transient failure gives way to a revoke and to a stop: the batch is left
unacknowledged, the partition's next owner reads it again, and when the database is back
every reading is stored exactly once and every alert was emailed once.
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import pytest

from citywatch.devservers.smtp import LocalSmtpServer
from citywatch.infra.timescale import LocalTimescale
from citywatch.publisher import KafkaPublisher
from tests.faults.conftest import (
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

SENSORS = 8
STOP_BOUND_S = 30.0


def assigned_readings(worker: Worker, run: str) -> str | None:
    """The readings partitions of the worker's latest assignment ("{0}", "{0-1}"), if any."""
    text = worker.log.read_text()
    start = text.rfind("Setting newly assigned partitions")
    if start < 0:
        return None
    found = re.search(rf"\| {re.escape(run)}\.readings\s+\| (\{{[0-9-, ]+\}})", text[start:])
    return found.group(1) if found else None


async def test_a_database_outage_blocks_neither_a_rebalance_nor_a_stop(
    tmp_path: Path, bootstrap: str, run: str, smtp: LocalSmtpServer, publisher: KafkaPublisher,
    outage_database: LocalTimescale,
) -> None:
    database = outage_database
    sources = [f"aq{i}-{run}" for i in range(SENSORS)]
    write_rule(tmp_path, run, sources)
    first, second = (Worker(worker_config(tmp_path, run, bootstrap, database.dsn, smtp_port(smtp), name=name),
                            tmp_path / f"{name}.log") for name in ("first", "second"))
    published = 0

    async def load(pm25: float) -> None:
        nonlocal published
        for source in sources:
            await publisher.send("readings", source.encode(), reading(source, now(), pm25).to_json())
            published += 1

    first.start()
    try:
        await load(10.0)
        await until("the first readings stored", lambda: exactly(
            database.dsn, "SELECT count(*) FROM readings", published), first)
        await asyncio.to_thread(database.stop)
        await load(10.0)
        await until("the store agent to hold a batch it cannot write", lambda: asyncio.sleep(
            0, "store: storing failed" in first.log.read_text()), first)

        second.start()  # a worker joins while the database is down

        async def both_assigned() -> bool:
            second.check_alive()
            mine, theirs = assigned_readings(first, run), assigned_readings(second, run)
            return mine is not None and theirs is not None and mine != "{0-1}" and theirs != "{0-1}"

        await until("both workers to hold a readings partition (the revoke did not wait)",
                    both_assigned, first)
        await load(80.0)  # every sensor fires, the database still down: the alerts are emailed
        await until(f"{SENSORS} emails during the outage",
                    lambda: asyncio.sleep(0, len(mailed_message_ids(smtp)) >= SENSORS), second)

        stopped = await asyncio.to_thread(first.stops_within, STOP_BOUND_S)
        assert stopped, f"SIGTERM did not stop a worker in {STOP_BOUND_S} s\n{first.log.read_text()[-3000:]}"

        await asyncio.to_thread(database.start)
        await until(f"all {published} readings stored once", lambda: exactly(
            database.dsn, "SELECT count(*) FROM readings", published), second)
        await until("every alert stored", lambda: exactly(
            database.dsn, "SELECT count(DISTINCT alert_id) FROM alerts WHERE state='fired'", SENSORS), second)
        assert len(mailed_message_ids(smtp)) == SENSORS  # and none twice
    finally:
        first.stop()
        second.stop()
