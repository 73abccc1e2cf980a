"""YOLO-family ONNX exports on OpenCV's DNN module: no onnxruntime, and OpenCL for the
integrated GPUs of small edge boxes (or CUDA where OpenCV was built with it).

The same files as `onnx-yolo` (an Ultralytics export with the raw head), decoded the same
way (detectors/yolo_head.py). OpenCV's importer takes such exports at batch 1 only, so
frames run one by one; the class names come from the file's own metadata (read here from
the ONNX protobuf, since OpenCV does not expose it) unless the spec lists them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import cv2
import numpy as np

from detectors.base import Detector, DetectorError, Image
from detectors.config import OpenCvDnnYoloModel
from detectors.events import Box
from detectors.model_file import onnx_metadata, verify_model_file
from detectors.yolo_head import class_names, decode, export_classes, letterbox


class OpenCvDnnYoloDetector(Detector):
    def __init__(self, spec: OpenCvDnnYoloModel) -> None:
        self.spec = spec
        self.name, self.version = spec.name, spec.version
        self._net: Any = None
        self._classes: list[str] = list(spec.classes or [])

    def load(self) -> None:
        spec = self.spec
        verify_model_file(spec.path, spec.sha256)
        try:
            net = cv2.dnn.readNetFromONNX(str(spec.path))
        except cv2.error as exc:
            raise DetectorError(f"cannot load {spec.path}: {exc}") from exc
        cuda = cv2.cuda.getCudaEnabledDeviceCount() > 0 if hasattr(cv2, "cuda") else False
        if spec.device == "cuda" and not cuda:
            raise DetectorError("device 'cuda' requested but this OpenCV build has no CUDA device")
        if spec.device in ("cuda", "auto") and cuda:
            net.setPreferableBackend(cv2.dnn.DNN_BACKEND_CUDA)
            net.setPreferableTarget(cv2.dnn.DNN_TARGET_CUDA)
        elif spec.opencl and cv2.ocl.haveOpenCL():
            net.setPreferableTarget(cv2.dnn.DNN_TARGET_OPENCL)
        if spec.threads:
            cv2.setNumThreads(spec.threads)
        if not self._classes:
            self._classes = class_names(onnx_metadata(spec.path))
        if not self._classes:
            raise DetectorError(f"{spec.path} names no classes in its metadata: list them (classes:)")
        self._net = net

    @property
    def classes(self) -> Sequence[str]:
        return self._classes

    def known_classes(self) -> Sequence[str] | None:
        return list(self.spec.classes) if self.spec.classes else export_classes(self.spec.path)

    def unload(self) -> None:
        self._net = None

    def infer_batch(self, images: Sequence[Image]) -> list[list[Box]]:
        if self._net is None:
            raise DetectorError(f"model {self.name} used before load()")
        return [self._detect(image) for image in images]

    def _detect(self, image: Image) -> list[Box]:
        tensor, box = letterbox(image, self.spec.input_size)
        self._net.setInput(tensor[np.newaxis])
        raw = np.asarray(self._net.forward())[0]
        spec = self.spec
        return decode(raw, box, image.shape[1], image.shape[0], self._classes, spec.min_score, spec.iou)
