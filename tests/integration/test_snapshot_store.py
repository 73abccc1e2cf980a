"""Evidence snapshots in TimescaleDB (storage/snapshots.py): kept once per detection, read by
reference from any process, shown inline in a real email, gone with the detections'
retention; and a database that is away costs the email its picture, never the email."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from email import message_from_bytes
from email.policy import default as default_policy
from pathlib import Path
from uuid import uuid4

import asyncpg
import cv2
import numpy as np
import pytest

from citywatch.devservers.smtp import LocalSmtpServer
from detectors.events import Box, Detection
from detectors.snapshots import SnapshotTaker
from notifier.email import EmailChannel, SmtpSettings
from notifier.templates import render
from rules.events import Alert, Evidence
from storage.community import COMMUNITY_LICENSE, server_license
from storage.retention import apply_retention
from storage.snapshots import PgSnapshots

pytestmark = pytest.mark.integration


def detection(source: str, time: datetime) -> Detection:
    return Detection(source_id=source, time=time, frame_event_id=uuid4(), model="yolo", model_version="8n",
                     frame_width=810, frame_height=1080, inference_ms=12.0,
                     boxes=(Box(label="bus", class_id=5, score=0.9, x1=20, y1=230, x2=800, y2=750),))


@pytest.fixture
def bus_bytes(bus_jpg: Path) -> bytes:
    return bus_jpg.read_bytes()


@pytest.fixture
def bus_image(bus_jpg: Path) -> np.ndarray:
    image = cv2.imread(str(bus_jpg))
    assert image is not None
    return image


def store(pool: asyncpg.Pool) -> PgSnapshots:
    return PgSnapshots.on(pool)


def smtp_channel(server: LocalSmtpServer, **kwargs: object) -> EmailChannel:
    config = SmtpSettings(host="127.0.0.1", port=int(server.address.rsplit(":", 1)[1]),
                          from_addr="citywatch@city.example")
    return EmailChannel(config, **kwargs)  # type: ignore[arg-type]


def inline_images(server: LocalSmtpServer) -> list[list[bytes]]:
    found = []
    for entry in server.store.messages():
        raw = (server.store.mail_dir / entry["file"]).read_bytes()
        email = message_from_bytes(raw, policy=default_policy)
        found.append([part.get_content() for part in email.walk() if part.get_content_type() == "image/jpeg"])
    return found


def alert_with(snapshot: str | None) -> Alert:
    now = datetime.now(UTC)
    return Alert(source_id="cam-1", time=now, alert_id=uuid4(), rule_id="buses", title="Bus lane blocked",
                 severity="warning", state="fired", group_key="cam-1", started_at=now,
                 evidence=Evidence(values={"count": 1}, snapshot=snapshot))


async def test_a_snapshot_is_kept_once_and_read_back_by_reference(
    pg_pool: asyncpg.Pool, bus_image: np.ndarray,
) -> None:
    image = bus_image
    seen = detection(f"cam-snap-{uuid4().hex[:6]}", datetime.now(UTC))
    taker = SnapshotTaker(store(pg_pool))
    reference = await taker.take(seen, image)
    assert reference == f"snapshot:{seen.event_id}"
    again = await SnapshotTaker(store(pg_pool)).take(seen, image)  # the frame detected again
    assert again == reference
    assert await pg_pool.fetchval("SELECT count(*) FROM snapshots WHERE event_id = $1", seen.event_id) == 1
    jpeg = await store(pg_pool).load(reference)
    assert jpeg is not None
    decoded = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
    assert decoded is not None and decoded.shape == image.shape  # the frame, with its box drawn
    assert await store(pg_pool).load(f"snapshot:{uuid4()}") is None
    assert await store(pg_pool).load("/etc/passwd") is None  # not a database reference


async def test_snapshots_go_with_the_detections_retention(pg_pool: asyncpg.Pool, bus_bytes: bytes) -> None:
    source, now = f"cam-ret-{uuid4().hex[:6]}", datetime.now(UTC)
    jpeg = bus_bytes
    old, recent = detection(source, now - timedelta(days=40)), detection(source, now - timedelta(hours=1))
    for seen in (old, recent):
        await store(pg_pool).keep(seen, jpeg)
    async with pg_pool.acquire() as connection:
        if await server_license(connection) == COMMUNITY_LICENSE:
            pytest.skip("the community edition drops chunks itself, on its own schedule")
        dropped = await apply_retention(connection, {"detections": timedelta(days=30)})
    assert dropped["snapshots"] >= 1
    kept = await pg_pool.fetch("SELECT event_id FROM snapshots WHERE source_id = $1", source)
    assert [r["event_id"] for r in kept] == [recent.event_id]


async def test_an_email_shows_the_snapshot_from_the_database(
    pg_pool: asyncpg.Pool, bus_bytes: bytes, smtp: LocalSmtpServer,
) -> None:
    seen = detection("cam-1", datetime.now(UTC))
    reference = await store(pg_pool).keep(seen, bus_bytes)
    channel = smtp_channel(smtp, load_image=store(pg_pool).load)
    await channel.send("ops@example.org", render("email", alert_with(reference)))
    assert inline_images(smtp) == [[bus_bytes]]


async def test_a_database_that_is_away_costs_the_email_its_picture_not_the_email(
    smtp: LocalSmtpServer, monkeypatch: pytest.MonkeyPatch,
) -> None:
    from notifier import email

    monkeypatch.setattr(email, "IMAGE_TIMEOUT_S", 0.05)

    async def refused(reference: str) -> bytes | None:
        raise ConnectionRefusedError("database down")

    async def hangs(reference: str) -> bytes | None:
        await asyncio.Event().wait()
        return None

    for load in (refused, hangs):
        await smtp_channel(smtp, load_image=load).send("ops@example.org",
                                                       render("email", alert_with(f"snapshot:{uuid4()}")))
    assert inline_images(smtp) == [[], []]  # both emails sent, without the picture


async def test_an_alert_without_its_own_picture_takes_its_sources_nearest_in_its_window(
    pg_pool: asyncpg.Pool, bus_bytes: bytes, tmp_path: Path,
) -> None:
    from citywatch.runtime import Runtime
    from citywatch.settings import load_settings

    source, now = f"cam-near-{uuid4().hex[:6]}", datetime.now(UTC)
    earlier, inside, other = (detection(source, now - timedelta(seconds=60)),
                              detection(source, now - timedelta(seconds=3)), detection("cam-else", now))
    for seen in (earlier, inside, other):
        await store(pg_pool).keep(seen, bus_bytes)
    config = tmp_path / "citywatch.yaml"
    config.write_text("pipelines: {snapshot_min_interval_s: 5}\n")
    runtime = Runtime(load_settings(config, environ={}))
    runtime._snapshots = store(pg_pool)
    bare = alert_with(None).model_copy(update={"source_id": source, "started_at": now - timedelta(seconds=2)})
    shown = await runtime.with_evidence(bare)
    assert shown.evidence.snapshot == f"snapshot:{inside.event_id}"  # in [start - 5 s, time], the latest
    late = bare.model_copy(update={"started_at": now - timedelta(seconds=1),
                                   "time": now - timedelta(seconds=10)})
    assert (await runtime.with_evidence(late)).evidence.snapshot is None  # nothing in its window
    own = alert_with("snapshot:its-own")
    assert (await runtime.with_evidence(own)).evidence.snapshot == "snapshot:its-own"
    from rules.base import SourceInfo

    class NotAsked:
        async def nearest(self, *args: object) -> str:
            raise AssertionError("a sensor's alert asked for a snapshot")

    runtime.sources = {"aq-1": SourceInfo(kind="sensor")}
    runtime._snapshots = NotAsked()  # type: ignore[assignment]
    sensor_alert = alert_with(None).model_copy(update={"source_id": "aq-1"})
    assert (await runtime.with_evidence(sensor_alert)).evidence.snapshot is None
