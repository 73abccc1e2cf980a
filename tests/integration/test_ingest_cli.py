"""`citywatch ingest` against the real broker: one chosen source, status lines, frames and health."""

import asyncio
import contextlib
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from uuid import uuid4

import aiohttp
import pytest

from citywatch.codecs import decode_event
from citywatch.infra.process import free_port
from citywatch.topics import Topics, ensure_topics
from ingest.events import SourceHealth
from ingest.frame_codec import decode_frame
from tests.kafka_helpers import drain

pytestmark = pytest.mark.integration


async def test_ingest_runs_the_chosen_source_with_status_lines(
    tmp_path: Path, bootstrap: str, vtest_avi: Path, aq_csv: Path
) -> None:
    run = f"ing{uuid4().hex[:8]}"
    topics = Topics(run)
    await ensure_topics(bootstrap, topics, partitions=1)
    metrics_port, receiver_port = free_port(), free_port()
    config = tmp_path / "citywatch.yaml"
    config.write_text(f"""
broker: {{url: "kafka://{bootstrap}", topic_prefix: {run}, partitions: 1}}
metrics: {{ingest_port: {metrics_port}}}
sources:
  sensors:
    - {{id: aq-push, device_id: esp8266-1}}
  http_receiver: {{enabled: true, port: {receiver_port}}}
  cameras:
    - {{id: cam-a, url: "{vtest_avi}", fps: 4, idle_fps: 2, health_every_s: 1}}
    - {{id: cam-b, url: "{tmp_path / 'missing.avi'}"}}
  air_quality:
    - {{id: aq-1, path: "{aq_csv}", columns: {{no2: {{field: no2, unit: ug/m3}}}}}}
""")
    cli = [sys.executable, "-m", "citywatch", "--config", str(config), "ingest"]
    unknown = subprocess.run(  # noqa: ASYNC221 - a short CLI call
        [*cli, "--source", "nope"], capture_output=True, text=True, timeout=60)
    assert unknown.returncode != 0 and "unknown source ids: nope" in unknown.stderr
    process = subprocess.Popen(  # noqa: ASYNC220 - a long-lived child, stopped below
        [*cli, "--source", "cam-a", "--status-every", "1"], stderr=subprocess.PIPE, text=True)
    assert process.stderr is not None
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(process.stderr or ()), daemon=True)
    reader.start()
    metrics = ""
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:  # until a status line and the metrics say it is sending
        assert process.poll() is None, "".join(lines)
        with contextlib.suppress(aiohttp.ClientError):
            async with aiohttp.ClientSession() as session, \
                    session.get(f"http://127.0.0.1:{metrics_port}/") as page:
                metrics = await page.text()
        sending = re.search(r'citywatch_source_frames\{outcome="sent",source="cam-a"\} [1-9]', metrics)
        if sending and any("cam-a" in line and "connected" in line for line in list(lines)):
            break
        await asyncio.sleep(0.5)
    with pytest.raises(aiohttp.ClientConnectorError):  # --source cam-a needs no HTTP receiver
        async with aiohttp.ClientSession() as session:
            await session.post(f"http://127.0.0.1:{receiver_port}/readings", data=b"{}")
    process.send_signal(signal.SIGINT)
    process.wait(timeout=30)
    reader.join(timeout=10)
    stderr = "".join(lines)
    assert "cam-a" in stderr and "connected" in stderr and "cam-b" not in stderr
    assert 'citywatch_source_connected{source="cam-a"} 1.0' in metrics
    assert 'citywatch_source_frames{outcome="sent",source="cam-a"}' in metrics
    frames = [decode_frame(raw) for raw in await drain(bootstrap, topics.name("frames"))]
    assert frames and {f.source_id for f in frames} == {"cam-a"}
    telemetry = [decode_event("telemetry", raw) for raw in await drain(bootstrap, topics.name("telemetry"))]
    health = [e for e in telemetry if isinstance(e, SourceHealth)]
    assert health and health[-1].connected and health[-1].frames_sent > 0
    assert not await drain(bootstrap, topics.name("readings"))
