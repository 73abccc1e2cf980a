"""A torch detector (CPU or CUDA): for a city's own model under any license.

Loads a `torch.export` program (.pt2) or, for older models, TorchScript (.pt).

The contract is small and documented in `TorchModel`: RGB 0..1 input of a fixed size,
output rows (x1, y1, x2, y2, score, class) in input pixels. Frames are resized to the
input size and boxes scaled back.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import cv2
import numpy as np

from detectors.base import Detector, DetectorError, Image
from detectors.config import TorchModel
from detectors.devices import torch_device
from detectors.events import Box
from detectors.model_file import verify_model_file


class TorchDetector(Detector):
    def __init__(self, spec: TorchModel) -> None:
        self.spec = spec
        self.name, self.version = spec.name, spec.version
        self._module: Any = None
        self._device = "cpu"

    def load(self) -> None:
        import torch

        verify_model_file(self.spec.path, self.spec.sha256)
        self._device = torch_device(self.spec.device)
        if self.spec.threads:
            torch.set_num_threads(self.spec.threads)
        try:
            if self.spec.path.suffix == ".pt2":  # torch.export (the successor of TorchScript)
                self._module = torch.export.load(str(self.spec.path)).module().to(self._device)
            else:
                self._module = torch.jit.load(  # type: ignore[no-untyped-call]
                    str(self.spec.path), map_location=self._device).eval()
        except Exception as exc:  # torch raises RuntimeError and friends
            raise DetectorError(f"cannot load torch model {self.spec.path}: {exc}") from exc

    @property
    def classes(self) -> Sequence[str]:
        return self.spec.classes

    def unload(self) -> None:
        self._module = None

    def infer_batch(self, images: Sequence[Image]) -> list[list[Box]]:
        import torch

        if self._module is None:
            raise DetectorError(f"model {self.name} used before load()")
        if not images:
            return []
        height, width = self.spec.input_size
        batch = np.stack([
            cv2.cvtColor(cv2.resize(image, (width, height)), cv2.COLOR_BGR2RGB).transpose(2, 0, 1)
            for image in images
        ]).astype(np.float32) / 255.0
        with torch.inference_mode():
            output = self._module(torch.from_numpy(batch).to(self._device)).cpu().numpy()
        return [self._boxes(rows, image) for rows, image in zip(output, images, strict=True)]

    def _boxes(self, rows: np.ndarray[Any, Any], image: Image) -> list[Box]:
        height, width = self.spec.input_size
        sx, sy = image.shape[1] / width, image.shape[0] / height
        boxes = []
        for x1, y1, x2, y2, score, cls in rows:
            if score < self.spec.min_score or score <= 0:
                continue
            class_id = int(cls)
            if not 0 <= class_id < len(self.spec.classes):
                raise DetectorError(f"model {self.name} returned class {class_id} outside its classes")
            boxes.append(Box(
                label=self.spec.classes[class_id], class_id=class_id, score=round(float(score), 4),
                x1=round(float(x1) * sx, 1), y1=round(float(y1) * sy, 1),
                x2=round(float(x2) * sx, 1), y2=round(float(y2) * sy, 1)))
        return boxes
