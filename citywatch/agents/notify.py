"""notify: alerts, acknowledgements and clock ticks → the notifier → email, SMS, webhooks.

The notification log that makes delivery at-least-once without duplicates lives in two
Faust tables on the alert's partition, changelogged in Kafka: it is up whenever the broker
is, so a database outage neither delays nor drops a notification. A timer copies the log
to TimescaleDB whenever the database is reachable (`notifier.log.MirroredNotificationLog`).
The outbox sweep runs on clock ticks, inside the agent, for the alerts of the tick's
partition, because only there may a table be written.
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime
from typing import Any

from citywatch import metrics
from citywatch.agents.context import AgentContext
from citywatch.agents.policy import classify
from citywatch.clock import decode_tick, owner_of
from citywatch.codecs import decode_event
from citywatch.topics import TopicName
from notifier.bundling import Bundler
from notifier.escalation import Delivery, Escalator
from notifier.events import AlertAck, AlertComment, Notification
from notifier.log import MirroredNotificationLog
from rules.events import Alert
from storage.notification_log import PgNotificationMirror

log = logging.getLogger(__name__)

NAME = "notify"
NOTIFIED: tuple[TopicName, ...] = ("alerts", "acks", "clock")
PRUNE_EVERY_S = 3600.0
MIRROR_EVERY_S = 1.0


def register(ctx: AgentContext, escalation_state: Any, claims: Any, outbox: Any) -> MirroredNotificationLog:
    settings = ctx.settings
    escalator = Escalator(settings.directory, escalation_state)
    bundler = Bundler(settings.notify.bundle_window_s, escalation_state)
    notification_log = MirroredNotificationLog(claims, outbox, retention_s=settings.notify.dedup_retention_s)
    last_pruned: dict[int, float] = {}

    async def publish_outcomes(outcomes: list[Notification], what: str) -> None:
        if outcomes:
            # The log's outcome ("sent") must be in the changelog before this message is
            # acknowledged: a worker killed with -9 in between would otherwise hand the alert to
            # the next owner with a claim that never saw the send, and the email goes twice.
            await ctx.app.producer.flush()
        for outcome in outcomes:
            log.info("%s %s %s via %s (step %d): %s", what, outcome.rule_id, outcome.recipient,
                     outcome.channel, outcome.step, outcome.status)
            await ctx.send(NAME, "notifications", str(outcome.alert_id).encode(), outcome.to_json())
            metrics.NOTIFICATIONS.labels(outcome.channel, outcome.status).inc()

    async def deliver(alert: Alert, deliveries: list[Delivery] | None) -> None:
        dispatcher = await ctx.runtime.dispatcher(notification_log)
        alert = await ctx.runtime.with_evidence(alert)
        await publish_outcomes(await dispatcher.dispatch(alert, deliveries), "notification")

    async def on_tick(partition: int, now: datetime) -> None:
        """Escalate what nobody acknowledged in time, send bundles, sweep the outbox."""
        owns = owner_of(partition, ctx.partitions)
        for due in escalator.due(now, owns):
            await deliver(due.alert, due.deliveries)
        for bundled in bundler.due(now, owns):
            await deliver(bundled, None)
        dispatcher = await ctx.runtime.dispatcher(notification_log)
        await publish_outcomes(await dispatcher.retry_due(owns=owns), "outbox retry")
        if time.monotonic() - last_pruned.get(partition, 0.0) > PRUNE_EVERY_S:
            last_pruned[partition] = time.monotonic()
            notification_log.prune(owns)

    async def notify_message(event: Any) -> None:
        short = ctx.short(event)
        raw = event.value or b""
        if short == "clock":
            await on_tick(event.message.partition, decode_tick(raw))
            return
        decoded = decode_event(short, raw)
        if isinstance(decoded, AlertAck):
            if escalator.acknowledge(str(decoded.alert_id), decoded.by):
                log.info("alert %s acknowledged by %s via %s", decoded.alert_id, decoded.by, decoded.via)
            return
        if isinstance(decoded, AlertComment):
            return  # for people (the console, the timeline), not for the notifier
        if not isinstance(decoded, Alert):
            raise TypeError(f"notify does not handle {type(decoded).__name__}")
        if not bundler.offer(decoded, datetime.now(UTC)):
            log.info("alert %s for %s held for the rule's bundle", decoded.rule_id, decoded.group_key)
            return
        await deliver(decoded, escalator.on_alert(decoded, datetime.now(UTC)))

    @ctx.app.agent(ctx.topic(*NOTIFIED), name=NAME)
    async def notify(stream: Any) -> None:
        async for event in stream.events():
            await ctx.guarded(NAME, event, notify_message)

    async def mirror() -> None:
        """Copy the log's changes to TimescaleDB; while it is down they wait for the next try."""
        if not notification_log.unmirrored:
            return
        try:
            await notification_log.flush(PgNotificationMirror(await ctx.runtime.pool()))
        except Exception as exc:
            level = logging.DEBUG if classify(exc) == "transient" else logging.ERROR
            log.log(level, "mirroring %d notification log entries failed: %s",
                    len(notification_log.unmirrored), exc)

    ctx.app.timer(MIRROR_EVERY_S)(mirror)
    return notification_log
