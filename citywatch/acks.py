"""Acknowledging an alert from anywhere (console, API, SMS reply, email link, CLI): look the
alert up, publish an AlertAck on the `acks` topic keyed like the alert, so the notify
agent that escalates it sees the acknowledgement on the same partition."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from uuid import UUID

import asyncpg

from citywatch.publisher import Publisher
from notifier.events import AlertAck, Via


@dataclass(frozen=True)
class AlertRef:
    """Where an alert's messages go: its rule and group key (the Kafka key) and source."""

    rule_id: str
    group_key: str
    source_id: str


async def locate(
    db: asyncpg.Pool | asyncpg.Connection, alert_id: UUID, known: Mapping[str, AlertRef] | None = None
) -> AlertRef | None:
    """An alert's rule, group key and source: from `known` (the alerts the live feed just
    saw, perhaps not stored yet), else the database; None when neither has it."""
    ref = (known or {}).get(str(alert_id))
    if ref is not None:
        return ref
    row = await db.fetchrow(
        "SELECT rule_id, COALESCE(group_key, source_id) AS group_key, source_id"
        " FROM alerts WHERE alert_id = $1 ORDER BY time LIMIT 1", alert_id)
    return None if row is None else AlertRef(row["rule_id"], row["group_key"], row["source_id"])


async def last_alert_sent_to(db: asyncpg.Pool | asyncpg.Connection, recipient: str) -> UUID | None:
    """The alert most recently notified to `recipient` by SMS (what a bare 'ACK' reply means)."""
    value = await db.fetchval(
        "SELECT alert_id FROM notifications WHERE recipient = $1 AND channel = 'sms' AND status = 'sent'"
        " ORDER BY time DESC LIMIT 1", recipient)
    return value if isinstance(value, UUID) else None


async def acknowledge(
    db: asyncpg.Pool | asyncpg.Connection, publisher: Publisher, alert_id: UUID, by: str, via: Via,
    note: str = "", known: Mapping[str, AlertRef] | None = None,
) -> AlertAck | None:
    """None when the alert is neither `known` (just seen on the feed) nor stored."""
    ref = await locate(db, alert_id, known)
    if ref is None:
        return None
    ack = AlertAck(source_id=ref.source_id, time=datetime.now(UTC), alert_id=alert_id,
                   rule_id=ref.rule_id, group_key=ref.group_key, by=by, via=via, note=note)
    await publisher.send("acks", ack.kafka_key.encode(), ack.to_json())
    return ack
