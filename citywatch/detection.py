"""Build the configured detectors (backend registry) for the worker."""

from __future__ import annotations

from collections.abc import Callable

from citywatch.settings import ModelSettings
from detectors.base import Detector
from detectors.onnx_yolo import OnnxYoloConfig, OnnxYoloDetector
from detectors.runner import DetectorRunner


def _onnx_yolo(cfg: ModelSettings) -> Detector:
    return OnnxYoloDetector(OnnxYoloConfig(
        name=cfg.name, version=cfg.version, path=cfg.path, sha256=cfg.sha256, device=cfg.device,
        threads=cfg.threads, min_score=cfg.min_score, iou=cfg.iou,
    ))


BACKENDS: dict[str, Callable[[ModelSettings], Detector]] = {"onnx-yolo": _onnx_yolo}


def build_runner(models: list[ModelSettings]) -> DetectorRunner:
    return DetectorRunner([BACKENDS[m.backend](m) for m in models])
