"""`citywatch sources boost` reaches the process running the camera through the control topic."""

import asyncio
import signal
import subprocess
import sys
from pathlib import Path
from uuid import uuid4

import aiohttp
import cv2
import pytest

from citywatch.infra.process import free_port
from tests.unit.test_camera_parts import scene

pytestmark = pytest.mark.integration


async def sample_fps(session: aiohttp.ClientSession, port: int, source: str) -> float | None:
    try:
        async with session.get(f"http://127.0.0.1:{port}/") as page:
            text = await page.text()
    except aiohttp.ClientConnectorError:
        return None
    prefix = f'citywatch_source_sample_fps{{source="{source}"}} '
    line = next((line for line in text.splitlines() if line.startswith(prefix)), None)
    return float(line.removeprefix(prefix)) if line else None


async def wait_for_fps(
    session: aiohttp.ClientSession, port: int, source: str, wanted: float, attempts: int = 60
) -> float | None:
    seen = None
    for _ in range(attempts):
        seen = await sample_fps(session, port, source)
        if seen == wanted:
            break
        await asyncio.sleep(0.5)
    return seen


async def test_boost_request_raises_the_sampling_rate(tmp_path: Path, bootstrap: str) -> None:
    video = tmp_path / "still.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter.fourcc(*"XVID"), 10, (384, 288))
    for i in range(100):
        writer.write(scene(seed=i))
    writer.release()
    run, metrics = f"ctl{uuid4().hex[:8]}", free_port()
    config = tmp_path / "citywatch.yaml"
    config.write_text(f"""
broker: {{url: "kafka://{bootstrap}", topic_prefix: {run}, partitions: 1}}
metrics: {{ingest_port: {metrics}}}
sources:
  cameras:
    - {{id: cam-still, url: "{video}", fps: 4, idle_fps: 0.5, health_every_s: 1}}
""")
    cli = [sys.executable, "-m", "citywatch", "--config", str(config)]
    process = subprocess.Popen(  # noqa: ASYNC220 - a long-lived child, stopped below
        [*cli, "ingest", "--status-every", "0"], stderr=subprocess.PIPE, text=True)
    try:
        async with aiohttp.ClientSession() as session:
            assert await wait_for_fps(session, metrics, "cam-still", 0.5) == 0.5  # a still scene idles
            # The follower reads the control topic from its end once it is assigned; a request sent
            # before that is not for it. Boosting is idempotent, so ask again until it shows.
            seen = None
            for _ in range(10):
                boost = await asyncio.create_subprocess_exec(
                    *cli, "sources", "boost", "cam-still", "--seconds", "120", stderr=asyncio.subprocess.PIPE)
                _, boost_err = await boost.communicate()
                assert boost.returncode == 0, boost_err
                seen = await wait_for_fps(session, metrics, "cam-still", 4.0, attempts=12)
                if seen == 4.0:
                    break
            assert seen == 4.0
    finally:
        process.send_signal(signal.SIGINT)
        process.communicate(timeout=30)
