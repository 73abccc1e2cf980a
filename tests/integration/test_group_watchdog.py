"""The group watchdog on the real broker and SMTP server: a member of the group that stops
committing while records wait is a stalled group (a critical email, sent by the watchdog
itself), and committing again recovers it (a resolved email). The console answers
/healthz/group from the same verdict (test_console)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from uuid import uuid4

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from citywatch.devservers.smtp import LocalSmtpServer
from citywatch.settings import load_settings
from citywatch.topics import Topics, ensure_topics
from citywatch.watchdog import GroupWatchdog, Verdict, watching

pytestmark = [pytest.mark.integration]

DEADLINE_S = 60.0


async def verdict_becomes(watchdog: GroupWatchdog, status: str) -> Verdict:
    started = time.monotonic()
    while watchdog.verdict.status != status or not watchdog.verdict.checked_at_s:
        assert time.monotonic() - started < DEADLINE_S, f"still {watchdog.verdict}"
        await asyncio.sleep(0.2)
    return watchdog.verdict


async def subjects_include(smtp: LocalSmtpServer, start: str) -> list[str]:
    started = time.monotonic()
    while True:
        subjects = [str(m["subject"]) for m in smtp.store.messages()]
        if any(s.startswith(start) for s in subjects):
            return subjects
        assert time.monotonic() - started < DEADLINE_S, f"no email starting {start!r}: {subjects}"
        await asyncio.sleep(0.2)


async def test_a_group_that_stops_committing_is_noticed_and_its_recovery_too(
    tmp_path: Path, bootstrap: str, smtp: LocalSmtpServer,
) -> None:
    run = f"wd{uuid4().hex[:8]}"
    port = int(smtp.address.rsplit(":", 1)[1])
    (tmp_path / "citywatch.yaml").write_text(f"""
broker: {{url: "kafka://{bootstrap}", topic_prefix: {run}, app_id: {run}, partitions: 1}}
channels: {{email: {{host: 127.0.0.1, port: {port}, from_addr: citywatch@localhost}}}}
recipients: {{ops: {{email: ops@example.org}}}}
watchdog: {{every_s: 0.3, stalled_after_s: 2, notify: [ops]}}
""")
    settings = load_settings(tmp_path / "citywatch.yaml")
    topics = Topics(run)
    await ensure_topics(bootstrap, topics, partitions=1)
    readings = TopicPartition(topics.name("readings"), 0)
    member = AIOKafkaConsumer(topics.name("readings"), bootstrap_servers=bootstrap, group_id=run,
                              enable_auto_commit=False, auto_offset_reset="earliest")
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await member.start()
    await producer.start()
    try:
        while not member.assignment():  # a member of the group, as a worker is
            await member.getmany(timeout_ms=200)
        async with watching(settings) as watchdog:
            assert watchdog is not None
            assert (await verdict_becomes(watchdog, "ok")).state == "Stable"
            for n in range(5):  # records arrive that the member never commits
                await producer.send_and_wait(readings.topic, f"r{n}".encode(), partition=0)
            stalled = await verdict_becomes(watchdog, "stalled")
            assert stalled.lag == 5 and f"{readings.topic}[0]: 5 records waiting" in stalled.reasons[0]
            subjects = await subjects_include(smtp, "[CRITICAL] CityWatch workers stalled")
            assert len(subjects) == 1  # told once, not on every look
            await member.commit({readings: 5})  # the group moves again
            assert (await verdict_becomes(watchdog, "ok")).lag == 0
            subjects = await subjects_include(smtp, "[RESOLVED] CityWatch workers recovered")
            assert len(subjects) == 2
    finally:
        await producer.stop()
        await member.stop()
