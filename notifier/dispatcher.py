"""Turn an alert into deliveries: who, which channel, what text; dedup through the log.

Each delivery is claimed in the notification log before it is sent and marked after, on
the key (alert, round, step, recipient, channel): a redelivered alert or a restarted
worker sends nothing that was sent, and at most once more what was claimed but not
confirmed. Provider errors are retried with exponential backoff and full jitter; a
permanent error (invalid number, refused address) is not. Where configured, an SMS that
keeps failing falls over to the recipient's email.
"""

from __future__ import annotations

import asyncio
import logging
import random
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from notifier.acklinks import AckLinks
from notifier.channels import Channel, DeliveryError, Message
from notifier.escalation import Delivery
from notifier.events import DeliveryStatus, Notification, mask
from notifier.log import DeliveryKey, NotificationLog, OutboxPolicy, PendingRetry
from notifier.people import Person
from notifier.templates import render
from rules.events import Alert

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 3
    base_delay_s: float = 0.5
    max_delay_s: float = 10.0

    def delay(self, attempt: int) -> float:
        """Exponential backoff with full jitter, so retries from many workers spread out."""
        return random.uniform(0, min(self.max_delay_s, self.base_delay_s * 2 ** (attempt - 1)))  # noqa: S311


def direct_deliveries(alert: Alert) -> list[Delivery]:
    """The rule's own recipients and channels (alerts without an escalation policy)."""
    return [Delivery(t.recipient, channel) for t in alert.notify for channel in t.channels]


async def _send(channel: Channel, address: str, message: Message) -> str:
    """A channel's send, where anything but a DeliveryError is a bug this message trips:
    permanent for this delivery (reported, never retried), never an exception that stops
    the alert's other deliveries or every later outbox sweep."""
    try:
        return await channel.send(address, message)
    except DeliveryError:
        raise
    except Exception as exc:
        log.exception("the %s channel failed unexpectedly", channel.name)
        raise DeliveryError(f"{type(exc).__name__}: {exc}", permanent=True) from exc


@dataclass(frozen=True)
class _Outcome:
    status: DeliveryStatus
    attempts: int
    address: str = ""
    provider_id: str | None = None
    error: str | None = None


class Dispatcher:
    def __init__(
        self,
        channels: Mapping[str, Channel],
        recipients: Mapping[str, Person],
        notification_log: NotificationLog,
        retry: RetryPolicy | None = None,
        failover_after: int | None = None,
        ack_links: AckLinks | None = None,
        outbox: OutboxPolicy | None = None,
    ) -> None:
        self.channels = channels
        self.recipients = recipients
        self.log = notification_log
        self.retry = retry or RetryPolicy()
        self.failover_after = failover_after
        self.ack_links = ack_links
        self.outbox = outbox or OutboxPolicy()

    async def dispatch(
        self, alert: Alert, deliveries: Sequence[Delivery] | None = None
    ) -> list[Notification]:
        """Deliver (by default to the rule's targets); a muted alert (silenced, inhibited) is
        recorded as such for each target and sent to nobody."""
        planned = direct_deliveries(alert) if deliveries is None else list(deliveries)
        if alert.muted:
            return [self._notification(alert, d, d.channel, _Outcome("muted", 0, error=alert.muted))
                    for d in planned]
        return list(await asyncio.gather(*(self._deliver(alert, d) for d in planned)))

    async def _deliver(self, alert: Alert, delivery: Delivery) -> Notification:
        person = self.recipients.get(delivery.recipient)
        quiet = person.quiet_hours if person is not None else None
        if quiet is not None and quiet.mutes(alert.severity, datetime.now(UTC)):
            reason = f"quiet hours {quiet.start}-{quiet.end} {quiet.timezone}"
            return self._notification(alert, delivery, delivery.channel, _Outcome("quiet", 0, error=reason))
        outcome = await self._attempt(alert, delivery, delivery.channel, person)
        failover = (self.failover_after is not None and delivery.channel == "sms"
                    and outcome.status == "failed" and outcome.attempts >= self.failover_after)
        if failover and person is not None and person.email:
            log.warning("SMS to %s failed %d times; falling over to email",
                        delivery.recipient, outcome.attempts)
            fallback = await self._attempt(alert, delivery, "email", person)
            note = f"failover from SMS ({outcome.error})"
            fallback = _Outcome(fallback.status, fallback.attempts, fallback.address, fallback.provider_id,
                                f"{note}; {fallback.error}" if fallback.error else note)
            return self._notification(alert, delivery, "email", fallback)
        return self._notification(alert, delivery, delivery.channel, outcome)

    async def retry_due(
        self, limit: int = 20, owns: Callable[[str], bool] | None = None
    ) -> list[Notification]:
        """The outbox sweep: deliveries that failed for a while or whose worker died, again
        (those at once: one slow provider costs one timeout per sweep, not one per delivery).
        `owns` limits it to the alerts of one partition (see citywatch.clock)."""
        due = await self.log.due_retries(self.outbox, limit, owns)

        async def retry(pending: PendingRetry) -> Notification | None:
            alert = Alert.model_validate(pending.alert)
            delivery = Delivery(pending.key.recipient, pending.key.channel, pending.step)
            person = self.recipients.get(delivery.recipient)
            outcome = await self._attempt(alert, delivery, delivery.channel, person, self.outbox.max_attempts)
            if outcome.status == "duplicate":
                return None
            return self._notification(alert, delivery, delivery.channel, outcome)

        return [n for n in await asyncio.gather(*(retry(p) for p in due)) if n is not None]

    async def _attempt(self, alert: Alert, delivery: Delivery, channel_name: str,
                       person: Person | None, max_attempts: int | None = None) -> _Outcome:
        channel = self.channels.get(channel_name)
        address = person.address(channel_name) if person is not None else None
        if person is None or channel is None or address is None:
            missing = (
                f"unknown recipient {delivery.recipient!r}" if person is None
                else f"channel {channel_name!r} is not configured" if channel is None
                else f"{delivery.recipient} has no {channel_name} address"
            )
            return _Outcome("failed", 0, error=missing)
        round_ = alert.delivery_round if not delivery.step else f"{alert.delivery_round}#{delivery.step}"
        key = DeliveryKey(alert.alert_id, round_, delivery.recipient, channel_name)
        message = self._message(channel, alert, delivery.recipient)
        budget = max_attempts if max_attempts is not None else self.retry.attempts
        context = alert.model_dump(mode="json")
        while True:
            claim = await self.log.claim(key, budget, context, delivery.step, alert.kafka_key)
            if not claim.send:
                return _Outcome("duplicate", claim.attempt, address, error=claim.reason)
            try:
                provider_id = await _send(channel, address, message)
            except DeliveryError as exc:
                sweeping = max_attempts is not None  # the outbox tries once per sweep
                giving_up = exc.permanent or claim.attempt >= budget or sweeping
                await self.log.mark_failed(key, str(exc), exc.permanent, self.outbox.retry_every_s)
                log.warning("%s to %s failed (attempt %d): %s",
                            channel_name, mask(address), claim.attempt, exc)
                if giving_up:  # for now: a transient failure stays in the outbox for later
                    return _Outcome("failed", claim.attempt, address, error=str(exc))
                await asyncio.sleep(self.retry.delay(claim.attempt))
                continue
            await self.log.mark_sent(key, provider_id)
            return _Outcome("sent", claim.attempt, address, provider_id=provider_id)

    def _message(self, channel: Channel, alert: Alert, recipient: str) -> Message:
        link = None  # every channel may carry it: email shows it, a voice call takes a key press
        if self.ack_links is not None:
            link = self.ack_links.link(str(alert.alert_id), recipient)
        person = self.recipients.get(recipient)
        return render(channel.form, alert, link, person.timezone if person else "UTC")

    @staticmethod
    def _notification(alert: Alert, delivery: Delivery, channel: str, outcome: _Outcome) -> Notification:
        detail = f"{alert.delivery_round}|{delivery.step}|{delivery.recipient}|{channel}"
        outcome_id = uuid.uuid5(alert.alert_id, f"{detail}|{outcome.status}|{outcome.attempts}")
        return Notification.model_validate({
            "event_id": outcome_id,
            "source_id": alert.source_id,
            "time": datetime.now(UTC),
            "alert_id": alert.alert_id,
            "alert_state": alert.state,
            "reminder": alert.reminder,
            "step": delivery.step,
            "rule_id": alert.rule_id,
            "recipient": delivery.recipient,
            "channel": channel,
            "address": mask(outcome.address) if outcome.address else "",
            "status": outcome.status,
            "attempts": outcome.attempts,
            "provider_id": outcome.provider_id,
            "error": outcome.error,
        })
