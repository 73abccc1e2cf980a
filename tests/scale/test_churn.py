"""Many workers, one city: workers join, crash, leave and are restarted one by one while
readings flow and alerts are being notified. Each scenario asserts that the group keeps
making progress (every published reading stored exactly once), that every alert transition
is emailed exactly once and stored once, that each clock partition ticks once per interval
(not once per worker), and that SIGTERM stops a worker in bounded time. Workers are
separate processes on the real broker, TimescaleDB and SMTP server; three workers on 4
partitions.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter, defaultdict
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from uuid import uuid4

import asyncpg
import pytest
from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition

from citywatch.devservers.smtp import LocalSmtpServer
from citywatch.publisher import KafkaPublisher
from citywatch.topics import Topics, ensure_topics, log_ends
from ingest.events import Reading
from tests.faults.conftest import worker_config
from tests.worker_process import Worker

pytestmark = [pytest.mark.integration, pytest.mark.e2e, pytest.mark.scale]

PARTITIONS = 4
SENSORS = 8
TICK_EVERY_S = 0.5  # rules.tick_every_s in tests.faults.conftest.worker_config
STOP_BOUND_S = 30.0  # SIGTERM to exit, flushing what it can
PROGRESS_DEADLINE_S = 120.0
RULE = """
id: pm-{run}
title: PM2.5 high
sources: {{kinds: [sensor]}}
condition: {{type: threshold, field: pm25, above: 50}}
notify: [{{recipient: ops, channels: [email]}}]
"""


class City:
    """Sensors that report twice a second in turn, alternating above and below the limit, so
    alerts fire and resolve (and are emailed) all the time."""

    def __init__(self, publisher: KafkaPublisher, run: str) -> None:
        self.publisher, self.run = publisher, run
        self.sent = 0
        self.start = datetime.now(UTC)

    async def report(self, seconds: float) -> None:
        until = time.monotonic() + seconds
        while time.monotonic() < until:
            for sensor in range(SENSORS):
                step = self.sent // SENSORS
                reading = Reading(source_id=f"aq{sensor}-{self.run}",
                                  time=self.start + timedelta(seconds=step * 0.5),
                                  values={"pm25": 80.0 if (step // 4) % 2 else 10.0}, units={"pm25": "µg/m³"})
                await self.publisher.send("readings", reading.source_id.encode(), reading.to_json())
                self.sent += 1
            await asyncio.sleep(0.5)


@pytest.fixture
async def city(bootstrap: str, tmp_path: Path) -> AsyncIterator[tuple[City, str]]:
    run = f"sc{uuid4().hex[:8]}"
    await ensure_topics(bootstrap, Topics(run), partitions=PARTITIONS)
    (tmp_path / "rules").mkdir()
    (tmp_path / "rules" / "pm.yaml").write_text(RULE.format(run=run))
    publisher = KafkaPublisher(bootstrap, Topics(run), 1 << 20)
    await publisher.start()
    yield City(publisher, run), run
    await publisher.stop()


async def wait_for(what: str, check: object, workers: list[Worker]) -> None:
    started = time.monotonic()
    while time.monotonic() - started < PROGRESS_DEADLINE_S:
        if await check():  # type: ignore[operator]
            return
        await asyncio.sleep(1)
    logs = "\n".join(f"--- {w.log}\n{w.log.read_text()[-2500:]}" for w in workers)
    raise AssertionError(f"no progress: {what}\n{logs}")


def mailed_transitions(smtp: LocalSmtpServer) -> Counter[tuple[str, str]]:
    """(alert id, fired/resolved) of every email received, duplicates counted: a firing's
    Message-ID is its alert's thread (alert-<id>), a resolve replies to it."""
    found: Counter[tuple[str, str]] = Counter()
    for message in smtp.store.messages():
        thread = str(message.get("in_reply_to") or message["message_id"])
        alert_id = thread.removeprefix("<alert-").split("@", 1)[0]
        found[(alert_id, "resolved" if message.get("in_reply_to") else "fired")] += 1
    return found


async def assert_exactly_once(pool: asyncpg.Pool, city: City, run: str, smtp: LocalSmtpServer,
                              workers: list[Worker], bootstrap: str) -> None:
    async def stored() -> bool:
        return bool(await pool.fetchval(
            "SELECT count(*) = $2 FROM readings WHERE source_id LIKE $1", f"%-{run}", city.sent))

    try:
        await wait_for(f"all {city.sent} readings stored", stored, workers)
    except AssertionError as exc:
        raise AssertionError(f"{await unstored_readings(pool, bootstrap, run)}\n{exc}") from None
    assert await pool.fetchval(
        "SELECT count(DISTINCT event_id) = count(*) FROM readings WHERE source_id LIKE $1", f"%-{run}")
    seen: dict[str, Counter[tuple[str, str]]] = {}

    async def each_transition_mailed_once() -> bool:
        """Alerts are stored, and emailed, a little after the readings that raised them: both
        are read again until they agree (a duplicate or a missing email never does)."""
        rows = await pool.fetch("SELECT DISTINCT alert_id, state FROM alerts WHERE rule_id = $1", f"pm-{run}")
        seen["stored"] = Counter((str(r["alert_id"]), str(r["state"])) for r in rows)
        seen["mailed"] = mailed_transitions(smtp)
        return bool(seen["stored"]) and seen["stored"] == seen["mailed"]

    try:
        await wait_for("every alert transition emailed exactly once", each_transition_mailed_once, workers)
    except AssertionError as exc:
        stored_ones, mailed = seen.get("stored", Counter()), seen.get("mailed", Counter())
        twice = {k: n for k, n in mailed.items() if n > 1}
        raise AssertionError(
            f"{len(stored_ones)} transitions stored, {sum(mailed.values())} emails; "
            f"not mailed: {sorted(stored_ones - mailed)[:8]}; mailed more than once: {twice}; "
            f"mailed but not stored: {sorted(set(mailed) - set(stored_ones))[:8]}\n"
            f"{await unsent(pool, run)}\n{exc}") from None
    # and the history has each transition once: the same resolve decided again at another event
    # time (two rows, one email) was seen after a join
    twice_in_history = await pool.fetch(
        "SELECT alert_id, state, array_agg(time ORDER BY time) AS times FROM alerts WHERE rule_id = $1"
        " GROUP BY alert_id, state HAVING count(*) > 1", f"pm-{run}")
    assert not twice_in_history, [dict(r) for r in twice_in_history[:4]]


async def unstored_readings(pool: asyncpg.Pool, bootstrap: str, run: str) -> str:
    """Which published readings are not stored, as offset ranges per partition of the topic."""
    stored = {str(r["event_id"]) for r in await pool.fetch(
        "SELECT event_id FROM readings WHERE source_id LIKE $1", f"%-{run}")}
    missing: dict[int, list[int]] = defaultdict(list)
    published = 0
    for partition, records in (await read_topic(bootstrap, Topics(run).name("readings"))).items():
        for record in records:
            published += 1
            if json.loads(record.value or b"{}")["event_id"] not in stored:
                missing[partition].append(record.offset)
    ranges = {p: ranges_of(offsets) for p, offsets in sorted(missing.items())}
    return f"{published} readings published, {len(stored)} stored; not stored (partition: offsets): {ranges}"


def ranges_of(offsets: list[int]) -> str:
    spans: list[list[int]] = []
    for offset in sorted(offsets):
        if spans and offset == spans[-1][1] + 1:
            spans[-1][1] = offset
        else:
            spans.append([offset, offset])
    return ", ".join(f"{a}-{b}" if a != b else str(a) for a, b in spans)


async def unsent(pool: asyncpg.Pool, run: str) -> str:
    """What the notification log says about the alert transitions without an email."""
    rows = await pool.fetch(
        "SELECT a.time, a.state, a.source_id, n.status, n.attempts, n.error FROM alerts a"
        " LEFT JOIN notification_log n ON n.alert_id = a.alert_id AND n.alert_state = a.state"
        " WHERE a.rule_id = $1 AND (n.status IS NULL OR n.status <> 'sent') ORDER BY a.time", f"pm-{run}")
    return f"{len(rows)} transitions not sent: " + "; ".join(str(dict(r)) for r in rows[:8])


async def read_topic(bootstrap: str, topic: str) -> dict[int, list[ConsumerRecord[bytes, bytes]]]:
    """Every record of a topic up to its end as of now, by partition (the clock keeps ticking:
    reading until nothing comes would never end)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        partitions = [TopicPartition(topic, p) for p in range(PARTITIONS)]
        ends = await log_ends(consumer, partitions)
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        found: dict[int, list[ConsumerRecord[bytes, bytes]]] = {p: [] for p in range(PARTITIONS)}
        left = {tp for tp in partitions if ends[tp] > 0}
        deadline = time.monotonic() + PROGRESS_DEADLINE_S
        while left and time.monotonic() < deadline:
            for tp, records in (await consumer.getmany(*left, timeout_ms=1000, max_records=10_000)).items():
                found[tp.partition] += [r for r in records if r.offset < ends[tp]]
                if records and records[-1].offset >= ends[tp] - 1:
                    left.discard(tp)
        assert not left, f"{topic}: {sorted(left)} not read to their end in {PROGRESS_DEADLINE_S} s"
        return found
    finally:
        await consumer.stop()


async def ticks_per_partition(bootstrap: str, run: str) -> dict[int, list[int]]:
    """The record time (ms) of every clock tick, by partition."""
    found = await read_topic(bootstrap, Topics(run).name("clock"))
    return {partition: [r.timestamp for r in records] for partition, records in found.items()}


async def assert_each_transition_decided_once(bootstrap: str, run: str) -> None:
    """A transition published again (a record read twice after a crash) is normal; published
    at two event times it was decided twice, from two states: a worker that took over a
    partition without its previous owner's last table writes."""
    times: dict[str, set[str]] = defaultdict(set)
    for records in (await read_topic(bootstrap, Topics(run).name("alerts"))).values():
        for record in records:
            alert = json.loads(record.value or b"{}")
            times[f"{alert['alert_id']} {alert['state']}"].add(alert["time"])
    twice = {key: sorted(at) for key, at in times.items() if len(at) > 1}
    assert not twice, f"{len(twice)} transitions decided at two event times: {list(twice.items())[:4]}"


async def assert_one_tick_per_partition_per_interval(bootstrap: str, run: str) -> None:
    """Each partition's clock ticks once per interval, however many workers run: about
    span / interval ticks, never a multiple of it. A rebalance may add or drop one (an old
    and a new owner both tick), hence the slack; a tick per worker would triple the count."""
    for partition, times in (await ticks_per_partition(bootstrap, run)).items():
        assert times, f"clock partition {partition} never ticked"
        intervals = (max(times) - min(times)) / 1000 / TICK_EVERY_S
        assert len(times) <= 1.25 * intervals + 10, (
            f"clock partition {partition}: {len(times)} ticks in {intervals:.0f} intervals")


def stop_in_bounded_time(worker: Worker) -> None:
    stopped = worker.stops_within(STOP_BOUND_S)
    if not stopped:
        worker.kill()
    assert stopped, f"SIGTERM did not stop the worker in {STOP_BOUND_S} s\n{worker.log.read_text()[-3000:]}"


@pytest.mark.parametrize("store", ["memory", "rocksdb"])
@pytest.mark.parametrize("churn", ["join", "crash", "leave", "rolling"])
async def test_workers_join_crash_and_leave_without_losing_or_repeating(
    churn: str, store: str, tmp_path: Path, bootstrap: str, dsn: str, pg_pool: asyncpg.Pool,
    smtp: LocalSmtpServer, city: tuple[City, str],
) -> None:
    """Three workers: a third joins two; one of three is killed with -9; one of three leaves
    with SIGTERM; or all three are restarted one after another (a rolling deploy). With the
    tables in memory, and in RocksDB files that a restarted worker keeps."""
    sensors, run = city
    port = int(smtp.address.rsplit(":", 1)[1])
    workers = [Worker(worker_config(tmp_path, run, bootstrap, dsn, port, name=name, partitions=PARTITIONS,
                                    table_store=store),
                      tmp_path / f"{name}.log") for name in ("w1", "w2", "w3")]
    for worker in workers[:2] if churn == "join" else workers:
        worker.start()
    try:
        await sensors.report(15)
        if churn == "join":
            workers[2].start()
        elif churn == "crash":
            workers[2].kill()
        elif churn == "leave":
            stop_in_bounded_time(workers[2])
        else:
            for worker in workers:  # each leaves and comes back while the city reports
                stop_in_bounded_time(worker)
                worker.start()
                await sensors.report(8)
        await sensors.report(20)
        await assert_exactly_once(pg_pool, sensors, run, smtp, workers, bootstrap)
        await assert_one_tick_per_partition_per_interval(bootstrap, run)
        await assert_each_transition_decided_once(bootstrap, run)
        for worker in workers:
            if worker.process is not None and worker.process.poll() is None:
                stop_in_bounded_time(worker)
    finally:
        for worker in workers:
            if worker.process is not None and worker.process.poll() is None:
                worker.kill()
