"""YOLO-family detector (raw head, no NMS in the graph) on onnxruntime.

onnxruntime runs YOLO about twice as fast as Ultralytics' torch path on CPU
(docs/models-and-data.md) and needs no AGPL code at run time, so it is the default
backend. Letterboxing, decoding and NMS are detectors/yolo_head.py's (NumPy/OpenCV).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import onnxruntime as ort

from detectors.base import Detector, DetectorError, Image
from detectors.config import Device, OnnxYoloModel
from detectors.events import Box
from detectors.model_file import verify_model_file
from detectors.yolo_head import Letterbox, class_names, decode, export_classes, letterbox


def select_providers(device: Device) -> list[str]:
    """CUDA when asked for (or 'auto' and present), otherwise the CPU provider."""
    available = set(ort.get_available_providers())
    if device == "cuda" and "CUDAExecutionProvider" not in available:
        raise DetectorError("device 'cuda' requested but onnxruntime has no CUDA provider here")
    if device in ("cuda", "auto") and "CUDAExecutionProvider" in available:
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]
    return ["CPUExecutionProvider"]


class OnnxYoloDetector(Detector):
    def __init__(self, config: OnnxYoloModel) -> None:
        self.config = config
        self.name = config.name
        self.version = config.version
        self._session: Any = None
        self._classes: list[str] = []
        self._input_name = ""
        self._size = (640, 640)
        self._fixed_batch: int | None = 1

    def load(self) -> None:
        cfg = self.config
        verify_model_file(cfg.path, cfg.sha256)
        options = ort.SessionOptions()
        if cfg.threads:
            options.intra_op_num_threads = cfg.threads
        try:
            self._session = ort.InferenceSession(
                str(cfg.path), sess_options=options, providers=select_providers(cfg.device)
            )
        except Exception as exc:  # onnxruntime raises its own untyped errors
            raise DetectorError(f"cannot load {cfg.path}: {exc}") from exc
        model_input = self._session.get_inputs()[0]
        self._input_name = model_input.name
        batch, _, height, width = model_input.shape
        self._fixed_batch = batch if isinstance(batch, int) else None
        self._size = (int(height), int(width))
        self._classes = class_names(self._session.get_modelmeta().custom_metadata_map)

    @property
    def classes(self) -> Sequence[str]:
        return self._classes

    def known_classes(self) -> Sequence[str] | None:
        return export_classes(self.config.path)

    def unload(self) -> None:
        self._session = None

    def infer_batch(self, images: Sequence[Image]) -> list[list[Box]]:
        if self._session is None:
            raise DetectorError(f"model {self.name} used before load()")
        if not images:
            return []
        prepared = [self._letterbox(image) for image in images]
        tensors = np.stack([tensor for tensor, _ in prepared])
        step = self._fixed_batch or len(images)
        outputs = [
            self._session.run(None, {self._input_name: tensors[i : i + step]})[0]
            for i in range(0, len(images), step)
        ]
        raw = np.concatenate(outputs, axis=0)
        return [
            self._decode(raw[i], box, images[i].shape[1], images[i].shape[0])
            for i, (_, box) in enumerate(prepared)
        ]

    def _letterbox(self, image: Image) -> tuple[np.ndarray[Any, Any], Letterbox]:
        return letterbox(image, self._size)

    def _decode(self, raw: np.ndarray[Any, Any], box: Letterbox, width: int, height: int) -> list[Box]:
        return decode(raw, box, width, height, self._classes, self.config.min_score, self.config.iou)
