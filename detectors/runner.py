"""Fan a batch of frames out to every model concurrently; one Detection per frame and model.

Frames are decoded once and shared by all models. Each model runs its whole batch
in a worker thread (onnxruntime and OpenCV release the GIL), so models overlap
with each other and with the event loop. A frame whose JPEG does not decode is
returned as rejected with the reason, never dropped.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from detectors.base import Detector, Image
from detectors.decode import decode_jpeg
from detectors.events import Box, Detection
from ingest.events import EventFormatError
from ingest.frame_codec import Frame


def detection_id(frame_event_id: uuid.UUID, model: str, version: str) -> uuid.UUID:
    """Deterministic: re-processing a frame yields the same detection ids (storage dedups)."""
    return uuid.uuid5(frame_event_id, f"{model}@{version}")


@dataclass(frozen=True)
class RunResult:
    detections: list[Detection]
    rejected: list[tuple[Frame, str]]


class DetectorRunner:
    def __init__(self, detectors: Sequence[Detector]) -> None:
        self.detectors = list(detectors)

    def load(self) -> None:
        for detector in self.detectors:
            detector.load()
            detector.warm_up()

    async def run(self, frames: Sequence[Frame]) -> RunResult:
        decoded: list[tuple[Frame, Image]] = []
        rejected: list[tuple[Frame, str]] = []
        for frame, image in zip(frames, await asyncio.to_thread(_decode_all, frames), strict=True):
            if isinstance(image, str):
                rejected.append((frame, image))
            else:
                decoded.append((frame, image))
        if not decoded:
            return RunResult([], rejected)
        images = [image for _, image in decoded]
        results = await asyncio.gather(
            *(asyncio.to_thread(_timed_infer, detector, images) for detector in self.detectors)
        )
        detections = []
        for detector, (boxes_per_image, elapsed_ms) in zip(self.detectors, results, strict=True):
            per_frame_ms = elapsed_ms / len(images)
            for (frame, image), boxes in zip(decoded, boxes_per_image, strict=True):
                header = frame.header
                detections.append(Detection(
                    event_id=detection_id(header.event_id, detector.name, detector.version),
                    source_id=header.source_id,
                    time=header.time,
                    frame_event_id=header.event_id,
                    kind=header.kind,
                    model=detector.name,
                    model_version=detector.version,
                    frame_width=image.shape[1],
                    frame_height=image.shape[0],
                    boxes=tuple(boxes),
                    inference_ms=round(per_frame_ms, 3),
                ))
        return RunResult(detections, rejected)


def _decode_all(frames: Sequence[Frame]) -> list[Image | str]:
    out: list[Image | str] = []
    for frame in frames:
        try:
            out.append(decode_jpeg(frame.jpeg))
        except EventFormatError as exc:
            out.append(str(exc))
    return out


def _timed_infer(detector: Detector, images: list[Image]) -> tuple[list[list[Box]], float]:
    started = time.perf_counter()
    boxes = detector.infer_batch(images)
    return boxes, (time.perf_counter() - started) * 1000
