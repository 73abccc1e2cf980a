"""A worker's RocksDB table files across restarts: kept after a clean stop (the worker reads
only the changelogs' tail), discarded after kill -9 (they may hold changes the changelog
never got), and in both cases the rule state is what it was: a firing alert neither fires
again nor is forgotten."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from pathlib import Path

import pytest

from citywatch.devservers.smtp import LocalSmtpServer
from citywatch.publisher import KafkaPublisher
from tests.faults.conftest import count, now, reading, smtp_port, worker_config, write_rule
from tests.worker_process import Worker, until

pytestmark = [pytest.mark.integration, pytest.mark.e2e]


async def test_table_files_are_kept_after_a_clean_stop_and_discarded_after_a_crash(
    tmp_path: Path, bootstrap: str, dsn: str, run: str, smtp: LocalSmtpServer, publisher: KafkaPublisher,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CITYWATCH_WORKER__TABLE_STORE", "rocksdb")  # the worker inherits it
    watched, *sentinels = [f"aq{i}-{run}" for i in range(3)]
    write_rule(tmp_path, run, [watched, *sentinels])
    worker = Worker(worker_config(tmp_path, run, bootstrap, dsn, smtp_port(smtp)), tmp_path / "worker.log")
    slot = tmp_path / "state" / "worker" / "slot-0"

    async def alerts(source: str, state: str) -> int:
        sql = "SELECT count(*) FROM alerts WHERE source_id = $1 AND state = $2"
        return await count(dsn, sql, source, state)

    async def fired(source: str) -> int:
        return await alerts(source, "fired")

    async def still_firing_after(sentinel: str) -> None:
        """`watched` stays high; a sentinel fires, so the worker has read past the reading."""
        await publisher.send("readings", watched.encode(), reading(watched, now(), 85.0).to_json())
        await publisher.send("readings", sentinel.encode(), reading(sentinel, now(), 90.0).to_json())
        await until(f"{sentinel} fired", lambda: _at_least(fired(sentinel), 1), worker)
        assert await fired(watched) == 1  # the restarted worker knew it was firing

    worker.start()
    try:
        await publisher.send("readings", watched.encode(), reading(watched, now(), 80.0).to_json())
        await until("the first alert", lambda: _at_least(fired(watched), 1), worker)
        await until("its table files", lambda: _has_files(slot / "tables"), worker)

        assert worker.stops_within(30)
        assert (slot / "clean").exists(), worker.log.read_text()[-3000:]
        (slot / "tables" / "witness").touch()
        worker.start()
        await still_firing_after(sentinels[0])
        assert (slot / "tables" / "witness").exists()  # the files were opened, not rebuilt
        assert not (slot / "clean").exists()  # a running worker's files vouch for nothing

        worker.kill()
        worker.start()
        await still_firing_after(sentinels[1])
        assert not (slot / "tables" / "witness").exists()  # discarded: recovered from the changelog
        assert "were not left by a clean stop" in worker.log.read_text()

        await publisher.send("readings", watched.encode(), reading(watched, now(), 10.0).to_json())
        await until("the resolve", lambda: _at_least(alerts(watched, "resolved"), 1), worker)
    finally:
        worker.stop()
    subjects = [str(m["subject"]) for m in smtp.store.messages()]
    assert sum(watched in s for s in subjects) == 2, subjects  # fired once, resolved once


async def _at_least(found: Awaitable[int], wanted: int) -> bool:
    return await found >= wanted


async def _has_files(folder: Path) -> bool:
    return await asyncio.to_thread(lambda: any(folder.glob("*.db")))
