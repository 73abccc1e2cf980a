"""A poison message on every topic the worker reads: each becomes a stored dead letter with
its reason, and everything around it flows (rows stored, the alert notified, the worker up).

Poison of two kinds: what no decoder accepts (garbage, hostile JSON, impossible values),
and what decodes but the database can never hold (found by splitting the store's batch)."""

from __future__ import annotations

import json
from pathlib import Path
from uuid import uuid4

import asyncpg
import numpy as np
import pytest

from citywatch.devservers.smtp import LocalSmtpServer
from citywatch.publisher import KafkaPublisher
from detectors.events import Box, Detection
from ingest.events import FrameHeader
from ingest.frame_codec import Frame, encode_frame
from ingest.jpeg import encode_jpeg
from tests.faults.conftest import (
    count,
    mailed_message_ids,
    now,
    reading,
    smtp_port,
    worker_config,
    write_rule,
)
from tests.worker_process import Worker, until

pytestmark = [pytest.mark.integration, pytest.mark.e2e]


def bomb_jpeg() -> bytes:
    data = bytearray(encode_jpeg(np.full((16, 16, 3), 90, np.uint8), 80))
    at = data.index(b"\xff\xc0")
    data[at + 5:at + 9] = (40000).to_bytes(2, "big") * 2
    return bytes(data)


def detection(source: str, label: str = "car", width: int = 640) -> Detection:
    return Detection(source_id=source, time=now(), frame_event_id=uuid4(), model="m", model_version="1",
                     frame_width=width, frame_height=480, inference_ms=1.0,
                     boxes=(Box(label=label, class_id=0, score=0.9, x1=1, y1=1, x2=9, y2=9),))


def poison(source: str) -> dict[str, list[bytes]]:
    """Per topic, messages the worker must refuse, each alone."""
    good = reading(source, now(), 10.0).to_json()
    deep = b"[" * 100_000 + b"]" * 100_000
    header = FrameHeader(source_id=source, time=now(), sequence=1, width=16, height=16)
    return {
        "readings": [
            b"\x00\xff not json", deep,
            good.replace(b'"pm25":10.0', b'"pm25":NaN'),
            good.replace(b'"values":{', b'"period_s":3000000000,"values":{'),
            good.replace(b'"pm25":10.0', b'"pm\\u000025":10.0'),
            json.dumps({**json.loads(good), "time": "0001-01-01T00:00:00+01:00"}).encode(),
            json.dumps({**json.loads(good), "time": "9999-12-31T23:59:59-01:00"}).encode(),
        ],
        # these decode, but the database cannot hold them: an int4 overflow, a NUL in text
        "detections": [detection(source, width=3_000_000_000).to_json(),
                       detection(source, label="c\x00r").to_json()],
        "frames": [b"CWF1garbage", encode_frame(Frame(header, bomb_jpeg()))],
        "telemetry": [b'{"kind": "nonsense"}'],
        "alerts": [b"{}"],
        "notifications": [b"[1, 2]"],
        "acks": [b"\xff"],
        "clock": [b'{"tick": "yesterday"}'],
        "correlate": [b"\x00"],
        "rules": [b"\x89PNG\r\n\x1a\n not a rules message"],
    }


async def test_a_poison_message_on_every_topic_is_a_dead_letter_and_the_rest_flows(
    tmp_path: Path, bootstrap: str, dsn: str, pg_pool: asyncpg.Pool, run: str, smtp: LocalSmtpServer,
    publisher: KafkaPublisher,
) -> None:
    source = f"aq-{run}"
    write_rule(tmp_path, run, [source])
    worker = Worker(worker_config(tmp_path, run, bootstrap, dsn, smtp_port(smtp)), tmp_path / "worker.log")
    worker.start()
    bad = poison(source)
    try:
        start = now()
        for i in range(20):  # good readings and detections interleaved with the poison
            await publisher.send("readings", source.encode(), reading(source, start, 10.0 + i).to_json())
            await publisher.send("detections", source.encode(), detection(source).to_json())
            for topic, messages in bad.items():
                if i < len(messages):
                    await publisher.send(topic, source.encode(), messages[i])  # type: ignore[arg-type]
        await publisher.send("readings", source.encode(), reading(source, now(), 80.0).to_json())
        wanted = {topic: len(messages) for topic, messages in bad.items()}
        letters = await until(f"dead letters stored from every topic: {wanted}",
                              lambda: _letters(pg_pool, run, wanted), worker)
        await until("21 readings and 20 detections stored", lambda: _stored(dsn, source, 21, 20), worker)
        await until("the alert's email", lambda: _mailed(smtp), worker)
        worker.check_alive()
    finally:
        worker.stop()
    by_origin: dict[str, int] = {}
    for topic, consumer, reason in letters:
        assert reason and reason != "?", (topic, consumer)
        by_origin[topic.removeprefix(f"{run}.")] = by_origin.get(topic.removeprefix(f"{run}."), 0) + 1
    # rules and clock messages reach two consumers each (archive-rules and the rule book;
    # evaluate, correlate and notify); every other poison is refused by each agent reading it
    assert set(by_origin) == set(bad)
    for topic, messages in bad.items():
        assert by_origin[topic] >= len(messages), (topic, by_origin)
    reasons = " ".join(r for _, _, r in letters)
    for expected_reason in ("exceeds the limit", "out of int32 range", "0x00", "outside the years",
                            "finite number", "less than or equal to 31622400", "String should match pattern"):
        assert expected_reason in reasons, (expected_reason, letters)
    assert await count(dsn, "SELECT count(*) FROM readings WHERE source_id=$1", source) == 21
    assert len(mailed_message_ids(smtp)) == 1


async def _letters(pool: asyncpg.Pool, run: str, wanted: dict[str, int]) -> list[tuple[str, str, str]] | None:
    try:
        rows = await pool.fetch(
            "SELECT origin_topic, consumer, reason FROM dead_letters WHERE origin_topic LIKE $1", f"{run}.%")
    except asyncpg.UndefinedTableError:
        return None
    letters = [(str(r[0]), str(r[1]), str(r[2])) for r in rows]
    found = {topic: sum(1 for t, _, _ in letters if t == f"{run}.{topic}") for topic in wanted}
    return letters if all(found[t] >= n for t, n in wanted.items()) else None


async def _stored(dsn: str, source: str, readings: int, detections: int) -> bool:
    return (await count(dsn, "SELECT count(*) FROM readings WHERE source_id=$1", source) == readings
            and await count(dsn, "SELECT count(*) FROM detections WHERE source_id=$1", source) == detections)


async def _mailed(smtp: LocalSmtpServer) -> bool:
    return bool(mailed_message_ids(smtp))
