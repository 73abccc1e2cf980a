"""The notification log: record before sending, mark after, so nothing is sent twice.

A delivery is keyed by (alert id, alert state, recipient, channel). `claim`
records the intent durably and says whether to send: not if it was already sent,
and at most `max_attempts` times if earlier attempts crashed or failed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol
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


class NotificationLog(Protocol):
    async def claim(self, key: DeliveryKey, max_attempts: int) -> Claim: ...

    async def mark_sent(self, key: DeliveryKey, provider_id: str) -> None: ...

    async def mark_failed(self, key: DeliveryKey, error: str, permanent: bool) -> None: ...


class InMemoryNotificationLog:
    """For unit tests and dry runs; production uses storage's TimescaleDB log."""

    def __init__(self) -> None:
        self.entries: dict[DeliveryKey, dict[str, object]] = {}

    async def claim(self, key: DeliveryKey, max_attempts: int) -> Claim:
        entry = self.entries.setdefault(key, {"status": "pending", "attempts": 0})
        attempts = int(entry["attempts"])  # type: ignore[call-overload]
        if entry["status"] in ("sent", "failed_permanent"):
            return Claim(False, attempts, f"already {entry['status']}")
        if attempts >= max_attempts:
            return Claim(False, attempts, "attempts exhausted")
        entry["attempts"] = attempts + 1
        return Claim(True, attempts + 1)

    async def mark_sent(self, key: DeliveryKey, provider_id: str) -> None:
        self.entries[key].update(status="sent", provider_id=provider_id)

    async def mark_failed(self, key: DeliveryKey, error: str, permanent: bool) -> None:
        self.entries[key].update(status="failed_permanent" if permanent else "failed", error=error)
