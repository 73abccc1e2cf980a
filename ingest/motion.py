"""Motion gating: decide on a tiny grey thumbnail whether a frame is worth sending.

A static scene costs almost nothing downstream: only a heartbeat keyframe every
`heartbeat_s` goes out, so the detectors, the broker and the database idle with it.
The comparison is against the last *sent* frame, so slow changes (a car creeping
in) accumulate until they count, instead of hiding below a per-frame threshold.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import cv2
import numpy as np

from ingest.settings import MotionSettings

Thumbnail = np.ndarray[Any, Any]
THUMB_WIDTH = 160


@dataclass(frozen=True)
class GateDecision:
    send: bool
    reason: Literal["motion", "heartbeat", "first", "static", "disabled"]
    changed_ratio: float


def thumbnail(image: Thumbnail) -> Thumbnail:
    """Small, blurred grey copy: cheap to compare and insensitive to sensor noise."""
    height, width = image.shape[:2]
    scale = THUMB_WIDTH / width
    small = cv2.resize(image, (THUMB_WIDTH, max(1, round(height * scale))), interpolation=cv2.INTER_AREA)
    grey = cv2.cvtColor(small, cv2.COLOR_BGR2GRAY) if small.ndim == 3 else small
    return cv2.GaussianBlur(grey, (5, 5), 0)


def changed_ratio(a: Thumbnail, b: Thumbnail, pixel_threshold: int) -> float:
    diff = cv2.absdiff(a, b)
    return float(np.count_nonzero(diff > pixel_threshold)) / diff.size


class MotionGate:
    def __init__(self, config: MotionSettings) -> None:
        self.config = config
        self._reference: Thumbnail | None = None
        self._last_sent_at: float | None = None

    def decide(self, thumb: Thumbnail, now: float) -> GateDecision:
        cfg = self.config
        if not cfg.enabled:
            return GateDecision(True, "disabled", 0.0)
        if self._reference is None or self._last_sent_at is None or self._reference.shape != thumb.shape:
            return self._sent(thumb, now, "first", 1.0)
        ratio = changed_ratio(self._reference, thumb, cfg.pixel_threshold)
        if ratio >= cfg.min_changed_ratio:
            return self._sent(thumb, now, "motion", ratio)
        if now - self._last_sent_at >= cfg.heartbeat_s:
            return self._sent(thumb, now, "heartbeat", ratio)
        return GateDecision(False, "static", ratio)

    def _sent(self, thumb: Thumbnail, now: float, reason: Any, ratio: float) -> GateDecision:
        self._reference = thumb
        self._last_sent_at = now
        return GateDecision(True, reason, ratio)
