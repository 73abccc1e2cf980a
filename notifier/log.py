"""The notification log: record before sending, mark after, so nothing is sent twice.

A delivery is keyed by (alert id, round and escalation step, recipient, channel).
`claim` records the intent durably (with what to send) and says whether to send: not
if it was already sent, and at most `max_attempts` times if earlier attempts crashed or
failed. The log is also the outbox: `due_retries` hands back deliveries that failed for
a while (a provider outage) or were claimed by a worker that died, for another try.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol
from uuid import UUID


@dataclass(frozen=True)
class DeliveryKey:
    alert_id: UUID
    alert_state: str
    recipient: str
    channel: str


@dataclass(frozen=True)
class Claim:
    send: bool
    attempt: int
    reason: str = ""


@dataclass(frozen=True)
class PendingRetry:
    key: DeliveryKey
    alert: dict[str, Any]  # the Alert, as JSON
    step: int
    attempts: int


@dataclass(frozen=True)
class OutboxPolicy:
    """How long the outbox keeps trying after the quick retries gave up."""

    max_attempts: int = 30
    max_age_s: float = 3600.0
    retry_every_s: float = 10.0
    stale_claim_s: float = 60.0  # a claim this old without an outcome: its worker died


class NotificationLog(Protocol):
    async def claim(self, key: DeliveryKey, max_attempts: int, alert: dict[str, Any] | None = None,
                    step: int = 0) -> Claim: ...

    async def mark_sent(self, key: DeliveryKey, provider_id: str) -> None: ...

    async def mark_failed(
        self, key: DeliveryKey, error: str, permanent: bool, retry_in_s: float = 0.0
    ) -> None: ...

    async def due_retries(self, policy: OutboxPolicy, limit: int = 20) -> list[PendingRetry]: ...


@dataclass
class _Entry:
    status: str = "pending"
    attempts: int = 0
    alert: dict[str, Any] | None = None
    step: int = 0
    created: datetime = field(default_factory=lambda: datetime.now(UTC))
    updated: datetime = field(default_factory=lambda: datetime.now(UTC))
    next_attempt: datetime | None = None
    provider_id: str | None = None
    error: str | None = None


class InMemoryNotificationLog:
    """For unit tests and dry runs; production uses storage's TimescaleDB log."""

    def __init__(self) -> None:
        self.entries: dict[DeliveryKey, _Entry] = {}

    async def claim(self, key: DeliveryKey, max_attempts: int, alert: dict[str, Any] | None = None,
                    step: int = 0) -> Claim:
        entry = self.entries.setdefault(key, _Entry(alert=alert, step=step))
        if entry.status in ("sent", "failed_permanent"):
            return Claim(False, entry.attempts, f"already {entry.status}")
        if entry.attempts >= max_attempts:
            return Claim(False, entry.attempts, "attempts exhausted")
        entry.attempts += 1
        entry.status, entry.updated = "pending", datetime.now(UTC)
        return Claim(True, entry.attempts)

    async def mark_sent(self, key: DeliveryKey, provider_id: str) -> None:
        entry = self.entries[key]
        entry.status, entry.provider_id, entry.updated = "sent", provider_id, datetime.now(UTC)

    async def mark_failed(
        self, key: DeliveryKey, error: str, permanent: bool, retry_in_s: float = 0.0
    ) -> None:
        entry = self.entries[key]
        entry.status = "failed_permanent" if permanent else "failed"
        entry.error, entry.updated = error, datetime.now(UTC)
        entry.next_attempt = datetime.now(UTC) + timedelta(seconds=retry_in_s)

    async def due_retries(self, policy: OutboxPolicy, limit: int = 20) -> list[PendingRetry]:
        now = datetime.now(UTC)
        due = []
        for key, entry in self.entries.items():
            if entry.alert is None or now - entry.created > timedelta(seconds=policy.max_age_s):
                continue
            failed = entry.status == "failed" and (entry.next_attempt or now) <= now
            stale_after = timedelta(seconds=policy.stale_claim_s)
            stale = entry.status == "pending" and now - entry.updated > stale_after
            if (failed or stale) and entry.attempts < policy.max_attempts:
                entry.next_attempt = now + timedelta(seconds=policy.retry_every_s)  # leased
                due.append(PendingRetry(key, entry.alert, entry.step, entry.attempts))
        return due[:limit]
