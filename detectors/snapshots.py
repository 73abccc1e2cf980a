"""Evidence snapshots: a JPEG of the frame with the boxes drawn, kept by reference.

Only for detections that may fire an alert (the rules want their classes), at most one
per source every `min_interval_s`, so a busy camera does not fill the disk. The event
carries the path; an operator opens it from the alert.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import cv2

from detectors.base import Image
from detectors.events import Detection

COLOURS = [(0, 200, 255), (80, 220, 80), (255, 120, 0), (200, 80, 255)]


class SnapshotStore:
    def __init__(self, folder: Path, min_interval_s: float = 5.0, jpeg_quality: int = 85) -> None:
        self.folder = folder
        self.min_interval_s = min_interval_s
        self.jpeg_quality = jpeg_quality
        self._last: dict[str, datetime] = {}

    def due(self, source_id: str, time: datetime) -> bool:
        last = self._last.get(source_id)
        return last is None or (time - last).total_seconds() >= self.min_interval_s

    def save(self, detection: Detection, image: Image) -> str:
        """Draw and write; returns the file path. Call `due` first (and off the event loop)."""
        self._last[detection.source_id] = detection.time
        picture = image.copy()
        for box in detection.boxes:
            colour = COLOURS[box.class_id % len(COLOURS)]
            top_left, bottom_right = (int(box.x1), int(box.y1)), (int(box.x2), int(box.y2))
            cv2.rectangle(picture, top_left, bottom_right, colour, 2)
            caption = f"{box.label} {box.score:.2f}" + (f" #{box.track_id}" if box.track_id else "")
            cv2.putText(picture, caption, (int(box.x1), max(12, int(box.y1) - 4)),
                        cv2.FONT_HERSHEY_SIMPLEX, 0.45, colour, 1, cv2.LINE_AA)
        folder = self.folder / detection.source_id / f"{detection.time:%Y-%m-%d}"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{detection.time:%H%M%S}-{detection.model}-{detection.event_id}.jpg"
        if not cv2.imwrite(str(path), picture, [cv2.IMWRITE_JPEG_QUALITY, self.jpeg_quality]):
            raise OSError(f"cannot write snapshot {path}")
        return str(path)
