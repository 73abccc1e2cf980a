"""Evidence snapshots in TimescaleDB: one place every worker and the console can read.

A snapshot taken by the worker that detected it is read by whichever worker emails the
alert and by the console, on any host; a folder (detectors/snapshots.py FolderSnapshots)
only works where every host mounts the same one. The table is a hypertable that follows
the detections' retention (storage/retention.py). References are `snapshot:<event id>`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any
from uuid import UUID

from detectors.events import Detection

PREFIX = "snapshot:"

PoolProvider = Callable[[], Awaitable[Any]]
"""Returns the asyncpg pool (created on first use, so a worker starts with the database down)."""


def reference_of(event_id: UUID) -> str:
    return f"{PREFIX}{event_id}"


def event_id_of(reference: str) -> UUID | None:
    """The event id a `snapshot:` reference names, or None (a file path, or not a reference)."""
    if not reference.startswith(PREFIX):
        return None
    try:
        return UUID(reference.removeprefix(PREFIX))
    except ValueError:
        return None


class PgSnapshots:
    def __init__(self, pool: PoolProvider) -> None:
        self._pool = pool

    @classmethod
    def on(cls, pool: Any) -> PgSnapshots:
        """Over a pool already open (the console's, a test's)."""
        async def provide() -> Any:
            return pool

        return cls(provide)

    async def keep(self, detection: Detection, jpeg: bytes) -> str:
        pool = await self._pool()
        await pool.execute(
            "INSERT INTO snapshots (time, event_id, source_id, jpeg) VALUES ($1, $2, $3, $4)"
            " ON CONFLICT DO NOTHING", detection.time, detection.event_id, detection.source_id, jpeg)
        return reference_of(detection.event_id)

    async def nearest(self, source_id: str, since: datetime, until: datetime) -> str | None:
        """The latest snapshot of `source_id` taken within [since, until]: an alert whose
        deciding frame carried none shows the nearest picture of its source in its window."""
        pool = await self._pool()
        event_id: UUID | None = await pool.fetchval(
            "SELECT event_id FROM snapshots WHERE source_id = $1 AND time >= $2 AND time <= $3"
            " ORDER BY time DESC LIMIT 1", source_id, since, until)
        return reference_of(event_id) if event_id is not None else None

    async def load(self, reference: str) -> bytes | None:
        """The JPEG a reference names, or None when it names none (or retention took it)."""
        event_id = event_id_of(reference)
        if event_id is None:
            return None
        pool = await self._pool()
        data: bytes | None = await pool.fetchval("SELECT jpeg FROM snapshots WHERE event_id = $1 LIMIT 1",
                                                 event_id)
        return data
