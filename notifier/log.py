"""The notification log: record before sending, mark after, so nothing is sent twice.

A delivery is keyed by (alert id, round and escalation step, recipient, channel).
`claim` records the intent durably (with what to send) and says whether to send: not
if it was already sent, and at most `max_attempts` times if earlier attempts crashed or
failed. The log is also the outbox: `due_retries` hands back deliveries that failed for
a while (a provider outage) or were claimed by a worker that died, for another try.

In the worker the log lives in Faust tables on the alert's partition, changelogged in Kafka
(`TableNotificationLog`): it is up whenever the broker is, so a database outage neither
delays nor drops a notification. `MirroredNotificationLog` copies every entry to
TimescaleDB's `notification_log` when the database is reachable, for the record.
"""

from __future__ import annotations

import time
from collections.abc import Callable, MutableMapping
from dataclasses import dataclass
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
                    step: int = 0, partition_key: str = "") -> Claim: ...

    async def mark_sent(self, key: DeliveryKey, provider_id: str) -> None: ...

    async def mark_failed(
        self, key: DeliveryKey, error: str, permanent: bool, retry_in_s: float = 0.0
    ) -> None: ...

    async def due_retries(self, policy: OutboxPolicy, limit: int = 20,
                          owns: Callable[[str], bool] | None = None) -> list[PendingRetry]: ...


Entry = dict[str, Any]
"""One delivery's record as plain JSON: status, attempts, the alert to resend, its step, the
partition key it belongs to, and times as epoch seconds."""

OPEN = ("pending", "failed")
DEFAULT_RETENTION_S = 7 * 86400.0
"""How long a finished delivery is remembered, so a redelivered alert still sends nothing twice."""


def entry_key(key: DeliveryKey) -> str:
    return f"{key.alert_id}|{key.alert_state}|{key.recipient}|{key.channel}"


def key_of(text: str) -> DeliveryKey:
    alert_id, state, recipient, channel = text.split("|", 3)
    return DeliveryKey(UUID(alert_id), state, recipient, channel)


class TableNotificationLog:
    """The notification log over two mappings of plain JSON (Faust tables in the worker).

    `claims` remembers every delivery, finished or not, for deduplication; `outbox` holds only
    the open ones (pending or failed, with the alert to resend), so the sweep reads a small
    table. Entries are replaced whole, never mutated in place: a Faust table changelogs a
    key only when it is assigned. Without tables (unit tests, dry runs) plain dicts serve."""

    def __init__(self, claims: MutableMapping[str, Entry] | None = None,
                 outbox: MutableMapping[str, Entry] | None = None,
                 clock: Callable[[], float] = time.time, retention_s: float = DEFAULT_RETENTION_S) -> None:
        self.claims: MutableMapping[str, Entry] = {} if claims is None else claims
        self.outbox: MutableMapping[str, Entry] = {} if outbox is None else outbox
        self.clock = clock
        self.retention_s = retention_s
        self.changed: Callable[[DeliveryKey, Entry], None] = lambda key, entry: None

    def entry(self, key: DeliveryKey) -> Entry | None:
        return self.claims.get(entry_key(key))

    def _put(self, key: DeliveryKey, entry: Entry) -> None:
        text = entry_key(key)
        self.claims[text] = {k: v for k, v in entry.items() if k != "alert"}
        if entry["status"] in OPEN and entry.get("alert") is not None:
            self.outbox[text] = entry
        elif text in self.outbox:
            del self.outbox[text]
        self.changed(key, entry)

    def _full(self, key: DeliveryKey) -> Entry | None:
        text = entry_key(key)
        return self.outbox.get(text) or self.claims.get(text)

    async def claim(self, key: DeliveryKey, max_attempts: int, alert: dict[str, Any] | None = None,
                    step: int = 0, partition_key: str = "") -> Claim:
        now = self.clock()
        entry = self._full(key) or {"status": "pending", "attempts": 0, "alert": alert, "step": step,
                                    "src": partition_key, "created": now}
        if entry["status"] in ("sent", "failed_permanent"):
            return Claim(False, entry["attempts"], f"already {entry['status']}")
        if entry["attempts"] >= max_attempts:
            return Claim(False, entry["attempts"], "attempts exhausted")
        attempts = entry["attempts"] + 1
        self._put(key, {**entry, "alert": entry.get("alert") or alert, "status": "pending",
                        "attempts": attempts, "updated": now, "next": None})
        return Claim(True, attempts)

    async def mark_sent(self, key: DeliveryKey, provider_id: str) -> None:
        entry = self._full(key) or {"attempts": 1, "step": 0, "created": self.clock()}
        self._put(key, {**entry, "status": "sent", "provider_id": provider_id, "error": None,
                        "updated": self.clock(), "next": None})

    async def mark_failed(
        self, key: DeliveryKey, error: str, permanent: bool, retry_in_s: float = 0.0
    ) -> None:
        now = self.clock()
        entry = self._full(key) or {"attempts": 1, "step": 0, "created": now}
        self._put(key, {**entry, "status": "failed_permanent" if permanent else "failed", "error": error,
                        "updated": now, "next": now + retry_in_s})

    async def due_retries(self, policy: OutboxPolicy, limit: int = 20,
                          owns: Callable[[str], bool] | None = None) -> list[PendingRetry]:
        """Open deliveries to try again, leased for `retry_every_s` so the next sweep skips
        them; an outbox entry past `max_age_s` or out of attempts leaves the outbox."""
        now = self.clock()
        due: list[PendingRetry] = []
        for text, entry in list(self.outbox.items()):
            if owns is not None and not owns(entry.get("src", "")):
                continue
            key = key_of(text)
            if now - entry["created"] > policy.max_age_s or entry["attempts"] >= policy.max_attempts:
                self._put(key, {**entry, "status": "expired", "updated": now})
                continue
            next_at: float = entry.get("next") or now
            failed = entry["status"] == "failed" and next_at <= now
            stale = (entry["status"] == "pending" and next_at <= now
                     and now - entry["updated"] > policy.stale_claim_s)
            if not (failed or stale) or len(due) >= limit:
                continue
            self._put(key, {**entry, "next": now + policy.retry_every_s})  # leased
            due.append(PendingRetry(key, entry["alert"], entry["step"], entry["attempts"]))
        return due

    def prune(self, owns: Callable[[str], bool] | None = None) -> int:
        """Forget finished deliveries older than the retention; returns how many went."""
        cutoff = self.clock() - self.retention_s
        gone = 0
        for text, entry in list(self.claims.items()):
            last: float = entry.get("updated") or entry.get("created") or 0.0
            if last >= cutoff or text in self.outbox:
                continue
            if owns is not None and not owns(entry.get("src", "")):
                continue
            del self.claims[text]
            gone += 1
        return gone


class InMemoryNotificationLog(TableNotificationLog):
    """For unit tests and dry runs: the same log over plain dicts."""

    def __init__(self) -> None:
        super().__init__()


class NotificationMirror(Protocol):
    """Where the log's entries are copied for the record (TimescaleDB's notification_log)."""

    async def upsert(self, entries: list[tuple[DeliveryKey, Entry]]) -> None: ...


class MirroredNotificationLog(TableNotificationLog):
    """The table log, whose every change also waits to be copied to a mirror. `flush` copies
    what changed since the last flush (newest entry per delivery); while the mirror is down
    the changes wait, one per delivery, and nothing on the delivery path waits for it."""

    def __init__(self, claims: MutableMapping[str, Entry] | None = None,
                 outbox: MutableMapping[str, Entry] | None = None,
                 clock: Callable[[], float] = time.time, retention_s: float = DEFAULT_RETENTION_S) -> None:
        super().__init__(claims, outbox, clock, retention_s)
        self.unmirrored: dict[DeliveryKey, Entry] = {}
        self.changed = self._remember

    def _remember(self, key: DeliveryKey, entry: Entry) -> None:
        self.unmirrored[key] = entry

    async def flush(self, mirror: NotificationMirror, batch: int = 500) -> int:
        """Copy waiting changes; on failure they stay waiting (and the error propagates)."""
        copied = 0
        while self.unmirrored:
            keys = list(self.unmirrored)[:batch]
            entries = [(key, self.unmirrored[key]) for key in keys]
            await mirror.upsert(entries)
            for key, entry in entries:
                if self.unmirrored.get(key) is entry:
                    del self.unmirrored[key]
            copied += len(entries)
        return copied
