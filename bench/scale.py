"""Many workers on one machine: CPU per message against the single worker, and the pauses
of a join, a crash (kill -9) and a leave (SIGTERM).

Starts the local broker and TimescaleDB (free ports). For each worker count, a fresh
consumer group on 4 partitions gets `--messages` readings from 64 sensors under a threshold
rule (evaluated and stored); the bench times it until every reading is stored and adds up
the CPU the workers used meanwhile (/proc). The readings are published 500 at a time, so the
workers, not the publisher, set the pace. The CPU per message is compared with the single
worker's, measured in the same run (the goal: at most 1.2 times); each row also gives the
workers' idle CPU (10 s with no traffic: heartbeats, fetch loops, clock ticks, timers), the
fixed cost every added worker brings, and its share of the CPU measured. Then, with two workers
and readings flowing at `--rate` per second, a third joins, one is killed with -9, one
leaves with SIGTERM: each pause is the longest time no reading was stored around the
event. Last, recovery against changelog size: a worker's rule state grows to `--keys`
sensors (one table entry each), the worker stops, and a fresh one is timed from its start
until it has read the changelog (its log) and until it stores a new reading; the smallest
size, measured in the same run, is the baseline; then that worker stops cleanly and starts
again with its RocksDB table files, reading only the changelog's tail. Prints one JSON object.

    .venv/bin/python -m bench.scale --workers 1,2,3,4 --messages 20000 --rate 200 --keys 1000,10000,40000
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import uuid4

from aiokafka import AIOKafkaConsumer, TopicPartition

from bench.outage import count
from bench.worker_process import start_worker, stop_worker
from citywatch.infra.manager import LocalInfra
from citywatch.infra.process import free_port
from citywatch.publisher import KafkaPublisher
from citywatch.topics import Topics, ensure_topics
from ingest.events import Reading

PARTITIONS = 4
SENSORS = 64
RULE = """
id: pm-scale
title: PM2.5 high
sources: {kinds: [sensor]}
condition: {type: threshold, field: pm25, above: 50}
"""
PENDING_RULE = """
id: pm-pending
title: PM2.5 high for an hour
sources: {kinds: [sensor]}
condition: {type: threshold, field: pm25, above: 50, for: 1h}
"""
"""Every sensor above 50 is remembered, pending, for an hour: one rule-state entry per sensor."""
TICKS_PER_S = os.sysconf("SC_CLK_TCK")
STORED = "SELECT count(*) FROM readings WHERE source_id LIKE $1"


def cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS_PER_S


class Group:
    """Workers of one consumer group, each with its own state folder and log."""

    def __init__(self, state: Path, infra: LocalInfra, run: str) -> None:
        self.state, self.run = state, run
        self.bootstrap = f"127.0.0.1:{infra.broker.port}"
        self.dsn = infra.database.dsn
        self.workers: list[subprocess.Popen[bytes]] = []
        self.table_store = "memory"
        (state / "rules").mkdir(parents=True, exist_ok=True)
        (state / "rules" / "pm.yaml").write_text(RULE)

    def add(self, loglevel: str = "warn") -> subprocess.Popen[bytes]:
        name = f"w{len(self.workers)}"
        config = self.state / f"{name}.yaml"
        config.write_text(f"""
broker: {{url: "kafka://{self.bootstrap}", topic_prefix: {self.run}, app_id: {self.run},
          partitions: {PARTITIONS}}}
storage: {{dsn: "{self.dsn}", batch_size: 2000, batch_window_s: 0.3}}
infra: {{state_dir: "{self.state / name}"}}
rules: {{paths: ["{self.state / 'rules'}"], tick_every_s: 1}}
worker: {{loglevel: {loglevel}, run_sources: false, table_store: {self.table_store}}}
""")
        worker = start_worker(config, self.state / f"{name}.log")
        self.workers.append(worker)
        return worker

    def restart(self, index: int) -> tuple[subprocess.Popen[bytes], Path]:
        """Worker `index` again, with its state folder (its table files) and a log of its own."""
        name = f"w{index}"
        log = self.state / f"{name}-again.log"
        worker = start_worker(self.state / f"{name}.yaml", log)
        self.workers.append(worker)
        return worker, log

    def alive(self) -> list[subprocess.Popen[bytes]]:
        return [w for w in self.workers if w.poll() is None]

    def stop(self) -> None:
        for worker in self.alive():
            stop_worker(worker)


IN_FLIGHT = 500
"""Readings the bench keeps in flight at once: one send at a time (about 155 a second here)
made the publisher the bottleneck, and a worker's fixed cost then counted against few
readings."""


async def readings(publisher: KafkaPublisher, run: str, n: int, start: int = 0) -> None:
    now = datetime.now(UTC)

    async def send(i: int) -> None:
        source = f"s{i % SENSORS}-{run}"
        reading = Reading(source_id=source, time=now, values={"pm25": float(i % 100)},
                          units={"pm25": "ug/m3"})
        await publisher.send("readings", source.encode(), reading.to_json())

    for first in range(start, start + n, IN_FLIGHT):
        await asyncio.gather(*(send(i) for i in range(first, min(first + IN_FLIGHT, start + n))))


IDLE_WINDOW_S = 10.0


async def idle_cpu(workers: list[subprocess.Popen[bytes]], seconds: float) -> float:
    """CPU seconds per second the workers use together with no traffic: their fixed cost
    (heartbeats, fetch loops, clock ticks, timers), which every reading shares."""
    before = {w.pid: cpu_s(w.pid) for w in workers}
    await asyncio.sleep(seconds)
    return sum(cpu_s(pid) - was for pid, was in before.items()) / seconds


async def wait_stored(dsn: str, run: str, wanted: int, deadline_s: float = 600) -> None:
    started = time.monotonic()
    while await count_like(dsn, run) < wanted:
        if time.monotonic() - started > deadline_s:
            raise RuntimeError(f"fewer than {wanted} readings stored after {deadline_s} s")
        await asyncio.sleep(0.1)


async def count_like(dsn: str, run: str) -> int:
    return await count(dsn, STORED.replace("$1", f"'%-{run}'"))


async def throughput(state: Path, infra: LocalInfra, workers: int, messages: int) -> dict[str, float]:
    run = f"sc{uuid4().hex[:6]}"
    group = Group(state / run, infra, run)
    await ensure_topics(group.bootstrap, Topics(run), partitions=PARTITIONS)
    publisher = KafkaPublisher(group.bootstrap, Topics(run), 1 << 20)
    await publisher.start()
    try:
        for _ in range(workers):
            group.add()
        await readings(publisher, run, SENSORS)  # warm-up: every worker joined and took its share
        await wait_stored(group.dsn, run, SENSORS)
        await asyncio.sleep(2)
        idle = await idle_cpu(group.alive(), IDLE_WINDOW_S)
        before = {w.pid: cpu_s(w.pid) for w in group.alive()}
        started = time.monotonic()
        await readings(publisher, run, messages, start=SENSORS)
        await wait_stored(group.dsn, run, SENSORS + messages)
        elapsed = time.monotonic() - started
        used = sum(cpu_s(pid) - was for pid, was in before.items())
        return {"workers": workers, "messages_per_s": round(messages / elapsed),
                "cpu_ms_per_message": round(used * 1000 / messages, 3),
                "idle_cpu_ms_per_s_per_worker": round(idle * 1000 / workers, 1),
                "idle_share_of_cpu": round(idle * elapsed / max(used, 1e-9), 3)}
    finally:
        await publisher.stop()
        group.stop()


async def pauses(state: Path, infra: LocalInfra, rate: float) -> dict[str, float]:
    """Longest time without a stored reading around a join, a kill -9 and a SIGTERM."""
    run = f"sp{uuid4().hex[:6]}"
    group = Group(state / run, infra, run)
    await ensure_topics(group.bootstrap, Topics(run), partitions=PARTITIONS)
    publisher = KafkaPublisher(group.bootstrap, Topics(run), 1 << 20)
    await publisher.start()
    sent = 0

    async def load() -> None:
        nonlocal sent
        while True:
            await readings(publisher, run, 1, start=sent)
            sent += 1
            await asyncio.sleep(1 / rate)

    async def longest_gap(seconds: float) -> float:
        """Over `seconds` of steady load: the longest time the stored count stood still."""
        last, last_change, gap = await count_like(group.dsn, run), time.monotonic(), 0.0
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            await asyncio.sleep(0.1)
            now_count = await count_like(group.dsn, run)
            if now_count != last:
                gap = max(gap, time.monotonic() - last_change)
                last, last_change = now_count, time.monotonic()
        return round(max(gap, time.monotonic() - last_change), 1)

    loader = asyncio.create_task(load())
    try:
        group.add()
        group.add()
        await wait_stored(group.dsn, run, 1)
        await asyncio.sleep(15)  # both joined and settled
        steady = await longest_gap(10)
        group.add()
        join = await longest_gap(30)
        group.alive()[0].send_signal(signal.SIGKILL)
        crash = await longest_gap(30)
        stop_worker(group.alive()[0])
        leave = await longest_gap(30)
        return {"steady_s": steady, "join_s": join, "crash_s": crash, "leave_s": leave}
    finally:
        loader.cancel()
        await asyncio.gather(loader, return_exceptions=True)
        await publisher.stop()
        group.stop()


async def wait_records(bootstrap: str, topic: str, wanted: int, deadline_s: float = 600) -> int:
    """The changelog's record count once it holds `wanted` keys (state is written after the
    reading is stored)."""
    started = time.monotonic()
    while True:
        records, keys = await changelog_records(bootstrap, topic)
        if keys >= wanted:
            return records
        if time.monotonic() - started > deadline_s:
            raise RuntimeError(f"{topic}: {keys} keys of {wanted} after {deadline_s} s")
        await asyncio.sleep(1)


async def changelog_records(bootstrap: str, topic: str) -> tuple[int, int]:
    """Records and distinct keys in a changelog topic, read from its beginning (the local
    broker's end offsets run a little behind, so they are not counted on)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        partitions = [TopicPartition(topic, p) for p in range(PARTITIONS)]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        records, keys = 0, set[bytes | None]()
        while batches := await consumer.getmany(timeout_ms=1000, max_records=10000):
            for batch in batches.values():
                records += len(batch)
                keys.update(record.key for record in batch)
        return records, len(keys)
    finally:
        await consumer.stop()


def log_moment(log: Path, text: str) -> datetime | None:
    """The time stamp of the first log line holding `text` (Faust's `[YYYY-mm-dd HH:MM:SS,mmm]`)."""
    for line in log.read_text(errors="replace").splitlines():
        if text in line and line.startswith("["):
            return datetime.strptime(line[1:24], "%Y-%m-%d %H:%M:%S,%f")
    return None


async def timed_start(group: Group, start: Callable[[], tuple[subprocess.Popen[bytes], Path]],
                      publisher: KafkaPublisher, stored: int) -> dict[str, float]:
    """Start a worker and time it: until it has read the changelogs, and until it stores a
    new reading (the `stored + 1`-th of the run)."""
    started, started_at = time.monotonic(), datetime.now()
    worker, log = start()
    probe = f"probe{stored}-{group.run}"
    await publisher.send("readings", probe.encode(), Reading(source_id=probe, time=datetime.now(UTC),
                         values={"pm25": 10.0}, units={"pm25": "ug/m3"}).to_json())
    await wait_stored(group.dsn, group.run, stored + 1)
    ready_s = time.monotonic() - started
    assert worker.poll() is None
    begun = log_moment(log, "Setting newly assigned partitions")
    done = log_moment(log, "Recovery complete")
    read_s = (done - begun).total_seconds() if begun and done else None
    return {"assigned_to_recovered_s": round(read_s, 2) if read_s is not None else -1.0,
            "start_to_first_stored_s": round(ready_s, 2),
            "start_to_assigned_s": round(((begun or started_at) - started_at).total_seconds(), 2)}


async def recovery(state: Path, infra: LocalInfra, keys: int) -> dict[str, Any]:
    """A worker's start against a rule state of `keys` entries (see the module): a fresh one
    (no table files: the changelog from its beginning), then the same one again after a clean
    stop (its RocksDB files: only the changelog's tail)."""
    run = f"sr{uuid4().hex[:6]}"
    group = Group(state / run, infra, run)
    group.table_store = "rocksdb"  # the restart reads its files (fresh starts read the changelog anyway)
    (group.state / "rules" / "pm.yaml").write_text(PENDING_RULE)
    await ensure_topics(group.bootstrap, Topics(run), partitions=PARTITIONS)
    publisher = KafkaPublisher(group.bootstrap, Topics(run), 1 << 20)
    await publisher.start()
    try:
        group.add()
        now = datetime.now(UTC)
        for i in range(keys):
            source = f"k{i}-{run}"
            await publisher.send("readings", source.encode(), Reading(
                source_id=source, time=now, values={"pm25": 80.0}, units={"pm25": "ug/m3"}).to_json())
        await wait_stored(group.dsn, run, keys)
        await wait_records(group.bootstrap, f"{run}-rule-state-changelog", keys)
        group.stop()
        records, _ = await changelog_records(group.bootstrap, f"{run}-rule-state-changelog")

        def fresh() -> tuple[subprocess.Popen[bytes], Path]:
            worker = group.add(loglevel="info")
            return worker, group.state / f"w{len(group.workers) - 1}.log"

        first = await timed_start(group, fresh, publisher, keys)
        group.stop()
        again = await timed_start(group, lambda: group.restart(1), publisher, keys + 1)
        return {"keys": keys, "changelog_records": records, "fresh": first, "restart_with_files": again}
    finally:
        await publisher.stop()
        group.stop()


async def main(worker_counts: list[int], messages: int, rate: float, sizes: list[int]) -> dict[str, object]:
    with tempfile.TemporaryDirectory(prefix="cw-bench-scale-") as folder:
        state = Path(folder)
        infra = LocalInfra.create(state / "infra", "127.0.0.1", free_port(), free_port())
        infra.up()
        try:
            rows = [await throughput(state, infra, n, messages) for n in worker_counts]
            single = next((r for r in rows if r["workers"] == 1), rows[0] if rows else None)
            for row in rows:
                assert single is not None
                row["cpu_vs_single"] = round(row["cpu_ms_per_message"] / single["cpu_ms_per_message"], 2)
            paused = await pauses(state, infra, rate) if rate else None
            recoveries = [await recovery(state, infra, n) for n in sizes]
            smallest = recoveries[0]["fresh"]["start_to_first_stored_s"] if recoveries else 1.0
            for result in recoveries:
                for timing in (result["fresh"], result["restart_with_files"]):
                    timing["start_vs_smallest_fresh"] = round(timing["start_to_first_stored_s"] / smallest, 2)
            return {"partitions": PARTITIONS, "messages": messages, "cpu_count": os.cpu_count(),
                    "throughput": rows, "pauses_with_2_workers": paused, "recovery": recoveries}
        finally:
            infra.down()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", default="1,2,3,4", help="worker counts to measure, comma-separated")
    parser.add_argument("--messages", type=int, default=20000)
    parser.add_argument("--rate", type=float, default=200,
                        help="readings per second while pausing (0: skip the pauses)")
    parser.add_argument("--keys", default="1000,10000,40000", help="rule-state sizes for the recovery bench")
    args = parser.parse_args()
    counts = [int(n) for n in args.workers.split(",") if n]
    sizes = sorted(int(n) for n in args.keys.split(",") if n)
    print(json.dumps(asyncio.run(main(counts, args.messages, args.rate, sizes)), indent=2))
