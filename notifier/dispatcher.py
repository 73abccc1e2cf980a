"""Turn an alert into deliveries: who, which channel, what text; dedup through the log."""

from __future__ import annotations

import asyncio
import logging
import random
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from notifier.channels import Channel, DeliveryError
from notifier.events import Notification, mask
from notifier.log import DeliveryKey, NotificationLog
from notifier.templates import render
from rules.events import Alert

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Recipient:
    name: str
    email: str | None = None
    phone: str | None = None

    def address(self, channel: str) -> str | None:
        return {"email": self.email, "sms": self.phone}.get(channel)


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 3
    base_delay_s: float = 0.5
    max_delay_s: float = 10.0

    def delay(self, attempt: int) -> float:
        """Exponential backoff with full jitter, so retries from many workers spread out."""
        return random.uniform(0, min(self.max_delay_s, self.base_delay_s * 2 ** (attempt - 1)))  # noqa: S311


class Dispatcher:
    def __init__(
        self,
        channels: Mapping[str, Channel],
        recipients: Mapping[str, Recipient],
        notification_log: NotificationLog,
        retry: RetryPolicy | None = None,
    ) -> None:
        self.channels = channels
        self.recipients = recipients
        self.log = notification_log
        self.retry = retry or RetryPolicy()

    async def dispatch(self, alert: Alert) -> list[Notification]:
        """Deliver to every target; a muted alert (silenced, inhibited) is recorded as such
        for each target and sent to nobody."""
        if alert.muted:
            return [self._outcome(alert, target.recipient, channel, "", "muted", 0, error=alert.muted)
                    for target in alert.notify for channel in target.channels]
        deliveries = [
            (target.recipient, channel) for target in alert.notify for channel in target.channels
        ]
        results = await asyncio.gather(*(self._deliver(alert, r, c) for r, c in deliveries))
        return list(results)

    async def _deliver(self, alert: Alert, recipient_name: str, channel_name: str) -> Notification:
        recipient = self.recipients.get(recipient_name)
        channel = self.channels.get(channel_name)
        address = recipient.address(channel_name) if recipient else None
        if recipient is None or channel is None or address is None:
            missing = (
                f"unknown recipient {recipient_name!r}" if recipient is None
                else f"channel {channel_name!r} is not configured" if channel is None
                else f"{recipient_name} has no {channel_name} address"
            )
            return self._outcome(alert, recipient_name, channel_name, "", "failed", 0, error=missing)
        key = DeliveryKey(alert.alert_id, alert.delivery_round, recipient_name, channel_name)
        message = render(channel_name, alert)
        attempts = 0
        while True:
            claim = await self.log.claim(key, self.retry.attempts)
            if not claim.send:
                return self._outcome(
                    alert, recipient_name, channel_name, address, "duplicate", claim.attempt,
                    error=claim.reason,
                )
            attempts = claim.attempt
            try:
                provider_id = await channel.send(address, message)
            except DeliveryError as exc:
                await self.log.mark_failed(key, str(exc), exc.permanent)
                log.warning("%s to %s failed (attempt %d): %s", channel_name, mask(address), attempts, exc)
                if exc.permanent or attempts >= self.retry.attempts:
                    return self._outcome(
                        alert, recipient_name, channel_name, address, "failed", attempts, error=str(exc)
                    )
                await asyncio.sleep(self.retry.delay(attempts))
                continue
            await self.log.mark_sent(key, provider_id)
            return self._outcome(
                alert, recipient_name, channel_name, address, "sent", attempts, provider_id=provider_id
            )

    @staticmethod
    def _outcome(
        alert: Alert, recipient: str, channel: str, address: str, status: str, attempts: int,
        provider_id: str | None = None, error: str | None = None,
    ) -> Notification:
        outcome_id = uuid.uuid5(
            alert.alert_id, f"{alert.delivery_round}|{recipient}|{channel}|{status}|{attempts}")
        return Notification.model_validate({
            "event_id": outcome_id,
            "source_id": alert.source_id,
            "time": datetime.now(UTC),
            "alert_id": alert.alert_id,
            "alert_state": alert.state,
            "reminder": alert.reminder,
            "rule_id": alert.rule_id,
            "recipient": recipient,
            "channel": channel,
            "address": mask(address) if address else "",
            "status": status,
            "attempts": attempts,
            "provider_id": provider_id,
            "error": error,
        })
