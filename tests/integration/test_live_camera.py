"""A live HTTP MJPEG camera (served here from vtest.avi frames) read by PyAV's and by OpenCV's
FFmpeg client: the stream reader, reconnect after the camera drops, offline/online events."""

import asyncio
from pathlib import Path

import cv2
import pytest
from aiohttp import web

from citywatch.infra.process import free_port
from ingest.camera import CameraSource
from ingest.capture import FileReader
from ingest.events import DataQuality
from ingest.jpeg import encode_jpeg
from ingest.settings import CameraSourceSettings
from ingest.sink import MemorySink

pytestmark = pytest.mark.integration
BOUNDARY = "citywatchframe"


def mjpeg_app(frames: list[bytes], fps: float) -> web.Application:
    async def stream(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={
            "Content-Type": f"multipart/x-mixed-replace; boundary={BOUNDARY}"})
        await response.prepare(request)
        index = 0
        while True:
            jpeg = frames[index % len(frames)]
            await response.write(
                f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: {len(jpeg)}\r\n\r\n".encode()
                + jpeg + b"\r\n")
            index += 1
            await asyncio.sleep(1 / fps)

    app = web.Application()
    app.router.add_get("/video.mjpg", stream)
    return app


async def start(app: web.Application, port: int) -> web.AppRunner:
    runner = web.AppRunner(app, shutdown_timeout=0.5)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner


@pytest.mark.parametrize("decoder", ["pyav", "opencv"])
async def test_mjpeg_camera_streams_drops_and_reconnects(vtest_avi: Path, decoder: str) -> None:
    reader = FileReader(vtest_avi, loop=False)
    frames = [encode_jpeg(cv2.resize(reader.read(0.1), (384, 288)), 80) for _ in range(40)]
    reader.close()
    port = free_port()
    runner = await start(mjpeg_app(frames, fps=10), port)
    camera = CameraSource(CameraSourceSettings(
        id="cam-live", url=f"http://127.0.0.1:{port}/video.mjpg", realtime=True, decoder=decoder,
        fps=4, idle_fps=4, stall_timeout_s=2, reconnect_initial_s=0.2,
        reconnect_max_s=0.5, health_every_s=1))
    sink = MemorySink()
    task = asyncio.create_task(camera.run(sink))
    try:
        for _ in range(100):
            if camera.stats.sent >= 3:
                break
            await asyncio.sleep(0.1)
        assert camera.stats.connected and camera.stats.sent >= 3
        assert (sink.frames[0].header.width, sink.frames[0].header.height) == (384, 288)

        await runner.cleanup()  # the camera drops off the network
        for _ in range(100):
            if not camera.stats.connected:
                break
            await asyncio.sleep(0.1)
        assert not camera.stats.connected
        runner = await start(mjpeg_app(frames, fps=10), port)  # and comes back
        sent_before = camera.stats.sent
        for _ in range(150):
            if camera.stats.connected and camera.stats.sent > sent_before:
                break
            await asyncio.sleep(0.1)
        assert camera.stats.sent > sent_before and camera.stats.reconnects >= 1
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await runner.cleanup()
    quality = [(e.issue, e.active) for e in sink.telemetry_events if isinstance(e, DataQuality)]
    assert quality[:2] == [("offline", True), ("offline", False)]
