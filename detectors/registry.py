"""From a model spec to a detector: each spec names its backend (detectors/config.py)."""

from __future__ import annotations

import importlib

from detectors.base import Detector
from detectors.config import ModelSpec


def build_detector(spec: ModelSpec) -> Detector:
    """Backends import their heavy libraries lazily: a worker loads only what it runs."""
    module, _, name = type(spec).backend.partition(":")
    backend = getattr(importlib.import_module(module), name)
    detector: Detector = backend(spec)
    return detector
