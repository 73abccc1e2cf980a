"""The one interface every detector backend implements.

Small on purpose (load, warm up, infer a batch, describe classes), so that an
ONNX, OpenCV, torch or Ultralytics model plugs in the same way and the runner can
batch frames for any of them.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any

import numpy as np

from detectors.events import Box

Image = np.ndarray[Any, Any]  # BGR, HxWx3, uint8 (OpenCV's layout)


class DetectorError(RuntimeError):
    """A model cannot be loaded or run."""


class Detector(ABC):
    name: str
    version: str

    @abstractmethod
    def load(self) -> None:
        """Read the model into memory (and onto the device). Called once."""

    @property
    @abstractmethod
    def classes(self) -> Sequence[str]:
        """Class names the model can report, index = class id."""

    @abstractmethod
    def infer_batch(self, images: Sequence[Image]) -> list[list[Box]]:
        """Detect objects in each image; one list of boxes per image, in image pixels."""

    def known_classes(self) -> Sequence[str] | None:
        """The class names without loading the model, where the backend can tell (None: only
        once loaded). Rules decide from them whether a model is needed at all."""
        return list(self.classes) or None

    def unload(self) -> None:
        """Free the model's memory; the next `load` reads it again. Default: keep it (a
        backend with nothing worth freeing)."""
        return

    def warm_up(self) -> None:
        """Run once on a blank frame so the first real frame is not slow."""
        self.infer_batch([np.zeros((480, 640, 3), dtype=np.uint8)])
