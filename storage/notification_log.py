"""The notification log in TimescaleDB (implements notifier.log.NotificationLog).

`claim` is one atomic upsert: it records the intent and increments the attempt
count only while the delivery is neither sent nor permanently failed and has
attempts left. Two workers racing on the same key cannot both get a first attempt.
"""

from __future__ import annotations

import asyncpg

from notifier.log import Claim, DeliveryKey

_CLAIM = """
INSERT INTO notification_log (alert_id, alert_state, recipient, channel, status, attempts)
VALUES ($1, $2, $3, $4, 'pending', 1)
ON CONFLICT (alert_id, alert_state, recipient, channel) DO UPDATE
   SET attempts = notification_log.attempts + 1, status = 'pending', updated_at = now()
 WHERE notification_log.status NOT IN ('sent', 'failed_permanent')
   AND notification_log.attempts < $5
RETURNING attempts
"""


class PgNotificationLog:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    @staticmethod
    def _key(key: DeliveryKey) -> tuple[object, ...]:
        return (key.alert_id, key.alert_state, key.recipient, key.channel)

    async def claim(self, key: DeliveryKey, max_attempts: int) -> Claim:
        attempts = await self.pool.fetchval(_CLAIM, *self._key(key), max_attempts)
        if attempts is not None:
            return Claim(True, int(attempts))
        row = await self.pool.fetchrow(
            "SELECT status, attempts FROM notification_log WHERE alert_id=$1 AND alert_state=$2"
            " AND recipient=$3 AND channel=$4", *self._key(key))
        status, attempts = (row["status"], row["attempts"]) if row else ("unknown", 0)
        reason = f"already {status}" if status in ("sent", "failed_permanent") else "attempts exhausted"
        return Claim(False, int(attempts), reason)

    async def mark_sent(self, key: DeliveryKey, provider_id: str) -> None:
        await self.pool.execute(
            "UPDATE notification_log SET status='sent', provider_id=$5, error=NULL, updated_at=now()"
            " WHERE alert_id=$1 AND alert_state=$2 AND recipient=$3 AND channel=$4",
            *self._key(key), provider_id)

    async def mark_failed(self, key: DeliveryKey, error: str, permanent: bool) -> None:
        await self.pool.execute(
            "UPDATE notification_log SET status=$5, error=$6, updated_at=now()"
            " WHERE alert_id=$1 AND alert_state=$2 AND recipient=$3 AND channel=$4",
            *self._key(key), "failed_permanent" if permanent else "failed", error)
