"""A video file played as a camera: OpenCV decodes, frames are sampled and JPEG-encoded.

The file is paced in real time at the configured sampling rate, so the rest of the
pipeline sees what a live camera would send. Decoding is blocking, so the async
iterator runs it in a worker thread.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from ingest.events import FrameHeader
from ingest.frame_codec import Frame


class SourceError(RuntimeError):
    """A source cannot be opened or read."""


@dataclass(frozen=True)
class VideoFileConfig:
    source_id: str
    path: Path
    fps: float = 2.0
    loop: bool = True
    jpeg_quality: int = 85
    max_width: int | None = None
    realtime: bool = True


def encode_jpeg(image: np.ndarray[Any, Any], quality: int) -> bytes:
    ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise SourceError("JPEG encoding failed")
    return bytes(buf)


class VideoFileCamera:
    """Yields sampled frames from a video file, looping if asked."""

    def __init__(self, config: VideoFileConfig) -> None:
        if not config.path.is_file():
            raise SourceError(f"{config.source_id}: video file not found: {config.path}")
        self.config = config
        self.sequence = 0

    async def frames(self) -> AsyncIterator[Frame]:
        cfg = self.config
        interval = 1.0 / cfg.fps
        next_due = time.monotonic()
        capture = await asyncio.to_thread(cv2.VideoCapture, str(cfg.path))
        try:
            if not capture.isOpened():
                raise SourceError(f"{cfg.source_id}: OpenCV cannot open {cfg.path}")
            native_fps = capture.get(cv2.CAP_PROP_FPS) or cfg.fps
            stride = max(1, round(native_fps / cfg.fps))
            while True:
                image = await asyncio.to_thread(_read_strided, capture, stride)
                if image is None:
                    if not cfg.loop:
                        return
                    capture.set(cv2.CAP_PROP_POS_FRAMES, 0)
                    image = await asyncio.to_thread(_read_strided, capture, stride)
                    if image is None:
                        raise SourceError(f"{cfg.source_id}: no frames in {cfg.path}")
                if cfg.realtime:
                    delay = next_due - time.monotonic()
                    if delay > 0:
                        await asyncio.sleep(delay)
                    next_due = max(next_due + interval, time.monotonic() - interval)
                yield self._to_frame(image)
        finally:
            capture.release()

    def _to_frame(self, image: np.ndarray[Any, Any]) -> Frame:
        cfg = self.config
        if cfg.max_width and image.shape[1] > cfg.max_width:
            scale = cfg.max_width / image.shape[1]
            image = cv2.resize(image, (cfg.max_width, round(image.shape[0] * scale)))
        height, width = image.shape[:2]
        header = FrameHeader(
            source_id=cfg.source_id,
            time=datetime.now(UTC),
            sequence=self.sequence,
            width=width,
            height=height,
        )
        self.sequence += 1
        return Frame(header=header, jpeg=encode_jpeg(image, cfg.jpeg_quality))


def _read_strided(capture: Any, stride: int) -> np.ndarray[Any, Any] | None:
    """Read `stride` frames and return the last: grab() skips decoding the ones dropped."""
    for _ in range(stride - 1):
        if not capture.grab():
            return None
    ok, image = capture.read()
    return image if ok else None
