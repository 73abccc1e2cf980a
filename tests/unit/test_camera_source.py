import asyncio
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pytest

from ingest.camera import CameraSource
from ingest.capture import EndOfStream, Image, SourceError
from ingest.events import DataQuality, SourceHealth
from ingest.frame_codec import decode_frame, encode_frame
from ingest.settings import CameraSourceSettings
from ingest.sink import MemorySink
from tests.unit.test_camera_parts import scene


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class ScriptedReader:
    """Plays a script of images; an exception in the script is raised at that point.
    Source time advances by the requested interval per read, like a camera."""

    def __init__(self, script: list[Image | Exception], clock: Clock) -> None:
        self.script = script
        self.clock = clock

    def read(self, interval_s: float) -> Image:
        self.clock.now += interval_s
        if not self.script:
            raise EndOfStream("done")
        item = self.script.pop(0)
        if isinstance(item, Exception):
            raise item
        return item

    def close(self) -> None:
        pass


def source(scripts: list[list[Image | Exception]], clock: Clock, **overrides: object) -> CameraSource:
    def factory(_: CameraSourceSettings) -> ScriptedReader:
        if not scripts:
            raise SourceError("camera unreachable")
        return ScriptedReader(scripts.pop(0), clock)

    config = CameraSourceSettings.model_validate({
        "id": "cam-1", "url": "scripted", "realtime": False, "reconnect_initial_s": 0.001,
        "reconnect_max_s": 0.002, "fps": 2, "idle_fps": 0.5, "motion": {"heartbeat_s": 30, "hold_s": 10},
        **overrides})
    reader_factory: Callable[[CameraSourceSettings], ScriptedReader] = factory
    return CameraSource(config, clock=clock, reader_factory=reader_factory)


async def test_static_scene_sends_heartbeats_and_motion_raises_the_rate() -> None:
    clock = Clock()
    static = [scene(seed=i) for i in range(20)]  # 20 reads at 0.5 fps: 40 s of source time
    moving = [scene(square_at=20 * i, seed=100 + i) for i in range(6)]
    camera = source([[*static, *moving]], clock)
    sink = MemorySink()
    await camera.run(sink)
    assert camera.stats.captured == 26
    assert camera.stats.sent == 2 + 6  # first + one heartbeat, then every moving frame
    assert camera.stats.gated == 18
    assert camera.rate.fps(clock.now) == 2  # still boosted after the motion
    assert [f.header.sequence for f in sink.frames] == list(range(8))
    decoded = decode_frame(encode_frame(sink.frames[-1]))
    assert (decoded.header.width, decoded.header.height) == (384, 288)
    health = [e for e in sink.telemetry_events if isinstance(e, SourceHealth)][-1]
    assert (health.frames_sent, health.frames_gated, health.frames_dropped) == (8, 18, 0)


async def test_a_dropped_camera_is_reported_offline_and_reconnected() -> None:
    clock = Clock()
    camera = source([[scene(), SourceError("stream ended")], [scene(square_at=10)]], clock)
    sink = MemorySink()
    await camera.run(sink)
    quality = [(e.issue, e.active) for e in sink.telemetry_events if isinstance(e, DataQuality)]
    assert quality == [("offline", True), ("offline", False)]
    assert camera.stats.reconnects == 1 and camera.stats.sent == 2


async def test_unreachable_camera_retries_with_backoff() -> None:
    clock = Clock()
    camera = source([], clock)
    sink = MemorySink()

    task = asyncio.create_task(camera.run(sink))
    await asyncio.sleep(0.2)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert camera.stats.reconnects >= 3
    offline = [e for e in sink.telemetry_events if isinstance(e, DataQuality)]
    assert len(offline) == 1 and offline[0].detail == "camera unreachable"


async def test_real_video_files_busy_and_static(vtest_avi: Path, tmp_path: Path) -> None:
    static_path = tmp_path / "static.avi"
    writer = cv2.VideoWriter(str(static_path), cv2.VideoWriter.fourcc(*"MJPG"), 10, (384, 288))
    for i in range(300):  # 30 s of a still street with sensor noise
        writer.write(scene(seed=i))
    writer.release()

    results = {}
    for name, path in (("busy", vtest_avi), ("static", static_path)):
        camera = CameraSource(CameraSourceSettings(id=name, url=str(path), loop=False, realtime=False,
                                                   fps=2, idle_fps=0.5))
        sink = MemorySink()
        await camera.run(sink)
        results[name] = camera.stats
    assert results["busy"].sent > 0.8 * results["busy"].captured  # people walk all the time
    assert results["static"].sent <= 2 and results["static"].captured == 15  # 30 s at 0.5 fps
    assert np.isclose(results["static"].gated, results["static"].captured - results["static"].sent)
