"""YOLO-family detector (raw head, no NMS in the graph) on onnxruntime.

onnxruntime runs YOLO about twice as fast as Ultralytics' torch path on CPU
(docs/models-and-data.md) and needs no AGPL code at run time, so it is the default
backend. Letterboxing, decoding and NMS are done here in NumPy/OpenCV.
"""

from __future__ import annotations

import ast
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
import onnxruntime as ort

from detectors.base import Detector, DetectorError, Image
from detectors.config import Device, OnnxYoloModel
from detectors.events import Box
from detectors.model_file import verify_model_file


def select_providers(device: Device) -> list[str]:
    """CUDA when asked for (or 'auto' and present), otherwise the CPU provider."""
    available = set(ort.get_available_providers())
    if device == "cuda" and "CUDAExecutionProvider" not in available:
        raise DetectorError("device 'cuda' requested but onnxruntime has no CUDA provider here")
    if device in ("cuda", "auto") and "CUDAExecutionProvider" in available:
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]
    return ["CPUExecutionProvider"]


MAX_BOXES = 300


@dataclass(frozen=True)
class _Letterbox:
    ratio: float
    pad_x: float
    pad_y: float


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
        self._classes = _class_names(self._session.get_modelmeta().custom_metadata_map)

    @property
    def classes(self) -> Sequence[str]:
        return self._classes

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

    def _letterbox(self, image: Image) -> tuple[np.ndarray[Any, Any], _Letterbox]:
        target_h, target_w = self._size
        height, width = image.shape[:2]
        ratio = min(target_w / width, target_h / height)
        new_w, new_h = round(width * ratio), round(height * ratio)
        resized = cv2.resize(image, (new_w, new_h), interpolation=cv2.INTER_LINEAR)
        pad_x, pad_y = (target_w - new_w) / 2, (target_h - new_h) / 2
        top, left = round(pad_y - 0.1), round(pad_x - 0.1)
        canvas = cv2.copyMakeBorder(
            resized, top, target_h - new_h - top, left, target_w - new_w - left,
            cv2.BORDER_CONSTANT, value=(114, 114, 114),
        )
        tensor = cv2.cvtColor(canvas, cv2.COLOR_BGR2RGB).transpose(2, 0, 1).astype(np.float32)
        tensor /= 255.0
        return tensor, _Letterbox(ratio, left, top)

    def _decode(
        self, raw: np.ndarray[Any, Any], box: _Letterbox, width: int, height: int
    ) -> list[Box]:
        cfg = self.config
        predictions = raw.T  # (N, 4 + classes)
        scores_all = predictions[:, 4:]
        class_ids = scores_all.argmax(axis=1)
        scores = scores_all[np.arange(len(class_ids)), class_ids]
        keep = scores >= cfg.min_score
        if not keep.any():
            return []
        xywh, scores, class_ids = predictions[keep, :4], scores[keep], class_ids[keep]
        x1 = (xywh[:, 0] - xywh[:, 2] / 2 - box.pad_x) / box.ratio
        y1 = (xywh[:, 1] - xywh[:, 3] / 2 - box.pad_y) / box.ratio
        w, h = xywh[:, 2] / box.ratio, xywh[:, 3] / box.ratio
        rects = np.stack([x1, y1, w, h], axis=1)
        chosen = cv2.dnn.NMSBoxesBatched(
            rects.tolist(), scores.tolist(), class_ids.tolist(), cfg.min_score, cfg.iou
        )
        result = []
        for i in np.asarray(chosen).reshape(-1)[:MAX_BOXES]:
            class_id = int(class_ids[i])
            result.append(Box(
                label=self._classes[class_id] if class_id < len(self._classes) else str(class_id),
                class_id=class_id,
                score=round(float(scores[i]), 4),
                x1=round(float(np.clip(x1[i], 0, width)), 1),
                y1=round(float(np.clip(y1[i], 0, height)), 1),
                x2=round(float(np.clip(x1[i] + w[i], 0, width)), 1),
                y2=round(float(np.clip(y1[i] + h[i], 0, height)), 1),
            ))
        return result


def _class_names(metadata: dict[str, str]) -> list[str]:
    """Ultralytics exports store {id: name} as a Python literal in the 'names' metadata."""
    text = metadata.get("names")
    if not text:
        return []
    names = ast.literal_eval(text)
    if not isinstance(names, dict):
        raise DetectorError("model metadata 'names' is not a mapping")
    return [str(names[i]) for i in sorted(names)]
