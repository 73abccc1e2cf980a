"""A 30 s TimescaleDB outage under load: do notifications wait for the database?

A real worker, the local broker and TimescaleDB, the local SMTP server. Readings flow at
`--rate` per second throughout. One sensor at a time crosses a threshold and the time from
publishing that reading to its email arriving is measured: first with the database up (the
baseline, in the same run), then while it is down. When it returns, the bench measures how
long until the last reading is stored and the notification log is mirrored. Prints JSON.

    .venv/bin/python -m bench.outage --outage 30 --rate 200 --alerts 10
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from uuid import uuid4

import asyncpg
from aiokafka import AIOKafkaConsumer

from bench.worker_process import start_worker, stop_worker
from citywatch.devservers.smtp import LocalSmtpServer
from citywatch.infra.manager import LocalInfra
from citywatch.infra.process import free_port
from citywatch.publisher import KafkaPublisher
from citywatch.topics import Topics, ensure_topics, follow_from_end
from ingest.events import Reading

RULE = """
id: pm-bench
title: PM2.5 high
severity: critical
sources: {{ids: [{sources}]}}
condition: {{type: threshold, field: pm25, above: 50}}
notify: [{{recipient: ops, channels: [email]}}]
"""


def summary(latencies_ms: list[float]) -> dict[str, float]:
    ordered = sorted(latencies_ms)
    return {"p50_ms": round(statistics.median(ordered), 1),
            "max_ms": round(ordered[-1], 1), "count": len(ordered)}


async def count(dsn: str, sql: str) -> int:
    try:
        connection = await asyncpg.connect(dsn, timeout=2)
    except (OSError, asyncpg.PostgresError, TimeoutError):
        return -1
    try:
        return int(await connection.fetchval(sql))
    except asyncpg.UndefinedTableError:
        return 0
    finally:
        await connection.close()


async def run(outage_s: float, rate: float, alerts: int) -> dict[str, object]:
    with tempfile.TemporaryDirectory(prefix="cw-bench-outage-") as folder:
        state = Path(folder)
        infra = LocalInfra.create(state / "infra", "127.0.0.1", free_port(), free_port())
        infra.up()
        smtp = LocalSmtpServer("127.0.0.1", free_port(), state / "mail")
        smtp.start()
        try:
            return await measure(infra, smtp, state, outage_s, rate, alerts)
        finally:
            smtp.stop()
            infra.down()


async def measure(infra: LocalInfra, smtp: LocalSmtpServer, state: Path, outage_s: float, rate: float,
                  alerts: int) -> dict[str, object]:
    bootstrap, run = f"127.0.0.1:{infra.broker.port}", f"bench{uuid4().hex[:6]}"
    dsn = infra.database.dsn
    firing = [f"fire{i}-{run}" for i in range(2 * alerts)]
    (state / "rules").mkdir()
    (state / "rules" / "pm.yaml").write_text(RULE.format(sources=", ".join(firing)))
    port = smtp.address.rsplit(":", 1)[1]
    (state / "citywatch.yaml").write_text(f"""
broker: {{url: "kafka://{bootstrap}", topic_prefix: {run}, app_id: {run}, partitions: 2}}
storage: {{dsn: "{dsn}", batch_size: 2000, batch_window_s: 0.5}}
infra: {{state_dir: "{state / 'worker-state'}"}}
rules: {{paths: ["{state / 'rules'}"], tick_every_s: 0.5}}
channels: {{email: {{host: 127.0.0.1, port: {port}, from_addr: citywatch@localhost}}}}
recipients: {{ops: {{email: ops@example.org}}}}
worker: {{loglevel: warn}}
""")
    await ensure_topics(bootstrap, Topics(run), partitions=2)
    publisher = KafkaPublisher(bootstrap, Topics(run), 1 << 20)
    await publisher.start()
    worker = start_worker(state / "citywatch.yaml", state / "worker.log")
    sent = 0
    background = f"load-{run}"

    async def load() -> None:
        nonlocal sent
        while True:
            reading = Reading(source_id=background, time=datetime.now(UTC), values={"pm25": 1.0},
                              units={"pm25": "ug/m3"})
            await publisher.send("readings", background.encode(), reading.to_json())
            sent += 1
            await asyncio.sleep(1 / rate)

    alerts_seen: dict[str, float] = {}
    watcher = AIOKafkaConsumer(bootstrap_servers=bootstrap)
    await watcher.start()
    await follow_from_end(watcher, [Topics(run).name("alerts")], wait_for_topics_s=0.5)

    async def watch_alerts() -> None:
        async for record in watcher:
            alerts_seen.setdefault(json.loads(record.value or b"{}").get("source_id", ""), time.monotonic())

    async def fire(source: str) -> tuple[float, float]:
        """Publish the reading that fires; ms until its alert was on the topic, and until its email
        arrived."""
        before = len(smtp.store.messages())
        started = time.monotonic()
        reading = Reading(source_id=source, time=datetime.now(UTC), values={"pm25": 90.0},
                          units={"pm25": "ug/m3"})
        await publisher.send("readings", source.encode(), reading.to_json())
        while len(smtp.store.messages()) <= before:
            if time.monotonic() - started > 60:
                raise RuntimeError(f"no email for {source} within 60 s; see {state / 'worker.log'}")
            await asyncio.sleep(0.005)
        mailed = time.monotonic()
        return (alerts_seen.get(source, mailed) - started) * 1000, (mailed - started) * 1000

    loader = asyncio.create_task(load())
    alert_watch = asyncio.create_task(watch_alerts())
    try:
        while await count(dsn, "SELECT count(*) FROM readings") <= 0:  # noqa: ASYNC110 - the worker joined
            await asyncio.sleep(0.2)
        up = [await fire(source) for source in firing[:alerts]]
        infra.database.stop()
        down_at = time.monotonic()
        during = [await fire(source) for source in firing[alerts:]]
        all_mailed_after_s = time.monotonic() - down_at
        await asyncio.sleep(max(0.0, outage_s - (time.monotonic() - down_at)))  # the outage lasts, under load
        await asyncio.to_thread(infra.database.start)
        back = time.monotonic()
        loader.cancel()
        published = sent
        stored = f"SELECT count(*) FROM readings WHERE source_id = '{background}'"
        while await count(dsn, stored) < published:  # noqa: ASYNC110 - polling the database
            await asyncio.sleep(0.1)
        rows_after_s = time.monotonic() - back
        mirrored = "SELECT count(*) FROM notification_log WHERE status = 'sent'"
        while await count(dsn, mirrored) < len(firing):  # noqa: ASYNC110 - polling the database
            await asyncio.sleep(0.1)
        mirrored_after_s = time.monotonic() - back
        emails = len(smtp.store.messages())
        return {
            "benchmark": "outage", "cpu_count": os.cpu_count(), "outage_s": outage_s, "rate_per_s": rate,
            "reading_to_alert_database_up": summary([a for a, _ in up]),
            "reading_to_email_database_up": summary([m for _, m in up]),
            "reading_to_alert_database_down": summary([a for a, _ in during]),
            "reading_to_email_database_down": summary([m for _, m in during]),
            "emails_sent_during_outage": len(during), "emails_total": emails, "alerts": len(firing),
            "last_email_before_return_s": round(outage_s - all_mailed_after_s, 1),
            "readings_published": published,
            "last_row_stored_after_return_s": round(rows_after_s, 1),
            "notification_log_mirrored_after_return_s": round(mirrored_after_s, 1),
        }
    finally:
        loader.cancel()
        alert_watch.cancel()
        await watcher.stop()
        await publisher.stop()
        stop_worker(worker)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--outage", type=float, default=30.0)
    parser.add_argument("--rate", type=float, default=200.0, help="background readings per second")
    parser.add_argument("--alerts", type=int, default=10, help="alerts with the database up, and again down")
    args = parser.parse_args()
    print(json.dumps(asyncio.run(run(args.outage, args.rate, args.alerts))))
