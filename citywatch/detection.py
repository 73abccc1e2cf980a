"""Build the configured detectors for the worker."""

from __future__ import annotations

from collections.abc import Sequence

from detectors.config import ModelSpec
from detectors.registry import build_detector
from detectors.runner import DetectorRunner


def build_runner(models: Sequence[ModelSpec]) -> DetectorRunner:
    return DetectorRunner([build_detector(m) for m in models])
