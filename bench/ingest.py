"""Ingest cost: how fast one process reads, encodes and publishes; what an idle camera costs.

Starts a real Tansu broker on a free port. Prints one JSON object:
- throughput: frames/s for decode only (the baseline: OpenCV alone), decode + JPEG encode,
  and decode + encode + publish to the broker, on vtest.avi;
- idle vs busy: CPU seconds per minute and bytes published per minute for a camera on a
  static scene (a generated still street with sensor noise) and on vtest.avi (people walking),
  both paced in real time at the same rates, with motion gating on (goal: idle <= 2 % of busy).

    .venv/bin/python -m bench.ingest [--seconds 20] [--frames 300]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import cv2
import numpy as np

from citywatch.infra.process import free_port
from citywatch.infra.tansu import LocalBroker
from citywatch.publisher import KafkaPublisher
from citywatch.sources import PublisherSink, SourceCounters
from citywatch.topics import Topics, ensure_topics
from ingest.camera import CameraSource
from ingest.capture import FileReader
from ingest.events import FrameHeader
from ingest.frame_codec import Frame, encode_frame
from ingest.jpeg import encode_jpeg
from ingest.settings import CameraSourceSettings

ROOT = Path(__file__).resolve().parent.parent
VTEST = ROOT / ".cache/media/vtest.avi"


class CountingPublisher(KafkaPublisher):
    bytes_sent = 0

    async def send(self, topic, key, value, headers=None):  # type: ignore[no-untyped-def]
        self.bytes_sent += len(value) + len(key)
        await super().send(topic, key, value, headers)


def static_video(path: Path, seconds: int = 60) -> Path:
    rng = np.random.default_rng(0)
    base = cv2.resize(FileReader(VTEST, loop=False).read(0.1), (768, 576))
    base[:] = cv2.GaussianBlur(base, (31, 31), 0)  # an empty street: no one in it
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"XVID"), 10, (768, 576))
    for _ in range(seconds * 10):
        noise = rng.normal(0, 2, base.shape)
        writer.write(np.clip(base + noise, 0, 255).astype(np.uint8))
    writer.release()
    return path


async def throughput(publisher: KafkaPublisher, frames: int) -> dict[str, float]:
    results = {}
    for stage in ("decode", "decode_encode", "decode_encode_publish"):
        reader = FileReader(VTEST, loop=True)
        started = time.perf_counter()
        for sequence in range(frames):
            image = reader.read(0.1)
            if stage == "decode":
                continue
            jpeg = encode_jpeg(image, 85)
            if stage == "decode_encode_publish":
                header = FrameHeader(source_id="bench", time=datetime.now(UTC), sequence=sequence,
                                     width=image.shape[1], height=image.shape[0])
                await publisher.send("frames", b"bench", encode_frame(Frame(header, jpeg)))
        results[f"{stage}_fps"] = round(frames / (time.perf_counter() - started), 1)
        reader.close()
    return results


async def camera_cost(
    video: Path, seconds: float, publisher: CountingPublisher, topics: Topics
) -> dict[str, float]:
    camera = CameraSource(CameraSourceSettings(id=video.stem, url=str(video), loop=True, realtime=True,
                                               fps=2, idle_fps=0.5, health_every_s=60))
    sink = PublisherSink(publisher, topics, SourceCounters())
    before_bytes, cpu0 = publisher.bytes_sent, time.process_time()
    task = asyncio.create_task(camera.run(sink))
    await asyncio.sleep(seconds)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    cpu = time.process_time() - cpu0
    per_minute = 60 / seconds
    return {
        "cpu_s_per_min": round(cpu * per_minute, 3),
        "bytes_per_min": round((publisher.bytes_sent - before_bytes) * per_minute),
        "frames_captured": camera.stats.captured,
        "frames_sent": camera.stats.sent,
    }


async def main(seconds: float, frames: int) -> dict[str, object]:
    with tempfile.TemporaryDirectory(prefix="citywatch-bench-") as tmp:
        broker = LocalBroker(Path(tmp), "127.0.0.1", free_port())
        broker.start()
        try:
            topics = Topics("bench")
            await ensure_topics(f"127.0.0.1:{broker.port}", topics, partitions=1)
            publisher = CountingPublisher(f"127.0.0.1:{broker.port}", topics, 4 << 20)
            await publisher.start()
            try:
                result: dict[str, object] = {"benchmark": "ingest", **await throughput(publisher, frames)}
                static = static_video(Path(tmp) / "static.avi")
                idle = await camera_cost(static, seconds, publisher, topics)
                busy = await camera_cost(VTEST, seconds, publisher, topics)
            finally:
                await publisher.stop()
        finally:
            broker.stop()
    # Any reader must decode every frame the camera sends to see motion at all: that floor is
    # the same for idle and busy cameras (10 fps source here), so report it and the cost above it.
    native_fps = 10
    floor = round(60 * native_fps / float(result["decode_fps"]), 3)  # type: ignore[arg-type]
    result.update({
        "seconds_per_camera": seconds,
        "decode_floor_cpu_s_per_min": floor,
        "idle_camera": idle,
        "busy_camera": busy,
        "idle_cpu_vs_busy": round(idle["cpu_s_per_min"] / busy["cpu_s_per_min"], 4),
        "idle_bytes_vs_busy": round(idle["bytes_per_min"] / busy["bytes_per_min"], 4),
        "idle_vs_busy_above_decode_floor": round(
            max(0.0, idle["cpu_s_per_min"] - floor) / max(1e-9, busy["cpu_s_per_min"] - floor), 4),
    })
    return result


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--frames", type=int, default=300)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(main(args.seconds, args.frames))))
