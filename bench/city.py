"""Cameras per core: N simulated cameras through ingest, detection and rules, in one process.

Each camera is a real CameraSource on a real video, paced in real time: a share of them
(`--active`) on vtest.avi (people walking), the rest on a still street with sensor noise
(bench.ingest's static clip), so motion gating sends them only heartbeats. Their frames go
into one bounded queue (the newest frame wins: when it is full the oldest is dropped and
counted, so overload never builds a backlog), a detector loop runs them in batches through
the DetectionEngine (YOLOv8n on onnxruntime, CPU), and the detections through a RuleEngine
with a crowd rule per camera.

For each N it reports frames offered and detected per second, CPU seconds per camera per
minute (process CPU time, so ingest, decoding, detection and rules all count), p50 and p99
latency from a frame's capture to its detections having been evaluated, and frames
dropped. The headline is the largest N whose p99 stays within `--p99-goal-s` (1 s) with
nothing dropped; the single camera is the baseline of the same run.

    .venv/bin/python -m bench.city [--cameras 1,4,8,12,16,24] [--active 0.2] [--seconds 30]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import tempfile
import time
from collections import deque
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from bench.ingest import VTEST, static_video
from detectors.config import OnnxYoloModel
from detectors.engine import DetectionEngine, ModelRuntime
from detectors.registry import build_detector
from ingest.camera import CameraSource
from ingest.events import Event, Reading
from ingest.frame_codec import Frame
from ingest.rejected import Rejected
from ingest.settings import CameraSourceSettings
from ingest.sink import Stream
from rules.engine import RuleEngine
from rules.loader import parse_rules

ROOT = Path(__file__).resolve().parent.parent
MODEL = ROOT / ".cache/models/yolov8n-coco.onnx"
QUEUE_FRAMES = 16
BATCH = 4


class FrameQueue:
    """The sink every camera puts its frames into: bounded, the newest frame wins."""

    def __init__(self, size: int) -> None:
        self.frames: deque[tuple[Frame, float]] = deque()
        self.size = size
        self.offered = self.dropped = 0
        self.ready = asyncio.Event()

    async def frame(self, frame: Frame) -> None:
        self.offered += 1
        if len(self.frames) >= self.size:
            self.frames.popleft()
            self.dropped += 1
        self.frames.append((frame, time.monotonic()))
        self.ready.set()

    async def reading(self, reading: Reading) -> None:
        return None

    async def telemetry(self, event: Event) -> None:
        return None

    async def rejected(self, item: Rejected, stream: Stream) -> None:
        return None


def camera_rules(count: int) -> str:
    return "".join(
        f"- {{id: crowd-{i}, title: Crowd {i}, sources: {{ids: [cam-{i}]}}, "
        f"condition: {{type: detection, classes: [person], min_count: 3, for: 5s}}}}\n" for i in range(count))


async def run_city(count: int, active: float, seconds: float, still: Path,
                   engine: DetectionEngine) -> dict[str, Any]:
    queue = FrameQueue(QUEUE_FRAMES)
    rules = RuleEngine(parse_rules(camera_rules(count), "city.yaml"))
    moving = max(1, round(count * active)) if active > 0 else 0
    cameras = [CameraSource(CameraSourceSettings(
        id=f"cam-{i}", url=str(VTEST if i < moving else still), fps=2, idle_fps=0.5, loop=True,
        realtime=True, health_every_s=60)) for i in range(count)]
    latencies: list[float] = []
    detected = 0
    stop = asyncio.Event()

    async def detect() -> None:
        nonlocal detected
        while not stop.is_set():
            if not queue.frames:
                queue.ready.clear()
                try:
                    await asyncio.wait_for(queue.ready.wait(), 0.5)
                except TimeoutError:
                    continue
            batch = [queue.frames.popleft() for _ in range(min(BATCH, len(queue.frames)))]
            result = await engine.run([frame for frame, _ in batch])
            for detection in result.detections:
                rules.evaluate(detection)
            done = time.monotonic()
            latencies.extend(done - arrived for _, arrived in batch)
            detected += len(batch)

    cpu_before, started = time.process_time(), time.monotonic()
    tasks = [asyncio.create_task(camera.run(queue)) for camera in cameras]
    detector = asyncio.create_task(detect())
    await asyncio.sleep(seconds)
    stop.set()
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, detector, return_exceptions=True)
    elapsed, cpu = time.monotonic() - started, time.process_time() - cpu_before
    ordered = np.array(latencies) if latencies else np.array([0.0])
    return {
        "cameras": count, "active_cameras": moving,
        "frames_offered_per_s": round(queue.offered / elapsed, 2),
        "frames_detected_per_s": round(detected / elapsed, 2),
        "dropped": queue.dropped,
        "cpu_s_per_camera_per_min": round(cpu / count / elapsed * 60, 2),
        "cpu_cores_busy": round(cpu / elapsed, 2),
        "latency_p50_s": round(float(np.percentile(ordered, 50)), 3),
        "latency_p99_s": round(float(np.percentile(ordered, 99)), 3),
    }


async def main(counts: list[int], active: float, seconds: float, goal_s: float) -> dict[str, Any]:
    detector = build_detector(OnnxYoloModel(name="yolov8n", path=MODEL, device="cpu", batch_size=BATCH))
    engine = DetectionEngine({"yolov8n": ModelRuntime(detector, BATCH, 20.0)})
    await asyncio.to_thread(engine.load)
    with tempfile.TemporaryDirectory(prefix="cw-bench-city-") as folder:
        still = await asyncio.to_thread(static_video, Path(folder) / "still.avi", 20)
        runs = [await run_city(count, active, seconds, still, engine) for count in counts]
    await engine.close()
    within = [run["cameras"] for run in runs if run["latency_p99_s"] <= goal_s and run["dropped"] == 0]
    return {
        "benchmark": "city", "cpu_count": os.cpu_count(), "active_share": active, "seconds_per_run": seconds,
        "started": datetime.now(UTC).isoformat(timespec="seconds"),
        "runs": runs, "baseline_single_camera": runs[0] if runs and runs[0]["cameras"] == 1 else None,
        "p99_goal_s": goal_s, "largest_n_within_goal": max(within) if within else 0,
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--cameras", default="1,4,8,12,16,24")
    parser.add_argument("--active", type=float, default=0.2, help="share of cameras on a moving scene")
    parser.add_argument("--seconds", type=float, default=30.0, help="per camera count")
    parser.add_argument("--p99-goal-s", type=float, default=1.0)
    args = parser.parse_args()
    counts = sorted(int(n) for n in args.cameras.split(",") if n)
    print(json.dumps(asyncio.run(main(counts, args.active, args.seconds, args.p99_goal_s))))
