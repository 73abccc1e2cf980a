"""JPEG bytes to an image, with a clear error for a corrupt or oversized frame.

The frame's size is read from its JPEG header before anything is decoded: a tiny file
whose header claims 40000x40000 would otherwise make OpenCV allocate gigabytes (a
20000x20000 one took a worker from 0.5 to 2.8 GB). Such a frame is refused on its own,
the rest of its batch is not touched.
"""

from __future__ import annotations

import cv2
import numpy as np

from detectors.base import Image
from ingest.events import EventFormatError

DEFAULT_MAX_PIXELS = 7680 * 4320
"""8K UHD: larger than any camera or drone we take, far below what exhausts a worker."""

_SOF_MARKERS = frozenset({0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF})
_STANDALONE = frozenset({0x01, *range(0xD0, 0xD8)})  # TEM, RSTn: markers without a length


def jpeg_size(data: bytes) -> tuple[int, int]:
    """(width, height) from the first start-of-frame segment (ITU T.81, B.2.2), without decoding."""
    if data[:2] != b"\xff\xd8":
        raise EventFormatError("not a JPEG (missing SOI marker)")
    at = 2
    while at + 4 <= len(data):
        if data[at] != 0xFF:
            raise EventFormatError(f"corrupt JPEG: no marker at byte {at}")
        marker = data[at + 1]
        if marker == 0xFF:  # fill byte before a marker
            at += 1
            continue
        if marker in _STANDALONE:
            at += 2
            continue
        if marker in (0xD9, 0xDA):  # end of image, or scan data before any frame header
            break
        length = int.from_bytes(data[at + 2:at + 4], "big")
        if length < 2:
            raise EventFormatError(f"corrupt JPEG: segment length {length} at byte {at}")
        if marker in _SOF_MARKERS:
            if at + 9 > len(data):
                break
            height = int.from_bytes(data[at + 5:at + 7], "big")
            width = int.from_bytes(data[at + 7:at + 9], "big")
            return width, height
        at += 2 + length
    raise EventFormatError("corrupt JPEG: no frame header (SOF) before the image data")


def decode_jpeg(data: bytes, max_pixels: int = DEFAULT_MAX_PIXELS) -> Image:
    width, height = jpeg_size(data)
    if width <= 0 or height <= 0:
        raise EventFormatError(f"JPEG header claims an empty image ({width}x{height})")
    if width * height > max_pixels:
        raise EventFormatError(
            f"JPEG of {width}x{height} ({width * height:,} pixels) exceeds the limit of {max_pixels:,}")
    image = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        raise EventFormatError(f"undecodable JPEG ({len(data)} bytes)")
    return image
