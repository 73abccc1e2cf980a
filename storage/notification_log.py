"""The notification log in TimescaleDB (implements notifier.log.NotificationLog).

`claim` is one atomic upsert: it records the intent (and what to send) and increments
the attempt count only while the delivery is neither sent nor permanently failed and has
attempts left. Two workers racing on the same key cannot both get a first attempt.
`due_retries` leases entries with one UPDATE ... SKIP LOCKED, so several workers'
outbox sweepers never retry the same entry at once.
"""

from __future__ import annotations

import json
from typing import Any

import asyncpg

from notifier.log import Claim, DeliveryKey, OutboxPolicy, PendingRetry

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
                    step: int = 0) -> Claim:
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

    async def due_retries(self, policy: OutboxPolicy, limit: int = 20) -> list[PendingRetry]:
        rows = await self.pool.fetch(_LEASE, policy.max_attempts, policy.max_age_s, policy.retry_every_s,
                                     policy.stale_claim_s, limit)
        return [PendingRetry(DeliveryKey(r["alert_id"], r["alert_state"], r["recipient"], r["channel"]),
                             json.loads(r["alert"]), r["step"], r["attempts"]) for r in rows]
