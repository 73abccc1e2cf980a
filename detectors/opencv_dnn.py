"""YOLO-family ONNX exports on OpenCV's DNN module: no onnxruntime, and OpenCL for the
integrated GPUs of small edge boxes (or CUDA where OpenCV was built with it).

The same files as `onnx-yolo` (an Ultralytics export with the raw head), decoded the same
way (detectors/yolo_head.py). OpenCV's importer takes such exports at batch 1 only, so
frames run one by one; the class names come from the file's own metadata (read here from
the ONNX protobuf, since OpenCV does not expose it) unless the spec lists them.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from detectors.base import Detector, DetectorError, Image
from detectors.config import OpenCvDnnYoloModel
from detectors.events import Box
from detectors.model_file import verify_model_file
from detectors.yolo_head import class_names, decode, letterbox

_METADATA_PROPS = 14  # ModelProto.metadata_props (onnx.proto)


def onnx_metadata(path: Path) -> dict[str, str]:
    """An ONNX model's metadata_props, read from its protobuf without the onnx package: the
    top-level fields are walked and every other one (the graph with its weights) skipped."""
    data = memoryview(path.read_bytes())
    metadata: dict[str, str] = {}
    position = 0
    while position < len(data):
        key, position = _varint(data, position)
        field, wire = key >> 3, key & 7
        if wire == 0:
            _, position = _varint(data, position)
        elif wire == 1:
            position += 8
        elif wire == 5:
            position += 4
        elif wire == 2:
            length, position = _varint(data, position)
            if field == _METADATA_PROPS:
                entry = _strings(data[position:position + length])
                metadata[entry.get(1, "")] = entry.get(2, "")
            position += length
        else:
            raise DetectorError(f"{path}: not an ONNX model (protobuf wire type {wire})")
    return metadata


def _varint(data: memoryview, position: int) -> tuple[int, int]:
    value, shift = 0, 0
    while True:
        if position >= len(data) or shift > 63:
            raise DetectorError("not an ONNX model (a truncated protobuf varint)")
        byte = data[position]
        position += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, position
        shift += 7


def _strings(entry: memoryview) -> dict[int, str]:
    """A StringStringEntryProto: key (1) and value (2)."""
    fields: dict[int, str] = {}
    position = 0
    while position < len(entry):
        key, position = _varint(entry, position)
        length, position = _varint(entry, position)
        fields[key >> 3] = bytes(entry[position:position + length]).decode("utf-8", "replace")
        position += length
    return fields


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
