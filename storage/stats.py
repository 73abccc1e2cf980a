"""Row counts per table, for the demo summary and health checks."""

from __future__ import annotations

import asyncpg

from storage.rows import EVENT_TABLES


async def row_counts(connection: asyncpg.Connection | asyncpg.Pool) -> dict[str, int]:
    counts = {}
    for table in (*EVENT_TABLES, "notification_log", "dead_letters"):
        counts[table] = int(await connection.fetchval(f"SELECT count(*) FROM {table}"))
    return counts
