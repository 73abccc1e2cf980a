"""Device choice shared by the backends: CUDA when asked for (or 'auto' and present), else CPU."""

from __future__ import annotations

from detectors.base import DetectorError
from detectors.config import Device


def torch_device(device: Device) -> str:
    import torch

    if device == "cuda" and not torch.cuda.is_available():
        raise DetectorError("device 'cuda' requested but torch sees no CUDA device")
    return "cuda" if device in ("cuda", "auto") and torch.cuda.is_available() else "cpu"
