"""Model files are verified against a pinned sha256 before anything loads them.

A wrong or tampered file must refuse to load with a clear error, not quietly
produce different detections.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from detectors.base import DetectorError


class ModelChecksumError(DetectorError):
    pass


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def verify_model_file(path: Path, expected_sha256: str | None) -> None:
    if not path.is_file():
        raise DetectorError(f"model file not found: {path}")
    if expected_sha256 is None:
        return
    actual = sha256_of(path)
    if actual != expected_sha256.lower():
        raise ModelChecksumError(
            f"model file {path} has sha256 {actual}, expected {expected_sha256}: refusing to load"
        )


_METADATA_PROPS = 14  # ModelProto.metadata_props (onnx.proto)


def onnx_metadata(path: Path) -> dict[str, str]:
    """An ONNX model's metadata_props, read from its protobuf without the onnx package: the
    top-level fields are walked and every other one (the graph with its weights) skipped."""
    data = memoryview(path.read_bytes())
    metadata: dict[str, str] = {}
    position = 0
    while position < len(data):
        key, position = _varint(data, position)
        field, wire = key >> 3, key & 7
        if wire == 0:
            _, position = _varint(data, position)
        elif wire == 1:
            position += 8
        elif wire == 5:
            position += 4
        elif wire == 2:
            length, position = _varint(data, position)
            if field == _METADATA_PROPS:
                entry = _strings(data[position:position + length])
                metadata[entry.get(1, "")] = entry.get(2, "")
            position += length
        else:
            raise DetectorError(f"{path}: not an ONNX model (protobuf wire type {wire})")
    return metadata


def _varint(data: memoryview, position: int) -> tuple[int, int]:
    value, shift = 0, 0
    while True:
        if position >= len(data) or shift > 63:
            raise DetectorError("not an ONNX model (a truncated protobuf varint)")
        byte = data[position]
        position += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, position
        shift += 7


def _strings(entry: memoryview) -> dict[int, str]:
    """A StringStringEntryProto: key (1) and value (2)."""
    fields: dict[int, str] = {}
    position = 0
    while position < len(entry):
        key, position = _varint(entry, position)
        length, position = _varint(entry, position)
        fields[key >> 3] = bytes(entry[position:position + length]).decode("utf-8", "replace")
        position += length
    return fields
