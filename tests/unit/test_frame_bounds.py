"""Frames are checked before decoding, and one bad frame never fails its batch."""

from collections.abc import Sequence
from datetime import UTC, datetime

import numpy as np
import pytest

from detectors.base import Detector, Image
from detectors.decode import decode_jpeg, jpeg_size
from detectors.engine import DetectionEngine, ModelRuntime
from detectors.events import Box
from ingest.events import EventFormatError, FrameHeader
from ingest.frame_codec import Frame
from ingest.jpeg import encode_jpeg


def jpeg(width: int = 64, height: int = 48, value: int = 90) -> bytes:
    return encode_jpeg(np.full((height, width, 3), value, np.uint8), 90)


def claiming(width: int, height: int) -> bytes:
    """A small valid JPEG whose frame header claims another size (a decompression bomb)."""
    data = bytearray(jpeg())
    at = data.index(b"\xff\xc0")
    data[at + 5:at + 7] = height.to_bytes(2, "big")
    data[at + 7:at + 9] = width.to_bytes(2, "big")
    return bytes(data)


def frame(data: bytes, source: str = "cam-1") -> Frame:
    header = FrameHeader(source_id=source, time=datetime(2026, 1, 1, tzinfo=UTC), sequence=0,
                         width=64, height=48)
    return Frame(header, data)


def test_the_size_is_read_from_the_header() -> None:
    assert jpeg_size(jpeg(64, 48)) == (64, 48)
    assert jpeg_size(claiming(40000, 40000)) == (40000, 40000)


@pytest.mark.parametrize("data", [b"", b"\xff\xd8", b"\xff\xd8\xff\xe0\x00\x01", b"\xff\xd8garbage",
                                  b"\xff\xd8\xff\xda\x00\x08scan-before-frame"])
def test_broken_headers_are_refused_with_a_reason(data: bytes) -> None:
    with pytest.raises(EventFormatError, match="JPEG"):
        jpeg_size(data)


def test_a_decompression_bomb_is_refused_before_decoding() -> None:
    with pytest.raises(EventFormatError, match=r"40000x40000 .* exceeds the limit"):
        decode_jpeg(claiming(40000, 40000))
    with pytest.raises(EventFormatError, match="exceeds the limit of 1,000"):
        decode_jpeg(jpeg(64, 48), max_pixels=1000)
    assert decode_jpeg(jpeg(64, 48)).shape == (48, 64, 3)


class TrippedBy(Detector):
    """Raises on any batch holding a white image, like a model tripping on one input."""

    def __init__(self) -> None:
        self.name, self.version = "tripped", "1"
        self.batches: list[int] = []

    def load(self) -> None:
        pass

    @property
    def classes(self) -> Sequence[str]:
        return ["car"]

    def infer_batch(self, images: Sequence[Image]) -> list[list[Box]]:
        self.batches.append(len(images))
        if any(int(image.mean()) > 240 for image in images):
            raise RuntimeError("the model tripped on this image")
        return [[Box(label="car", class_id=0, score=0.9, x1=1, y1=1, x2=20, y2=20)] for _ in images]


async def test_one_bad_frame_leaves_the_rest_of_its_batch_detected() -> None:
    model = TrippedBy()
    engine = DetectionEngine({"tripped": ModelRuntime(model, batch_size=8, max_wait_ms=50)})
    good = [frame(jpeg(), f"cam-{i}") for i in range(3)]
    bomb, white = frame(claiming(40000, 40000), "cam-bomb"), frame(jpeg(value=255), "cam-white")
    try:
        result = await engine.run([good[0], bomb, good[1], white, good[2]])
    finally:
        await engine.close()
    assert sorted(d.source_id for d in result.detections) == ["cam-0", "cam-1", "cam-2"]
    reasons = {f.source_id: reason for f, reason in result.rejected}
    assert set(reasons) == {"cam-bomb", "cam-white"}
    assert "exceeds the limit" in reasons["cam-bomb"]
    assert "the model tripped on this image" in reasons["cam-white"]
    assert model.batches[0] == 4 and model.batches[1:] == [1, 1, 1, 1]  # the failed batch, then alone
