"""Read side for operators and analysts: the queries the console and APIs run."""

from __future__ import annotations

from typing import Any

import asyncpg


async def recent_alerts(pool: asyncpg.Pool, limit: int = 50) -> list[dict[str, Any]]:
    """Latest alert transitions first."""
    rows = await pool.fetch(
        "SELECT time, alert_id, rule_id, state, severity, source_id, title, started_at, resolved_at"
        " FROM alerts ORDER BY time DESC LIMIT $1",
        limit,
    )
    return [dict(row) for row in rows]
