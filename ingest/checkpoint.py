"""Where a replay stopped, kept in a small JSON file, so a restarted replay resumes there.

Written atomically (a temporary file renamed over the old one), at most every `every_s`
seconds and at the end: a crash costs at most that much replay again, and the deterministic
event ids make what is replayed again a duplicate the sinks drop.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from pathlib import Path


class Checkpoint:
    def __init__(self, path: Path, identity: uuid.UUID, every_s: float = 1.0) -> None:
        self.path = path
        self.identity = str(identity)
        self.every_s = every_s
        self._written_at = 0.0
        self._position = self._read()

    def _read(self) -> int:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return 0
        if not isinstance(data, dict) or data.get("identity") != self.identity:
            return 0  # another file (or another version of it): start from its beginning
        position = data.get("position")
        return position if isinstance(position, int) and position >= 0 else 0

    @property
    def position(self) -> int:
        """The last position handed on (0: none yet)."""
        return self._position

    def advance(self, position: int, force: bool = False) -> None:
        self._position = position
        if force or time.monotonic() - self._written_at >= self.every_s:
            self.flush()

    def flush(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.path.with_suffix(".tmp")
        temporary.write_text(json.dumps({"identity": self.identity, "position": self._position}),
                             encoding="utf-8")
        os.replace(temporary, self.path)
        self._written_at = time.monotonic()
