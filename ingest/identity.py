"""Deterministic event ids for recorded sources: the file's identity plus the position in it.

A CSV replay, a drone's video with its flight log: played twice, or restarted halfway, they
produce the same events with the same ids, so the sinks (which deduplicate on event ids)
store nothing twice. A file's identity is its name, size and a hash of its head and tail:
cheap for a multi-gigabyte video, and it changes when the content does.
"""

from __future__ import annotations

import hashlib
import os
import uuid
from pathlib import Path

_NAMESPACE = uuid.UUID("0b8f7e42-5d0c-4d55-a3f4-8a7c2f9e6b10")
_SAMPLE_BYTES = 1 << 20


def file_identity(path: Path) -> uuid.UUID:
    digest = hashlib.sha256()
    size = path.stat().st_size
    with path.open("rb") as handle:
        digest.update(handle.read(_SAMPLE_BYTES))
        if size > 2 * _SAMPLE_BYTES:
            handle.seek(-_SAMPLE_BYTES, os.SEEK_END)
            digest.update(handle.read(_SAMPLE_BYTES))
    return uuid.uuid5(_NAMESPACE, f"{path.name}|{size}|{digest.hexdigest()}")


def event_id_at(identity: uuid.UUID, source_id: str, what: str, position: str | int) -> uuid.UUID:
    """The id of the `what` event at `position` (a line, a video time) of a source's file."""
    return uuid.uuid5(identity, f"{source_id}|{what}|{position}")
