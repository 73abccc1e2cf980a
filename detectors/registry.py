"""From a model spec to a detector: the one place that knows every backend."""

from __future__ import annotations

from detectors.base import Detector
from detectors.config import ModelSpec, OnnxYoloModel, OpenCvHogModel, TorchModel, UltralyticsModel


def build_detector(spec: ModelSpec) -> Detector:
    """Backends import their heavy libraries lazily: a worker loads only what it runs."""
    if isinstance(spec, OnnxYoloModel):
        from detectors.onnx_yolo import OnnxYoloDetector

        return OnnxYoloDetector(spec)
    if isinstance(spec, UltralyticsModel):
        from detectors.ultralytics_backend import UltralyticsDetector

        return UltralyticsDetector(spec)
    if isinstance(spec, TorchModel):
        from detectors.torch_backend import TorchDetector

        return TorchDetector(spec)
    if isinstance(spec, OpenCvHogModel):
        from detectors.opencv_hog import OpenCvHogDetector

        return OpenCvHogDetector(spec)
    raise TypeError(f"no backend for {type(spec).__name__}")
