"""Detector throughput: the bare model against CityWatch's runner on the same frames.

Baseline: `infer_batch([image])` on pre-decoded images, one at a time (the model alone).
Measured: `DetectorRunner.run(frames)` on JPEG frames from vtest.avi, which adds JPEG
decoding, batching, thread hand-off and Detection events. Prints one JSON object.

    .venv/bin/python -m bench.detector_throughput [--frames 40] [--batch 4]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import time
from datetime import UTC, datetime
from pathlib import Path

from detectors.config import OnnxYoloModel
from detectors.decode import decode_jpeg
from detectors.onnx_yolo import OnnxYoloDetector
from detectors.runner import DetectorRunner
from ingest.capture import FileReader
from ingest.events import FrameHeader
from ingest.frame_codec import Frame
from ingest.jpeg import encode_jpeg

ROOT = Path(__file__).resolve().parent.parent


def sample_frames(count: int) -> list[Frame]:
    reader = FileReader(ROOT / ".cache/media/vtest.avi", loop=True)
    frames = []
    for sequence in range(count):
        image = reader.read(0.5)
        header = FrameHeader(source_id="bench", time=datetime.now(UTC), sequence=sequence,
                             width=image.shape[1], height=image.shape[0])
        frames.append(Frame(header, encode_jpeg(image, 85)))
    reader.close()
    return frames


async def main(count: int, batch: int) -> dict[str, object]:
    detector = OnnxYoloDetector(OnnxYoloModel(name="yolov8n-coco", version="1", device="auto",
                                               path=ROOT / ".cache/models/yolov8n-coco.onnx"))
    detector.load()
    detector.warm_up()
    frames = sample_frames(count)
    images = [decode_jpeg(f.jpeg) for f in frames]

    started = time.perf_counter()
    for image in images:
        detector.infer_batch([image])
    bare_s = time.perf_counter() - started

    runner = DetectorRunner([detector])
    started = time.perf_counter()
    detections = 0
    for i in range(0, len(frames), batch):
        detections += len((await runner.run(frames[i : i + batch])).detections)
    runner_s = time.perf_counter() - started
    return {
        "benchmark": "detector_throughput",
        "model": detector.name,
        "frames": count,
        "batch": batch,
        "cpu_count": os.cpu_count(),
        "bare_model_fps": round(count / bare_s, 2),
        "runner_fps": round(count / runner_s, 2),
        "runner_vs_bare": round(bare_s / runner_s, 3),
        "detections": detections,
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--frames", type=int, default=40)
    parser.add_argument("--batch", type=int, default=4)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(main(args.frames, args.batch))))
