"""Image data-quality checks on the motion thumbnail: frozen, dark, overexposed.

Each issue is reported once when it starts and once when it clears (never per frame),
so a camera pointed at a black wall makes one event, not thousands.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from ingest.events import QualityIssue
from ingest.motion import Thumbnail
from ingest.settings import ImageQualitySettings


@dataclass(frozen=True)
class QualityChange:
    issue: QualityIssue
    active: bool
    detail: str


@dataclass
class ImageQualityMonitor:
    config: ImageQualitySettings
    _active: set[str] = field(default_factory=set)
    _previous: Thumbnail | None = None
    _same_since: float | None = None

    def observe(self, thumb: Thumbnail, now: float) -> list[QualityChange]:
        cfg = self.config
        mean = float(np.mean(thumb))
        states: dict[QualityIssue, bool] = {
            "dark": mean < cfg.dark_below, "overexposed": mean > cfg.overexposed_above}
        if self._previous is not None and self._previous.shape == thumb.shape:
            identical = float(np.mean(cv2.absdiff(self._previous, thumb))) < cfg.frozen_max_diff
            self._same_since = (self._same_since or now) if identical else None
        self._previous = thumb
        states["frozen"] = self._same_since is not None and now - self._same_since >= cfg.frozen_after_s
        changes = []
        for issue, active in states.items():
            if active != (issue in self._active):
                (self._active.add if active else self._active.discard)(issue)
                changes.append(QualityChange(issue, active, f"mean grey level {mean:.0f}"
                                             if issue != "frozen" else "identical frames"))
        return changes
