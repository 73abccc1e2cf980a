"""Evidence snapshots: a JPEG of the frame with the boxes drawn, kept by reference.

Only for detections that may fire an alert (the rules want their classes), at most one
per source every `min_interval_s`, so a busy camera does not fill the store. The event
carries a reference; an operator opens it from the alert, an email shows it inline.

Where the JPEG is kept is a sink's business. The default sink is TimescaleDB
(storage/snapshots.py): every worker and the console read it, whichever host took it,
and it goes with the detections' retention. `FolderSnapshots` keeps files, for one host
or a folder every host mounts.

Evidence is an aid to the detection, not part of it: a sink that fails or does not answer
within `KEEP_TIMEOUT_S` (the database is down) costs that one picture, logged, and the
detection goes on without it; it never holds up detection or dead-letters a frame.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Protocol

import cv2

from detectors.base import Image
from detectors.events import Detection

log = logging.getLogger(__name__)

COLOURS = [(0, 200, 255), (80, 220, 80), (255, 120, 0), (200, 80, 255)]
KEEP_TIMEOUT_S = 2.0


class SnapshotSink(Protocol):
    async def keep(self, detection: Detection, jpeg: bytes) -> str:
        """Store the JPEG (idempotent on the detection's event id); returns its reference."""
        ...


def render(detection: Detection, image: Image, jpeg_quality: int = 85) -> bytes:
    """The frame with the detection's boxes and captions drawn, as a JPEG."""
    picture = image.copy()
    for box in detection.boxes:
        colour = COLOURS[box.class_id % len(COLOURS)]
        top_left, bottom_right = (int(box.x1), int(box.y1)), (int(box.x2), int(box.y2))
        cv2.rectangle(picture, top_left, bottom_right, colour, 2)
        caption = f"{box.label} {box.score:.2f}" + (f" #{box.track_id}" if box.track_id else "")
        cv2.putText(picture, caption, (int(box.x1), max(12, int(box.y1) - 4)),
                    cv2.FONT_HERSHEY_SIMPLEX, 0.45, colour, 1, cv2.LINE_AA)
    ok, encoded = cv2.imencode(".jpg", picture, [cv2.IMWRITE_JPEG_QUALITY, jpeg_quality])
    if not ok:
        raise ValueError(f"cannot encode a snapshot of {detection.source_id}")
    return bytes(encoded.tobytes())


class FolderSnapshots:
    """Files under `folder`/<source>/<day>/; the reference is the file's path."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    async def keep(self, detection: Detection, jpeg: bytes) -> str:
        return await asyncio.to_thread(self._write, detection, jpeg)

    def _write(self, detection: Detection, jpeg: bytes) -> str:
        folder = self.folder / detection.source_id / f"{detection.time:%Y-%m-%d}"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{detection.time:%H%M%S}-{detection.model}-{detection.event_id}.jpg"
        path.write_bytes(jpeg)
        return str(path)


class SnapshotTaker:
    """Decides when a source is due a snapshot, draws it and hands it to the sink.

    A source is due every `min_interval_s`, and sooner (but at most every `min_gap_s`) when
    its frame shows more than the last snapshot did: more boxes of a label, or a tracked
    object the last one did not have. The frame where a crowd reaches the size a rule waits
    for, or where a new person enters, is the one an alert's evidence should show; a fixed
    interval alone gave most alerts no picture (2 of 18 camera alert emails had one)."""

    def __init__(self, sink: SnapshotSink, min_interval_s: float = 5.0, jpeg_quality: int = 85,
                 min_gap_s: float = 1.0) -> None:
        self.sink = sink
        self.min_interval_s = min_interval_s
        self.min_gap_s = min_gap_s
        self.jpeg_quality = jpeg_quality
        self._last: dict[str, tuple[datetime, Counter[str], frozenset[int]]] = {}

    def due(self, source_id: str, time: datetime, detection: Detection | None = None) -> bool:
        last = self._last.get(source_id)
        if last is None:
            return True
        elapsed = (time - last[0]).total_seconds()
        if elapsed >= self.min_interval_s:
            return True
        if detection is None or elapsed < self.min_gap_s:
            return False
        counts, tracks = _content(detection)
        return any(counts[label] > last[1][label] for label in counts) or not tracks <= last[2]

    async def take(self, detection: Detection, image: Image) -> str | None:
        """The snapshot's reference, or None when it could not be kept (see the module)."""
        counts, tracks = _content(detection)
        self._last[detection.source_id] = (detection.time, counts, tracks)
        try:
            jpeg = await asyncio.to_thread(render, detection, image, self.jpeg_quality)
            return await asyncio.wait_for(self.sink.keep(detection, jpeg), KEEP_TIMEOUT_S)
        except Exception as exc:  # evidence is best effort by design (see the module docstring)
            log.warning("evidence snapshot of %s (%s) not kept: %s: %s; the detection goes on without it",
                        detection.source_id, detection.event_id, type(exc).__name__, exc)
            return None


def _content(detection: Detection) -> tuple[Counter[str], frozenset[int]]:
    return (Counter(box.label for box in detection.boxes),
            frozenset(box.track_id for box in detection.boxes if box.track_id is not None))
