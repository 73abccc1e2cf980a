"""The notification log in TimescaleDB (implements notifier.log.NotificationLog).

`claim` is one atomic upsert: it records the intent (and what to send) and increments
the attempt count only while the delivery is neither sent nor permanently failed and has
attempts left. Two workers racing on the same key cannot both get a first attempt.
`due_retries` leases entries with one UPDATE ... SKIP LOCKED, so several workers'
outbox sweepers never retry the same entry at once.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import asyncpg

from notifier.log import Claim, DeliveryKey, Entry, OutboxPolicy, PendingRetry

_CLAIM = """
INSERT INTO notification_log (alert_id, alert_state, recipient, channel, status, attempts, alert, step)
VALUES ($1, $2, $3, $4, 'pending', 1, $6::jsonb, $7)
ON CONFLICT (alert_id, alert_state, recipient, channel) DO UPDATE
   SET attempts = notification_log.attempts + 1, status = 'pending', updated_at = now(),
       alert = COALESCE(notification_log.alert, EXCLUDED.alert)
 WHERE notification_log.status NOT IN ('sent', 'failed_permanent')
   AND notification_log.attempts < $5
RETURNING attempts
"""

_LEASE = """
UPDATE notification_log SET next_attempt_at = now() + make_interval(secs => $3)
 WHERE (alert_id, alert_state, recipient, channel) IN (
       SELECT alert_id, alert_state, recipient, channel FROM notification_log
        WHERE alert IS NOT NULL AND attempts < $1 AND created_at > now() - make_interval(secs => $2)
          AND ((status = 'failed' AND COALESCE(next_attempt_at, now()) <= now())
               OR (status = 'pending' AND updated_at < now() - make_interval(secs => $4)
                   AND COALESCE(next_attempt_at, now()) <= now()))
        ORDER BY created_at LIMIT $5 FOR UPDATE SKIP LOCKED)
RETURNING alert_id, alert_state, recipient, channel, alert, step, attempts
"""

_WHERE = " WHERE alert_id=$1 AND alert_state=$2 AND recipient=$3 AND channel=$4"


class PgNotificationLog:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    @staticmethod
    def _key(key: DeliveryKey) -> tuple[object, ...]:
        return (key.alert_id, key.alert_state, key.recipient, key.channel)

    async def claim(self, key: DeliveryKey, max_attempts: int, alert: dict[str, Any] | None = None,
                    step: int = 0, partition_key: str = "") -> Claim:
        context = json.dumps(alert) if alert is not None else None
        attempts = await self.pool.fetchval(_CLAIM, *self._key(key), max_attempts, context, step)
        if attempts is not None:
            return Claim(True, int(attempts))
        row = await self.pool.fetchrow(
            "SELECT status, attempts FROM notification_log" + _WHERE, *self._key(key))
        status, attempts = (row["status"], row["attempts"]) if row else ("unknown", 0)
        reason = f"already {status}" if status in ("sent", "failed_permanent") else "attempts exhausted"
        return Claim(False, int(attempts), reason)

    async def mark_sent(self, key: DeliveryKey, provider_id: str) -> None:
        await self.pool.execute(
            "UPDATE notification_log SET status='sent', provider_id=$5, error=NULL,"
            " updated_at=now()" + _WHERE,
            *self._key(key), provider_id)

    async def mark_failed(
        self, key: DeliveryKey, error: str, permanent: bool, retry_in_s: float = 0.0
    ) -> None:
        await self.pool.execute(
            "UPDATE notification_log SET status=$5, error=$6, updated_at=now(),"
            " next_attempt_at = now() + make_interval(secs => $7)" + _WHERE,
            *self._key(key), "failed_permanent" if permanent else "failed", error, retry_in_s)

    async def due_retries(self, policy: OutboxPolicy, limit: int = 20,
                          owns: Callable[[str], bool] | None = None) -> list[PendingRetry]:
        """Every worker's sweep may ask: the lease (SKIP LOCKED) decides, not `owns`."""
        rows = await self.pool.fetch(_LEASE, policy.max_attempts, policy.max_age_s, policy.retry_every_s,
                                     policy.stale_claim_s, limit)
        return [PendingRetry(DeliveryKey(r["alert_id"], r["alert_state"], r["recipient"], r["channel"]),
                             json.loads(r["alert"]), r["step"], r["attempts"]) for r in rows]


_UPSERT = """
INSERT INTO notification_log (alert_id, alert_state, recipient, channel, status, attempts, provider_id,
                              error, alert, step, created_at, updated_at, next_attempt_at)
SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[], $6::int[], $7::text[],
                     $8::text[], $9::jsonb[], $10::int[], $11::timestamptz[], $12::timestamptz[],
                     $13::timestamptz[])
ON CONFLICT (alert_id, alert_state, recipient, channel) DO UPDATE
   SET status = EXCLUDED.status, attempts = GREATEST(notification_log.attempts, EXCLUDED.attempts),
       provider_id = EXCLUDED.provider_id, error = EXCLUDED.error,
       alert = COALESCE(notification_log.alert, EXCLUDED.alert), updated_at = EXCLUDED.updated_at,
       next_attempt_at = EXCLUDED.next_attempt_at
 WHERE notification_log.status <> 'sent'
"""


def _moment(epoch: float | None) -> datetime | None:
    return None if epoch is None else datetime.fromtimestamp(epoch, UTC)


class PgNotificationMirror:
    """Copies the worker's notification log (notifier.log.MirroredNotificationLog) into
    `notification_log`, for the record and for the console; one statement per batch. A row
    already 'sent' is never changed back."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def upsert(self, entries: list[tuple[DeliveryKey, Entry]]) -> None:
        if not entries:
            return
        columns: list[list[Any]] = [[] for _ in range(13)]
        for key, entry in entries:
            alert = entry.get("alert")
            created = _moment(entry.get("created"))
            row = (key.alert_id, key.alert_state, key.recipient, key.channel, entry["status"],
                   int(entry.get("attempts", 0)), entry.get("provider_id"), entry.get("error"),
                   json.dumps(alert) if alert is not None else None, int(entry.get("step", 0)),
                   created, _moment(entry.get("updated")) or created, _moment(entry.get("next")))
            for column, value in zip(columns, row, strict=True):
                column.append(value)
        await self.pool.execute(_UPSERT, *columns)
