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
