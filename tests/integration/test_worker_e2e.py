"""The worker as a subprocess, end to end on real infrastructure.

Video file → frames → YOLO → detections → crowd rule → alert → email on a real SMTP
server; CSV replay → readings → NO2 rule → alert → SMS through the real twilio client
to the local endpoint; everything stored in TimescaleDB; malformed messages on the
input topics end in the dead-letter topic with their reason while the worker goes on.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from email import message_from_bytes
from email.policy import default as default_policy
from pathlib import Path
from uuid import uuid4

import asyncpg
import cv2
import numpy as np
import pytest

from citywatch.devservers.smtp import LocalSmtpServer
from citywatch.devservers.twilio import LocalTwilioEndpoint
from citywatch.infra.process import free_port
from citywatch.publisher import KafkaPublisher
from citywatch.topics import Topics, ensure_topics
from ingest.events import FrameHeader
from ingest.frame_codec import Frame, encode_frame
from storage.snapshots import PgSnapshots
from tests.kafka_helpers import dead_letters

pytestmark = [pytest.mark.integration, pytest.mark.e2e]

ROOT = Path(__file__).resolve().parents[2]
SID = "AC" + "2" * 32
TOKEN = "e2e-" + uuid4().hex
DEADLINE_S = 150


def config_text(tmp: Path, run: str, bootstrap: str, dsn: str, smtp_port: int, twilio_url: str,
                vtest: Path, aq: Path, model: Path) -> str:
    return f"""
broker: {{url: "kafka://{bootstrap}", topic_prefix: {run}, app_id: {run}, partitions: 2}}
storage: {{dsn: "{dsn}", batch_window_s: 0.5}}
infra: {{state_dir: "{tmp / 'state'}"}}
sources:
  cameras:
    - {{id: cam-{run}, url: "{vtest}", fps: 4, idle_fps: 1}}
  air_quality:
    - id: aq-{run}
      path: "{aq}"
      columns: {{no2: {{field: no2, unit: ug/m3}}}}
      speed: 36000
      start_row: 195
      max_rows: 40
models:
  - {{name: yolov8n-coco, type: onnx-yolo, path: "{model}", version: "8.0-coco80"}}
rules: {{paths: ["{ROOT / 'examples' / 'rules'}"]}}
channels:
  email: {{host: 127.0.0.1, port: {smtp_port}, from_addr: citywatch@localhost}}
  sms: {{account_sid: {SID}, from_number: "+15005550006", api_base_url: "{twilio_url}"}}
recipients:
  ops-desk: {{email: ops-desk@example.org}}
  on-call: {{phone: "+447700900123"}}
worker: {{loglevel: info}}
"""


@pytest.fixture
async def dev_servers(tmp_path: Path) -> AsyncIterator[tuple[LocalSmtpServer, LocalTwilioEndpoint]]:
    smtp = LocalSmtpServer("127.0.0.1", free_port(), tmp_path / "mail")
    twilio = LocalTwilioEndpoint("127.0.0.1", free_port(), tmp_path / "sms.jsonl", SID, TOKEN)
    smtp.start()
    await twilio.start()
    yield smtp, twilio
    await twilio.stop()
    smtp.stop()


async def publish_malformed(bootstrap: str, topics: Topics, run: str) -> None:
    publisher = KafkaPublisher(bootstrap, topics, 1 << 20)
    await publisher.start()
    try:
        await publisher.send("frames", f"cam-{run}".encode(), b"definitely not a frame")
        corrupt = Frame(FrameHeader(source_id=f"cam-{run}", time=datetime.now(UTC), sequence=0, width=4,
                                    height=4), b"\xff\xd8 truncated jpeg")
        await publisher.send("frames", f"cam-{run}".encode(), encode_frame(corrupt))
        await publisher.send("readings", f"aq-{run}".encode(), b'{"source_id": "aq", "values": "high"}')
    finally:
        await publisher.stop()


async def stored(pool: asyncpg.Pool, run: str) -> dict[str, int]:
    return {
        "readings": await pool.fetchval("SELECT count(*) FROM readings WHERE source_id=$1", f"aq-{run}"),
        "detections": await pool.fetchval("SELECT count(*) FROM detections WHERE source_id=$1", f"cam-{run}"),
        "alerts": await pool.fetchval(
            "SELECT count(*) FROM alerts WHERE source_id = ANY($1::text[])", [f"cam-{run}", f"aq-{run}"]),
        "notifications": await pool.fetchval(
            "SELECT count(*) FROM notifications WHERE status='sent' AND alert_id IN"
            " (SELECT alert_id FROM alerts WHERE source_id = ANY($1::text[]))",
            [f"cam-{run}", f"aq-{run}"]),
    }


async def test_worker_runs_the_whole_pipeline(
    tmp_path: Path, bootstrap: str, dsn: str, pg_pool: asyncpg.Pool,
    dev_servers: tuple[LocalSmtpServer, LocalTwilioEndpoint],
    vtest_avi: Path, aq_csv: Path, yolo_onnx: Path,
) -> None:
    smtp, twilio = dev_servers
    run = f"e2e{uuid4().hex[:8]}"
    topics = Topics(run)
    config = tmp_path / "citywatch.yaml"
    config.write_text(config_text(tmp_path, run, bootstrap, dsn, int(smtp.address.rsplit(":", 1)[1]),
                                  twilio.base_url, vtest_avi, aq_csv, yolo_onnx))
    await ensure_topics(bootstrap, topics, partitions=2)
    await publish_malformed(bootstrap, topics, run)
    log = tmp_path / "worker.log"
    env = {**os.environ, "CITYWATCH_CHANNELS__SMS__AUTH_TOKEN": TOKEN}
    with log.open("wb") as out:
        worker = subprocess.Popen(  # noqa: ASYNC220 - a long-lived child, waited for below
            [sys.executable, "-m", "citywatch", "--config", str(config), "worker"],
            stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    try:
        started = time.monotonic()
        counts: dict[str, int] = {}
        while time.monotonic() - started < DEADLINE_S:
            assert worker.poll() is None, f"worker exited:\n{log.read_text()[-3000:]}"
            counts = await stored(pg_pool, run)
            if smtp.store.messages() and twilio.store.messages() and all(counts.values()):
                break
            await asyncio.sleep(2)
        letters = await dead_letters(bootstrap, topics)
    finally:
        worker.send_signal(signal.SIGTERM)
        try:
            worker.wait(40)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait()
    output = log.read_text()
    assert all(counts.values()), f"rows: {counts}\n{output[-3000:]}"
    [mail, *_] = smtp.store.messages()
    assert mail["to"] == ["ops-desk@example.org"] and "Crowd forming" in mail["subject"]
    [sms, *_] = twilio.store.messages()
    assert sms["to"] == "+447700900123" and "NO2" in sms["body"]
    assert TOKEN not in output
    reasons = sorted((letter.consumer, letter.reason) for letter in letters)
    assert any(c == "detect" and "not a frame message" in r for c, r in reasons), reasons
    assert any(c == "detect" and "corrupt JPEG" in r for c, r in reasons), reasons
    assert any(c == "store" and "invalid Reading" in r for c, r in reasons), reasons
    assert worker.returncode in (0, -signal.SIGTERM)
    # evidence: kept in TimescaleDB (any worker or console reads it), shown inline in the email
    snapshot = await pg_pool.fetchval(
        "SELECT snapshot FROM detections WHERE source_id=$1 AND snapshot IS NOT NULL LIMIT 1", f"cam-{run}")
    jpeg = await PgSnapshots.on(pg_pool).load(snapshot)
    assert snapshot.startswith("snapshot:") and jpeg is not None and jpeg.startswith(b"\xff\xd8"), snapshot
    assert cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR) is not None
    evidence = await pg_pool.fetchval(
        "SELECT evidence->>'snapshot' FROM alerts WHERE source_id=$1 AND state='fired' LIMIT 1", f"cam-{run}")
    assert evidence is not None and evidence.startswith("snapshot:")
    email = message_from_bytes((smtp.store.mail_dir / mail["file"]).read_bytes(), policy=default_policy)
    inline = [part.get_content() for part in email.walk() if part.get_content_type() == "image/jpeg"]
    assert inline == [await PgSnapshots.on(pg_pool).load(evidence)]
