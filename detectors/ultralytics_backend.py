"""Ultralytics models (.pt or .onnx) through `ultralytics.YOLO`, kept strictly offline.

Ultralytics tries to reach the network (settings sync, auto-installs, hub downloads) unless
told not to (docs/models-and-data.md): the environment is set before it is imported, and
a file path is always given.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from detectors.base import Detector, DetectorError, Image
from detectors.config import UltralyticsModel
from detectors.devices import torch_device
from detectors.events import Box
from detectors.model_file import verify_model_file


def _offline(config_dir: Path) -> None:
    os.environ.setdefault("YOLO_OFFLINE", "1")
    os.environ.setdefault("YOLO_AUTOINSTALL", "false")
    os.environ.setdefault("YOLO_CONFIG_DIR", str(config_dir))


class UltralyticsDetector(Detector):
    def __init__(self, spec: UltralyticsModel, config_dir: Path | None = None) -> None:
        self.spec = spec
        self.name, self.version = spec.name, spec.version
        cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
        self._config_dir = config_dir or cache / "citywatch-ultralytics"
        self._model: Any = None
        self._device = "cpu"
        self._classes: list[str] = []

    def load(self) -> None:
        verify_model_file(self.spec.path, self.spec.sha256)
        _offline(self._config_dir)
        try:
            import ultralytics

            self._model = ultralytics.YOLO(str(self.spec.path), task="detect")  # type: ignore[attr-defined]
        except Exception as exc:  # ultralytics raises many untyped errors
            raise DetectorError(f"ultralytics cannot load {self.spec.path}: {exc}") from exc
        self._device = torch_device(self.spec.device)
        names = self._model.names
        self._classes = [str(names[i]) for i in sorted(names)]
        if self.spec.threads:
            import torch

            torch.set_num_threads(self.spec.threads)

    @property
    def classes(self) -> Sequence[str]:
        return self._classes

    def unload(self) -> None:
        self._model = None

    def infer_batch(self, images: Sequence[Image]) -> list[list[Box]]:
        if self._model is None:
            raise DetectorError(f"model {self.name} used before load()")
        if not images:
            return []
        results = self._model.predict(
            list(images), conf=self.spec.min_score, iou=self.spec.iou, imgsz=self.spec.imgsz,
            device=self._device, verbose=False,
        )
        return [self._boxes(result) for result in results]

    def _boxes(self, result: Any) -> list[Box]:
        data = result.boxes
        xyxy, scores, classes = data.xyxy.cpu().numpy(), data.conf.cpu().numpy(), data.cls.cpu().numpy()
        return [
            Box(label=self._classes[int(c)], class_id=int(c), score=round(float(s), 4),
                x1=round(float(b[0]), 1), y1=round(float(b[1]), 1),
                x2=round(float(b[2]), 1), y2=round(float(b[3]), 1))
            for b, s, c in zip(xyxy, scores, classes, strict=True)
        ]
