"""Binary wire format of a frame: magic, header length, JSON header, JPEG bytes.

Frames are the bulk of the traffic, so the JPEG travels as raw bytes (never
base64 in JSON); the small header stays JSON so any consumer can read it.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from ingest.events import EventFormatError, FrameHeader

MAGIC = b"CWF1"
_LENGTH = struct.Struct(">I")
MAX_HEADER_BYTES = 64 * 1024
JPEG_SOI = b"\xff\xd8"


@dataclass(frozen=True, slots=True)
class Frame:
    header: FrameHeader
    jpeg: bytes

    @property
    def source_id(self) -> str:
        return self.header.source_id


def encode_frame(frame: Frame) -> bytes:
    header = frame.header.to_json()
    return MAGIC + _LENGTH.pack(len(header)) + header + frame.jpeg


def decode_frame(raw: bytes) -> Frame:
    """Parse a frame message; raises EventFormatError naming what is wrong."""
    if len(raw) < len(MAGIC) + _LENGTH.size:
        raise EventFormatError(f"frame message too short ({len(raw)} bytes)")
    if raw[: len(MAGIC)] != MAGIC:
        raise EventFormatError(f"not a frame message (magic {raw[:4]!r}, expected {MAGIC!r})")
    (header_len,) = _LENGTH.unpack_from(raw, len(MAGIC))
    start = len(MAGIC) + _LENGTH.size
    if header_len > MAX_HEADER_BYTES or start + header_len > len(raw):
        raise EventFormatError(f"frame header length {header_len} exceeds the message")
    header = FrameHeader.from_json(raw[start : start + header_len])
    jpeg = raw[start + header_len :]
    if not jpeg.startswith(JPEG_SOI):
        raise EventFormatError("frame payload is not a JPEG (missing SOI marker)")
    return Frame(header=header, jpeg=jpeg)
