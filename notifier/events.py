"""The Notification event: one delivery attempt's outcome, for one recipient and channel."""

from __future__ import annotations

from typing import Literal
from uuid import UUID

from pydantic import Field

from ingest.events import Event

DeliveryStatus = Literal["sent", "failed", "duplicate", "muted"]


class Notification(Event):
    alert_id: UUID
    alert_state: Literal["fired", "resolved"]
    reminder: int = Field(default=0, ge=0, description="which realert of the alert this was (0: the first)")
    rule_id: str
    recipient: str
    channel: str
    address: str = Field(description="where it went, partly masked")
    status: DeliveryStatus
    attempts: int = Field(ge=0)
    provider_id: str | None = None
    error: str | None = None


def mask(address: str) -> str:
    """Keep enough of an address to recognise it, not enough to leak it into logs."""
    if "@" in address:
        user, _, domain = address.partition("@")
        return f"{user[:2]}***@{domain}"
    return f"{address[:3]}***{address[-2:]}" if len(address) > 5 else "***"
