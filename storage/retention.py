"""Retention: old data goes, per table, by whole chunks.

On TimescaleDB's Apache edition (what a laptop installs) a scheduled job calls
`drop_chunks` (an Apache-licensed function) for each hypertable. Where the server reports
the community `timescale` license, the database schedules it itself with
`add_retention_policy`, and the job only makes sure the policies exist.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path

from storage.community import COMMUNITY_LICENSE, ensure_retention_policies, server_license
from storage.connection import Connection

log = logging.getLogger(__name__)
_LOCK_KEY = 0x63_77_72_74  # 'cwrt': one retention run at a time across workers

DEFAULT_RETENTION: dict[str, timedelta] = {
    "detections": timedelta(days=90),
    "readings": timedelta(days=730),
    "drone_telemetry": timedelta(days=365),
    "source_events": timedelta(days=365),
    "alerts": timedelta(days=730),
    "alert_acks": timedelta(days=730),
    "alert_comments": timedelta(days=730),
    "notifications": timedelta(days=730),
    "delivery_receipts": timedelta(days=365),
}


async def apply_retention(
    db: Connection, retention: dict[str, timedelta], now: datetime | None = None
) -> dict[str, int]:
    """Drop chunks older than each table's retention (or, with the community license,
    ensure a retention policy does); returns chunks dropped per table. Evidence snapshots
    (storage/snapshots.py) follow the detections they illustrate."""
    if not await db.fetchval("SELECT pg_try_advisory_lock($1)", _LOCK_KEY):
        return {}  # another worker is on it
    try:
        unknown = sorted(set(retention) - set(DEFAULT_RETENTION))
        if unknown:
            raise ValueError(f"no retention for unknown tables {unknown}")
        retention = {**retention, "snapshots": retention.get("detections", DEFAULT_RETENTION["detections"])}
        if await server_license(db) == COMMUNITY_LICENSE:
            changed = await ensure_retention_policies(db, retention)
            if changed:
                log.info("retention: policies set for %s", ", ".join(changed))
            return {}
        moment = now or datetime.now(UTC)
        dropped: dict[str, int] = {}
        for table, keep in retention.items():
            rows = await db.fetch("SELECT drop_chunks($1::regclass, older_than => $2::timestamptz)",
                                  table, moment - keep)
            dropped[table] = len(rows)
            if rows:
                log.info("retention: dropped %d chunks of %s older than %s", len(rows), table, keep)
        return dropped
    finally:
        await db.execute("SELECT pg_advisory_unlock($1)", _LOCK_KEY)


def prune_files(folder: Path, older_than: timedelta, now: datetime | None = None) -> int:
    """Delete evidence files (snapshots) older than the detections they illustrate."""
    if not folder.is_dir():
        return 0
    cutoff = (now or datetime.now(UTC)).timestamp() - older_than.total_seconds()
    removed = 0
    for path in folder.rglob("*.jpg"):
        try:
            if path.stat().st_mtime < cutoff:
                path.unlink()
                removed += 1
        except FileNotFoundError:
            continue  # another worker got there first
    return removed
