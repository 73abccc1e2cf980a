"""Ingest cost: how fast one process reads, encodes and publishes; what an idle camera costs.

Starts a real Tansu broker on a free port. Prints one JSON object:
- throughput: frames/s for decode only (the baseline: OpenCV alone), decode + JPEG encode,
  and decode + encode + publish to the broker, on vtest.avi;
- idle vs busy: CPU seconds per minute and bytes published per minute for a camera on a
  static scene (a generated still street with sensor noise, H.264 with a keyframe every 2 s
  like many IP cameras) and on vtest.avi (people walking), both paced in real time at the same
  rates, with motion gating on, for each decoder: OpenCV (decodes every frame) and PyAV
  (keyframes only while the scene is static) (goal: idle <= 2 % of busy);
- the process floor: this process's CPU with its broker client and no camera, which every
  camera figure includes, and the idle camera's cost above it against the busy one's;
- motion to full rate: on a street that is static for 10 s and then moves (motion starting
  mid-GOP), the video time from the motion's start to the first frame decoded at full rate
  (goal: at most one keyframe interval).

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

import av
import cv2
import numpy as np

from citywatch.infra.process import free_port
from citywatch.infra.tansu import LocalBroker
from citywatch.publisher import KafkaPublisher
from citywatch.sources import PublisherSink, SourceCounters
from citywatch.topics import Topics, ensure_topics
from ingest.av_capture import AvFileReader
from ingest.camera import CameraSource
from ingest.capture import FileReader, Image
from ingest.events import FrameHeader
from ingest.frame_codec import Frame, encode_frame
from ingest.jpeg import encode_jpeg
from ingest.settings import CameraSourceSettings
from ingest.sink import MemorySink

ROOT = Path(__file__).resolve().parent.parent
VTEST = ROOT / ".cache/media/vtest.avi"


class CountingPublisher(KafkaPublisher):
    bytes_sent = 0

    async def send(self, topic, key, value, headers=None):  # type: ignore[no-untyped-def]
        self.bytes_sent += len(value) + len(key)
        await super().send(topic, key, value, headers)


GOP_S = 2.0
"""The generated street's keyframe interval: 2 s, as many IP cameras send by default."""
SOURCE_FPS = 10


def static_video(path: Path, seconds: int = 60, moving_from_s: float | None = None) -> Path:
    """An empty street with sensor noise (H.264, a keyframe every GOP_S); from `moving_from_s`
    on, a bright shape crosses it."""
    rng = np.random.default_rng(0)
    base = cv2.resize(FileReader(VTEST, loop=False).read(0.1), (768, 576))
    base[:] = cv2.GaussianBlur(base, (31, 31), 0)  # an empty street: no one in it
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=SOURCE_FPS)
        assert isinstance(stream, av.VideoStream)
        stream.width, stream.height, stream.pix_fmt = 768, 576, "yuv420p"
        stream.codec_context.gop_size = int(GOP_S * SOURCE_FPS)
        stream.codec_context.options = {"sc_threshold": "0", "preset": "veryfast"}
        for index in range(seconds * SOURCE_FPS):
            image = np.clip(base + rng.normal(0, 2, base.shape), 0, 255).astype(np.uint8)
            if moving_from_s is not None and index / SOURCE_FPS >= moving_from_s:
                x = (index * 12) % 700
                image[250:350, x:x + 60] = 240
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="bgr24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
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
    video: Path, seconds: float, publisher: CountingPublisher, topics: Topics, decoder: str
) -> dict[str, float]:
    camera = CameraSource(CameraSourceSettings(id=video.stem, url=str(video), loop=True, realtime=True,
                                               fps=2, idle_fps=0.5, health_every_s=60, decoder=decoder))
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


async def process_floor(seconds: float) -> float:
    """CPU seconds per minute of this process with its broker client connected and no camera:
    what every camera's figure includes and no decoder can save."""
    cpu0 = time.process_time()
    await asyncio.sleep(seconds)
    return round((time.process_time() - cpu0) * 60 / seconds, 3)


class WatchedReader(AvFileReader):
    """Records, per read, the video time returned and whether keyframes only were decoded."""

    def __init__(self, path: Path) -> None:
        super().__init__(path, loop=False)
        self.reads: list[tuple[float, bool]] = []

    def read(self, interval_s: float) -> Image:
        image = super().read(interval_s)
        self.reads.append((self.position_s or 0.0, self.keyframes_only))
        return image


async def motion_to_full_rate(folder: Path, motion_at_s: float = 10.5) -> dict[str, float | None]:
    """Video time from the motion's start to the first frame decoded at full rate (PyAV)."""
    path = static_video(folder / "then-moving.mkv", seconds=20, moving_from_s=motion_at_s)
    readers: list[WatchedReader] = []

    def open_watched(_: CameraSourceSettings) -> WatchedReader:
        readers.append(WatchedReader(path))
        return readers[-1]

    camera = CameraSource(CameraSourceSettings(id="then-moving", url=str(path), loop=False, realtime=False,
                                               fps=2, idle_fps=0.5, health_every_s=60),
                          reader_factory=open_watched)
    await camera.run(MemorySink())
    full = [at for at, keyframes_only in readers[0].reads if at >= motion_at_s and not keyframes_only]
    return {"gop_s": GOP_S, "motion_at_s": motion_at_s,
            "first_full_rate_frame_s": full[0] if full else None,
            "motion_to_full_rate_s": round(full[0] - motion_at_s, 3) if full else None,
            "packets_never_decoded": readers[0].skipped}


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
                static = static_video(Path(tmp) / "static.mkv")
                floor_s = await process_floor(seconds)
                costs = {decoder: (await camera_cost(static, seconds, publisher, topics, decoder),
                                   await camera_cost(VTEST, seconds, publisher, topics, decoder))
                         for decoder in ("opencv", "pyav")}
            finally:
                await publisher.stop()
            switching = await motion_to_full_rate(Path(tmp))
        finally:
            broker.stop()
    # A reader that decodes every frame the camera sends (OpenCV) pays this floor idle or busy
    # (10 fps source here); PyAV's keyframes-only decoding while idle is how to go under it.
    floor = round(60 * SOURCE_FPS / float(result["decode_fps"]), 3)  # type: ignore[arg-type]
    result.update({"seconds_per_camera": seconds, "decode_floor_cpu_s_per_min": floor,
                   "process_floor_cpu_s_per_min": floor_s, "motion_to_full_rate": switching})
    for decoder, (idle, busy) in costs.items():
        result[decoder] = {
            "idle_camera": idle,
            "busy_camera": busy,
            "idle_cpu_vs_busy": round(idle["cpu_s_per_min"] / busy["cpu_s_per_min"], 4),
            "idle_vs_busy_above_process_floor": round(
                max(0.0, idle["cpu_s_per_min"] - floor_s) / max(1e-9, busy["cpu_s_per_min"] - floor_s), 4),
            "idle_bytes_vs_busy": round(idle["bytes_per_min"] / busy["bytes_per_min"], 4),
        }
    return result


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--frames", type=int, default=300)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(main(args.seconds, args.frames))))
