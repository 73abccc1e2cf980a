"""Read side for operators and analysts: the queries the console and APIs run."""

from __future__ import annotations

from typing import Any

import asyncpg


async def recent_alerts(pool: asyncpg.Pool, limit: int = 50) -> list[dict[str, Any]]:
    """Latest alert transitions first."""
    rows = await pool.fetch(
        "SELECT a.time, a.alert_id, a.rule_id, a.state, a.severity, a.source_id, a.title, a.started_at,"
        " a.resolved_at, a.muted, k.acked_by FROM (SELECT * FROM alerts ORDER BY time DESC LIMIT $1) a"
        " LEFT JOIN LATERAL (SELECT by_whom || ' (' || via || ')' AS acked_by FROM alert_acks"
        " WHERE alert_acks.alert_id = a.alert_id ORDER BY time LIMIT 1) k ON TRUE ORDER BY a.time DESC",
        limit,
    )
    return [dict(row) for row in rows]
