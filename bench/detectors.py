"""Detector engine throughput against the bare models, measured in one run. Prints one JSON object.

- bare: each model alone, `infer_batch([image])` in a loop on pre-decoded frames (the baseline);
- engine: the same frames as JPEG through DetectionEngine (decode, schedule, filter, track, events),
  four sources feeding it at once so batches can fill, at batch size 1, 4 and 8;
- multi-model: two and three models per frame, against the sum of their bare times;
- per model: CPU seconds per frame everywhere, and joules per frame where the machine exposes
  them (RAPL on x86 hosts, nvidia-smi on a GPU; bench/energy.py);
- per-model inference ms p50/p99 (each frame's share of its batch) and frames skipped by
  motion gating (static vs busy video) and by a cascade (fall model only where persons are).

    .venv/bin/python -m bench.detectors [--frames 24]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import time
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path

import numpy as np

from bench.energy import measure
from detectors.base import Detector, Image
from detectors.config import OnnxYoloModel, OpenCvHogModel, StepSpec, UltralyticsModel, WhenSpec
from detectors.engine import DetectionEngine, ModelRuntime
from detectors.registry import build_detector
from ingest.capture import FileReader
from ingest.events import FrameHeader
from ingest.frame_codec import Frame
from ingest.jpeg import encode_jpeg
from ingest.motion import MotionGate, thumbnail
from ingest.settings import MotionSettings

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / ".cache"
SOURCES = 4


def video_frames(count: int) -> list[Image]:
    reader = FileReader(CACHE / "media/vtest.avi", loop=True)
    images = [reader.read(0.5) for _ in range(count)]
    reader.close()
    return images


def as_frames(images: list[Image]) -> list[Frame]:
    start = datetime.now(UTC)
    frames = []
    for i, image in enumerate(images):
        header = FrameHeader(source_id=f"cam-{i % SOURCES}", time=start + timedelta(seconds=i), sequence=i,
                             width=image.shape[1], height=image.shape[0])
        frames.append(Frame(header, encode_jpeg(image, 85)))
    return frames


def bare_fps(detector: Detector, images: list[Image]) -> float:
    started = time.perf_counter()
    for image in images:
        detector.infer_batch([image])
    return len(images) / (time.perf_counter() - started)


async def engine_run(models: dict[str, ModelRuntime], frames: list[Frame],
                     steps: list[StepSpec] | None = None) -> dict[str, object]:
    shares: dict[str, list[float]] = {name: [] for name in models}

    def on_batch(model: str, size: int, seconds: float) -> None:
        shares[model] += [seconds * 1000 / size] * size

    engine = DetectionEngine(models, (lambda _: steps) if steps else None, on_batch=on_batch)
    started = time.perf_counter()
    for i in range(0, len(frames), SOURCES):  # one frame per source arrives at each step
        await engine.run(frames[i : i + SOURCES])
    elapsed = time.perf_counter() - started
    await engine.close()
    return {
        "fps": round(len(frames) / elapsed, 2),
        "ms_p50": {m: round(statistics.median(v), 1) for m, v in shares.items() if v},
        "ms_p99": {m: round(float(np.percentile(v, 99)), 1) for m, v in shares.items() if v},
        "skipped": dict(engine.stats.skipped),
    }


def gating(images: list[Image]) -> dict[str, float]:
    still = np.clip(np.asarray(images[0], dtype=np.float32) * 0 + 110, 0, 255).astype(np.uint8)
    rng = np.random.default_rng(0)
    result = {}
    for name, sequence in (("busy", images), ("static", [
            np.clip(still + rng.normal(0, 2, still.shape), 0, 255).astype(np.uint8) for _ in images])):
        gate = MotionGate(MotionSettings(heartbeat_s=30))
        sent = sum(gate.decide(thumbnail(image), float(i) * 0.5).send for i, image in enumerate(sequence))
        result[f"{name}_skipped_share"] = round(1 - sent / len(sequence), 3)
    return result


async def main(count: int) -> dict[str, object]:
    yolo = build_detector(OnnxYoloModel(name="yolov8n", path=CACHE / "models/yolov8n-coco.onnx"))
    hog = build_detector(OpenCvHogModel(name="hog"))
    fall = build_detector(UltralyticsModel(name="fall", path=CACHE / "models/yolov8s-fall.pt"))
    for detector in (yolo, hog, fall):
        detector.load()
        detector.warm_up()
    images = video_frames(count)
    frames = as_frames(images)
    bare = {d.name: round(bare_fps(d, images), 2) for d in (yolo, hog, fall)}
    cost = {d.name: measure(partial(bare_fps, d, images)).per(len(images)) for d in (yolo, hog, fall)}
    by_batch = {}
    for batch in (1, 4, 8):
        by_batch[str(batch)] = await engine_run({"yolov8n": ModelRuntime(yolo, batch, 50)}, frames)
    two = await engine_run({"yolov8n": ModelRuntime(yolo, 4, 50), "hog": ModelRuntime(hog, 4, 50)}, frames)
    three = await engine_run({n: ModelRuntime(d, 4, 50) for n, d in
                              (("yolov8n", yolo), ("hog", hog), ("fall", fall))}, frames)
    cascade = await engine_run(
        {"yolov8n": ModelRuntime(yolo, 4, 50), "fall": ModelRuntime(fall, 4, 50)}, frames,
        [StepSpec(model="yolov8n"),
         StepSpec(model="fall", when=WhenSpec(model="yolov8n", classes=["person"], min_score=0.6))])

    def serial_fps(*names: str) -> float:
        return round(1 / sum(1 / bare[n] for n in names), 2)

    best = max(float(r["fps"]) for r in by_batch.values())  # type: ignore[arg-type]
    return {
        "benchmark": "detectors",
        "cpu_count": os.cpu_count(),
        "frames": count,
        "sources": SOURCES,
        "bare_fps": bare,
        "cost_per_frame": cost,
        "energy_exposed": any(c["cpu_joules_per_frame"] is not None or c["gpu_joules_per_frame"] is not None
                              for c in cost.values()),
        "engine_by_batch_size": by_batch,
        "engine_vs_bare_best": round(best / bare["yolov8n"], 3),
        "two_models": {**two, "bare_serial_fps": serial_fps("yolov8n", "hog")},
        "three_models": {**three, "bare_serial_fps": serial_fps("yolov8n", "hog", "fall")},
        "cascade_fall_where_person": cascade,
        "motion_gating": gating(images),
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--frames", type=int, default=24)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(main(args.frames))))
