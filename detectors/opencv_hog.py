"""OpenCV's HOG pedestrian detector: no model file, no license question, a cheap fallback.

Scores are the SVM margins squashed to 0..1 (a logistic), so `min_score` means the same
kind of thing it does for the neural backends.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import cv2
import numpy as np

from detectors.base import Detector, DetectorError, Image
from detectors.config import OpenCvHogModel
from detectors.events import Box


class OpenCvHogDetector(Detector):
    def __init__(self, spec: OpenCvHogModel) -> None:
        self.spec = spec
        self.name, self.version = spec.name, spec.version
        self._hog: cv2.HOGDescriptor | None = None

    def load(self) -> None:
        if not hasattr(cv2, "HOGDescriptor"):
            raise DetectorError("this OpenCV build has no HOGDescriptor (OpenCV 5 removed it; pin 4.x)")
        hog = cv2.HOGDescriptor()
        hog.setSVMDetector(np.asarray(cv2.HOGDescriptor.getDefaultPeopleDetector(), dtype=np.float32))
        if self.spec.threads:
            cv2.setNumThreads(self.spec.threads)
        self._hog = hog

    @property
    def classes(self) -> Sequence[str]:
        return ["person"]

    def infer_batch(self, images: Sequence[Image]) -> list[list[Box]]:
        if self._hog is None:
            raise DetectorError(f"model {self.name} used before load()")
        return [self._detect(image) for image in images]

    def _detect(self, image: Image) -> list[Box]:
        assert self._hog is not None
        scale = min(1.0, self.spec.max_width / image.shape[1])
        small = cv2.resize(image, None, fx=scale, fy=scale) if scale < 1 else image
        stride = (self.spec.win_stride, self.spec.win_stride)
        rects, weights = self._hog.detectMultiScale(small, winStride=stride, scale=self.spec.scale)
        boxes = []
        for (x, y, w, h), weight in zip(rects, np.asarray(weights).reshape(-1), strict=True):
            score = 1 / (1 + math.exp(-float(weight)))
            if score < self.spec.min_score:
                continue
            boxes.append(Box(label="person", class_id=0, score=round(score, 4),
                             x1=round(x / scale, 1), y1=round(y / scale, 1),
                             x2=round((x + w) / scale, 1), y2=round((y + h) / scale, 1)))
        return boxes
