"""The Faust app: topics, the rule-state tables and thin agents wiring the domains.

    frames ──detect──► detections ─┐
    readings, telemetry ───────────┼─evaluate──► alerts ──notify──► notifications
    clock (ticks) ─────────────────┘    │  ▲
                                        ▼  │ (rules joining sources, keyed by rule)
                                  correlate ─► correlate agent
    rules (compacted) ──► every worker's rule book; archive-rules ──► TimescaleDB
    readings, detections, alerts, notifications, telemetry ──store──► TimescaleDB

Every topic is raw bytes; agents decode themselves so a malformed message becomes a
dead letter with its reason instead of a crashed agent. An agent never raises out of
its loop: a crashed Faust agent leaves its message unacknowledged and blocks shutdown.
Delivery is at-least-once; storage and notifications are idempotent on event ids.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from functools import partial
from typing import Any

import faust

from citywatch import metrics
from citywatch.clock import decode_tick, encode_tick, owner_of
from citywatch.codecs import decode_event
from citywatch.deadletter import DeadLetter, Headers
from citywatch.publisher import publish_dead_letter
from citywatch.runtime import Runtime
from citywatch.settings import Settings
from citywatch.sources import SourceCounters, run_sources
from citywatch.topics import TopicName, Topics
from ingest.events import Event, EventFormatError
from ingest.frame_codec import Frame, decode_frame
from notifier.bundling import Bundler
from notifier.escalation import Delivery, Escalator
from notifier.events import AlertAck, AlertComment, Notification
from rules.engine import RuleEngine
from rules.events import Alert, ResolveRequest
from rules.library import RuleFileVersion, RulesMessageError, SilenceChange, decode_rules_message
from storage.retention import apply_retention, prune_files
from storage.rules_archive import record_rule_version, record_silence_change

log = logging.getLogger(__name__)

FRAME_BATCH_WITHIN_S = 0.05
STORE_RETRY_MAX_S = 5.0
"""The longest wait between two tries at a database that is down. A try costs a refused
connection; a long wait is time the backlog grows after the database is back (at 30 s,
bench.storage measured catch-up between 1.6 and 28.7 s after the same 30 s outage)."""


class FaustPublisher:
    """Publisher over the app's raw topics (used by in-worker sources and agents)."""

    def __init__(self, app: faust.App, topics: Topics) -> None:
        self._topics = {short: _raw_topic(app, topics.name(short)) for short in _SHORTS}

    async def send(
        self, topic: TopicName, key: bytes, value: bytes, headers: Headers | None = None
    ) -> None:
        await self._topics[topic].send(key=key, value=value, headers=headers)


_SHORTS: tuple[TopicName, ...] = (
    "frames", "telemetry", "readings", "detections", "alerts", "notifications", "deadletter", "control",
    "rules", "correlate", "acks",
)


def _raw_topic(app: faust.App, *names: str, partitions: int | None = None) -> Any:
    return app.topic(
        *names, key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw",
        partitions=partitions,
    )


def build_app(settings: Settings, runtime: Runtime | None = None) -> faust.App:
    broker = settings.broker
    topics = Topics(broker.topic_prefix)
    runtime = runtime or Runtime(settings)
    datadir = settings.infra.state_dir / "worker"
    datadir.mkdir(parents=True, exist_ok=True)
    app = faust.App(
        broker.app_id,
        broker=broker.url,
        store="memory://",
        topic_partitions=broker.partitions,
        topic_replication_factor=broker.replication_factor,
        broker_session_timeout=broker.session_timeout_s,
        broker_heartbeat_interval=broker.heartbeat_interval_s,
        broker_rebalance_timeout=broker.rebalance_timeout_s,
        producer_max_request_size=broker.max_message_bytes,
        consumer_max_fetch_size=broker.max_message_bytes,
        consumer_auto_offset_reset="earliest",
        web_enabled=False,
        datadir=str(datadir),
    )
    publisher = FaustPublisher(app, topics)
    counters = SourceCounters()
    rule_state = app.Table("rule-state", default=None, partitions=broker.partitions)
    correlation_state = app.Table("correlation-state", default=None, partitions=broker.partitions)
    escalation_state = app.Table("escalations", default=None, partitions=broker.partitions)

    async def dead_letter(event: Any, reason: str, consumer: str) -> None:
        message = event.message
        log.warning("dead letter from %s (%s): %s", consumer, message.topic, reason)
        metrics.DEAD_LETTERS.labels(consumer).inc()
        await publish_dead_letter(publisher, DeadLetter(
            origin_topic=message.topic, reason=reason, raw=event.value or b"", consumer=consumer,
            origin_partition=message.partition, origin_offset=message.offset,
            source_id=(event.key or b"").decode(errors="replace") or None,
        ))

    @app.agent(_raw_topic(app, topics.name("frames")), name="detect")
    async def detect(stream: Any) -> None:
        batch_size = max((m.batch_size for m in settings.models), default=1)
        async for events in stream.take_events(batch_size, within=FRAME_BATCH_WITHIN_S):
            metrics.MESSAGES.labels("detect").inc(len(events))
            try:
                await _detect_batch(events)
            except Exception as exc:
                log.exception("detect failed on a batch of %d frames", len(events))
                for event in events:
                    await dead_letter(event, f"detect: {type(exc).__name__}: {exc}", "detect")

    async def _detect_batch(events: Sequence[Any]) -> None:
        frames: list[Frame] = []
        raw_by_frame: dict[int, Any] = {}
        for event in events:
            try:
                frame = decode_frame(event.value or b"")
            except EventFormatError as exc:
                await dead_letter(event, str(exc), "detect")
                continue
            raw_by_frame[id(frame)] = event
            frames.append(frame)
        if not frames:
            return
        engine = await runtime.engine()
        result = await engine.run(frames)
        for frame, reason in result.rejected:
            await dead_letter(raw_by_frame[id(frame)], reason, "detect")
        for detection in result.detections:
            await publisher.send("detections", detection.source_id.encode(), detection.to_json())

    evaluated = [topics.name(t) for t in ("detections", "readings", "telemetry", "clock")]
    partitions = broker.partitions

    async def publish_alerts(alerts: list[Alert]) -> None:
        for alert in alerts:
            log.info("alert %s %s for %s%s", alert.rule_id, alert.state, alert.group_key,
                     f" (muted: {alert.muted})" if alert.muted else "")
            metrics.ALERTS.labels(alert.rule_id, alert.state).inc()
            await publisher.send("alerts", alert.kafka_key.encode(), alert.to_json())

    async def evaluate_message(event: Any, engine: RuleEngine, forward: bool) -> None:
        """One message for a rule engine: a clock tick (time passes for the partition's keys)
        or an event (evaluated, and forwarded to the rules that join sources)."""
        short = topics.short(event.message.topic)
        raw = event.value or b""
        if short == "clock":
            owns = owner_of(event.message.partition, partitions)
            await publish_alerts(engine.tick(decode_tick(raw), owns))
            return
        if short == "correlate":
            short = dict(event.headers or {}).get("origin", b"").decode()
        decoded = decode_event(short, raw)
        if isinstance(decoded, ResolveRequest):
            if forward and engine.joins_sources(decoded.rule_id):  # its state is the correlate agent's
                await publisher.send("correlate", decoded.rule_id.encode(), raw, [("origin", short.encode())])
                return
            await publish_alerts(engine.force_resolve(
                decoded.rule_id, decoded.group_key, str(decoded.alert_id), decoded.time, decoded.by))
            return
        await publish_alerts(engine.evaluate(decoded))
        if forward:
            for rule_id in engine.across_rules_for(decoded):
                await publisher.send("correlate", rule_id.encode(), raw, [("origin", short.encode())])

    async def run_rules(stream: Any, engine: RuleEngine, consumer: str, forward: bool) -> None:
        async for event in stream.events():
            metrics.MESSAGES.labels(consumer).inc()
            try:
                await evaluate_message(event, engine, forward)
            except EventFormatError as exc:
                await dead_letter(event, str(exc), consumer)
            except Exception as exc:
                log.exception("%s failed", consumer)
                await dead_letter(event, f"{consumer}: {type(exc).__name__}: {exc}", consumer)

    @app.agent(_raw_topic(app, *evaluated), name="evaluate")
    async def evaluate(stream: Any) -> None:
        await runtime.rules_ready()
        await run_rules(stream, runtime.rule_engine(rule_state, "per_source"), "evaluate", forward=True)

    @app.agent(_raw_topic(app, topics.name("correlate"), topics.name("clock")), name="correlate")
    async def correlate(stream: Any) -> None:
        """Rules that join sources by distance: their events arrive keyed by rule id, so one
        partition (and one worker) sees every source a rule needs."""
        await runtime.rules_ready()
        engine = runtime.rule_engine(correlation_state, "across_sources")
        await run_rules(stream, engine, "correlate", forward=False)

    escalator = Escalator(settings.directory, escalation_state)
    bundler = Bundler(settings.notify.bundle_window_s, escalation_state)

    async def publish_outcomes(outcomes: list[Notification], what: str) -> None:
        for outcome in outcomes:
            log.info("%s %s %s via %s (step %d): %s", what, outcome.rule_id, outcome.recipient,
                     outcome.channel, outcome.step, outcome.status)
            await publisher.send("notifications", str(outcome.alert_id).encode(), outcome.to_json())
            metrics.NOTIFICATIONS.labels(outcome.channel, outcome.status).inc()

    async def deliver(alert: Alert, deliveries: list[Delivery] | None) -> None:
        dispatcher = await runtime.dispatcher()
        await publish_outcomes(await dispatcher.dispatch(alert, deliveries), "notification")

    async def notify_message(event: Any) -> None:
        """An alert (notify, start or end its escalation), an acknowledgement (stop it), or a
        clock tick (escalate what nobody acknowledged in time)."""
        short = topics.short(event.message.topic)
        raw = event.value or b""
        if short == "clock":
            owns = owner_of(event.message.partition, partitions)
            now = decode_tick(raw)
            for due in escalator.due(now, owns):
                await deliver(due.alert, due.deliveries)
            for bundled in bundler.due(now, owns):
                await deliver(bundled, None)
            return
        decoded = decode_event(short, raw)
        if isinstance(decoded, AlertAck):
            if escalator.acknowledge(str(decoded.alert_id), decoded.by):
                log.info("alert %s acknowledged by %s via %s", decoded.alert_id, decoded.by, decoded.via)
            return
        if isinstance(decoded, AlertComment):
            return  # for people (the console, the timeline), not for the notifier
        assert isinstance(decoded, Alert)
        if not bundler.offer(decoded, datetime.now(UTC)):
            log.info("alert %s for %s held for the rule's bundle", decoded.rule_id, decoded.group_key)
            return
        deliveries: list[Delivery] | None = None
        if escalator.policy_for(decoded) is not None and not decoded.muted:
            if decoded.state == "resolved":
                deliveries = escalator.resolve(decoded)
            elif decoded.reminder:
                deliveries = escalator.notified(str(decoded.alert_id))
            else:
                deliveries = escalator.start(decoded, datetime.now(UTC))
        await deliver(decoded, deliveries)

    async def sweep_outbox() -> None:
        """Deliveries that failed for a while (a provider outage) or whose worker died: again."""
        try:
            dispatcher = await runtime.dispatcher()
            await publish_outcomes(await dispatcher.retry_due(), "outbox retry")
        except Exception:
            log.exception("the outbox sweep failed; it runs again shortly")

    app.timer(max(1.0, settings.notify.outbox_retry_every_s / 2))(sweep_outbox)

    notified_topics = [topics.name(t) for t in ("alerts", "acks", "clock")]

    @app.agent(_raw_topic(app, *notified_topics), name="notify")
    async def notify(stream: Any) -> None:
        async for event in stream.events():
            metrics.MESSAGES.labels("notify").inc()
            try:
                await notify_message(event)
            except EventFormatError as exc:
                await dead_letter(event, str(exc), "notify")
            except Exception as exc:
                log.exception("notify failed")
                await dead_letter(event, f"notify: {type(exc).__name__}: {exc}", "notify")

    stored_topics = [
        topics.name(t) for t in ("readings", "detections", "alerts", "notifications", "telemetry", "acks")
    ]

    @app.agent(_raw_topic(app, *stored_topics), name="store")
    async def store(stream: Any) -> None:
        async for events in stream.take_events(
            settings.storage.batch_size, within=settings.storage.batch_window_s
        ):
            metrics.MESSAGES.labels("store").inc(len(events))
            decoded: list[Event] = []
            for event in events:
                try:
                    decoded.append(decode_event(topics.short(event.message.topic), event.value or b""))
                except EventFormatError as exc:
                    await dead_letter(event, str(exc), "store")
            await _store_until_written(decoded)

    async def _store_until_written(events: list[Event]) -> None:
        """A database outage is not the messages' fault: retry, never dead-letter them."""
        if events:
            await _until_done(lambda: _write(events), f"storing {len(events)} events")

    async def _write(events: list[Event]) -> None:
        writer = await runtime.writer()
        metrics.ROWS_STORED.inc(await writer.write(events))

    async def _until_done(action: Callable[[], Awaitable[None]], what: str) -> None:
        delay = 0.5
        while True:
            try:
                await action()
                return
            except Exception as exc:
                metrics.STORE_FAILURES.inc()
                log.error("%s failed (%s); retrying in %.1f s", what, exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, STORE_RETRY_MAX_S)

    rulebook = runtime.use_rulebook(publisher)

    async def follow_rules() -> None:
        """Until the worker stops: a lost broker connection is retried, never given up."""
        delay = 1.0
        while True:
            try:
                await rulebook.follow(broker.bootstrap_servers, topics)
            except Exception:
                log.exception("following the rules topic failed; retrying in %.0f s", delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30.0)

    app.task(follow_rules)

    async def publish_rule_folder() -> None:
        """Hot reload: changed rule files go to the rules topic; broken ones are refused."""
        try:
            await rulebook.publish_folder()
        except Exception:
            log.exception("publishing the rule folder failed; the previous rules keep running")

    app.timer(settings.rules.reload_every_s)(publish_rule_folder)
    clock = _raw_topic(app, topics.name("clock"))

    async def tick() -> None:
        """Time passes for every partition (see citywatch.clock)."""
        now = encode_tick(datetime.now(UTC))
        try:
            for partition in range(partitions):
                await clock.send(key=b"tick", value=now, partition=partition)
        except Exception:
            log.exception("sending clock ticks failed")

    app.timer(settings.rules.tick_every_s)(tick)

    @app.agent(_raw_topic(app, topics.name("rules")), name="archive-rules")
    async def archive_rules(stream: Any) -> None:
        """Every rule file version and silence change, kept in TimescaleDB (who, when, diff)."""
        async for event in stream.events():
            try:
                message = decode_rules_message(event.value or b"")
            except RulesMessageError as exc:
                await dead_letter(event, str(exc), "archive-rules")
                continue
            await _until_done(partial(_archive, message), "archiving a rules message")

    async def _archive(message: RuleFileVersion | SilenceChange) -> None:
        pool = await runtime.pool()
        if isinstance(message, RuleFileVersion):
            await record_rule_version(pool, message)
        else:
            await record_silence_change(pool, message)

    async def retention() -> None:
        """Old chunks go (drop_chunks on the Apache edition); old snapshot files with them."""
        try:
            pool = await runtime.pool()
            async with pool.acquire() as connection:
                dropped = await apply_retention(connection, settings.storage.retention)
            folder = settings.pipelines.snapshot_dir or settings.infra.state_dir / "snapshots"
            removed = await asyncio.to_thread(prune_files, folder, settings.storage.retention["detections"])
            if any(dropped.values()) or removed:
                log.info("retention: dropped chunks %s, removed %d snapshot files", dropped, removed)
        except Exception:
            log.exception("the retention job failed; it runs again later")

    app.timer(settings.storage.retention_every_s)(retention)

    async def sources() -> None:
        try:
            await run_sources(settings, publisher, counters)
        except Exception:
            log.exception("sources stopped")

    if settings.worker.run_sources:
        app.task(sources)

    async def close_runtime(sender: Any, /, *args: Any, signal: Any, **kwargs: Any) -> None:
        await runtime.close()

    app.on_before_shutdown.connect(close_runtime)

    return app
