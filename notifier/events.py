"""The Notification event: one delivery attempt's outcome, for one recipient and channel."""

from __future__ import annotations

from typing import Literal
from uuid import UUID

from pydantic import Field

from ingest.events import Event
from rules.keys import group_key_of

DeliveryStatus = Literal["sent", "failed", "duplicate", "muted", "quiet"]


class Notification(Event):
    alert_id: UUID
    alert_state: Literal["fired", "resolved"]
    reminder: int = Field(default=0, ge=0, description="which realert of the alert this was (0: the first)")
    step: int = Field(default=0, ge=0, description="the escalation step (0: the first, or no policy)")
    rule_id: str
    recipient: str
    channel: str
    address: str = Field(description="where it went, partly masked")
    status: DeliveryStatus
    attempts: int = Field(ge=0)
    provider_id: str | None = None
    error: str | None = None


class DeliveryReceipt(Event):
    """What the SMS provider later reported about a message (queued, sent, delivered,
    undelivered, failed), from its signed status callback."""

    kind: Literal["receipt"] = "receipt"
    provider_id: str = Field(min_length=1, max_length=64)
    status: str = Field(min_length=1, max_length=32)
    error_code: str | None = None
    to: str = Field(default="", description="partly masked")


Via = Literal["console", "api", "sms", "voice", "email", "cli"]
"""Where an acknowledgement came from."""


class AlertAck(Event):
    """Somebody took an alert: escalation stops. Keyed like the alert (rule|group) so it
    lands on the alert's partition, after the alert."""

    kind: Literal["ack"] = "ack"
    alert_id: UUID
    rule_id: str
    group_key: str
    by: str = Field(min_length=1, max_length=200)
    via: Via
    note: str = Field(default="", max_length=2000)

    @property
    def kafka_key(self) -> str:
        return group_key_of(self.rule_id, self.group_key)


class AlertComment(Event):
    """An operator's note on an alert (the acks topic, keyed like the alert); shown in every
    console and kept in the alert's timeline. It does not stop an escalation."""

    kind: Literal["comment"] = "comment"
    alert_id: UUID
    rule_id: str
    group_key: str
    by: str = Field(min_length=1, max_length=200)
    text: str = Field(min_length=1, max_length=2000)

    @property
    def kafka_key(self) -> str:
        return group_key_of(self.rule_id, self.group_key)


def mask(address: str) -> str:
    """Keep enough of an address to recognise it, not enough to leak it into logs."""
    if "@" in address:
        user, _, domain = address.partition("@")
        return f"{user[:2]}***@{domain}"
    return f"{address[:3]}***{address[-2:]}" if len(address) > 5 else "***"
