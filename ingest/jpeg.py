"""JPEG encoding of sampled frames (OpenCV's libjpeg-turbo)."""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np

from ingest.capture import SourceError


def encode_jpeg(image: np.ndarray[Any, Any], quality: int) -> bytes:
    ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise SourceError("JPEG encoding failed")
    return bytes(buf)
