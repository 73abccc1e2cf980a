"""JPEG bytes to an image, with a clear error for a corrupt frame."""

from __future__ import annotations

import cv2
import numpy as np

from detectors.base import Image
from ingest.events import EventFormatError


def decode_jpeg(data: bytes) -> Image:
    image = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        raise EventFormatError(f"undecodable JPEG ({len(data)} bytes)")
    return image
