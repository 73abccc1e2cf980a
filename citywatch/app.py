"""The Faust app: topics, the rule-state table and four thin agents wiring the domains.

    frames ──detect──► detections ─┐
    readings ──────────────────────┼─evaluate──► alerts ──notify──► notifications
                                   └──────────── store ◄── (readings, detections, alerts, notifications)

Every topic is raw bytes; agents decode themselves so a malformed message becomes a
dead letter with its reason instead of a crashed agent. An agent never raises out of
its loop: a crashed Faust agent leaves its message unacknowledged and blocks shutdown.
Delivery is at-least-once; storage and notifications are idempotent on event ids.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any

import faust

from citywatch import metrics
from citywatch.codecs import decode_event
from citywatch.deadletter import DeadLetter, Headers
from citywatch.publisher import publish_dead_letter
from citywatch.runtime import Runtime
from citywatch.settings import Settings
from citywatch.sources import SourceCounters, run_sources
from citywatch.topics import TopicName, Topics
from ingest.events import Event, EventFormatError
from ingest.frame_codec import Frame, decode_frame

log = logging.getLogger(__name__)

FRAME_BATCH_WITHIN_S = 0.05
STORE_RETRY_MAX_S = 30.0


class FaustPublisher:
    """Publisher over the app's raw topics (used by in-worker sources and agents)."""

    def __init__(self, app: faust.App, topics: Topics) -> None:
        self._topics = {short: _raw_topic(app, topics.name(short)) for short in _SHORTS}

    async def send(
        self, topic: TopicName, key: bytes, value: bytes, headers: Headers | None = None
    ) -> None:
        await self._topics[topic].send(key=key, value=value, headers=headers)


_SHORTS: tuple[TopicName, ...] = (
    "frames", "telemetry", "readings", "detections", "alerts", "notifications", "deadletter", "control"
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

    evaluated = [topics.name(t) for t in ("detections", "readings", "telemetry")]

    @app.agent(_raw_topic(app, *evaluated), name="evaluate")
    async def evaluate(stream: Any) -> None:
        engine = None
        async for event in stream.events():
            metrics.MESSAGES.labels("evaluate").inc()
            try:
                if engine is None:
                    engine = runtime.rule_engine(rule_state)
                decoded = decode_event(topics.short(event.message.topic), event.value or b"")
                for alert in engine.evaluate(decoded):
                    log.info("alert %s %s for %s", alert.rule_id, alert.state, alert.group_key)
                    metrics.ALERTS.labels(alert.rule_id, alert.state).inc()
                    await publisher.send("alerts", alert.kafka_key.encode(), alert.to_json())
            except EventFormatError as exc:
                await dead_letter(event, str(exc), "evaluate")
            except Exception as exc:
                log.exception("evaluate failed")
                await dead_letter(event, f"evaluate: {type(exc).__name__}: {exc}", "evaluate")

    @app.agent(_raw_topic(app, topics.name("alerts")), name="notify")
    async def notify(stream: Any) -> None:
        async for event in stream.events():
            metrics.MESSAGES.labels("notify").inc()
            try:
                alert = decode_event("alerts", event.value or b"")
                dispatcher = await runtime.dispatcher()
                for outcome in await dispatcher.dispatch(alert):  # type: ignore[arg-type]
                    log.info("notification %s %s via %s: %s", outcome.rule_id, outcome.recipient,
                             outcome.channel, outcome.status)
                    await publisher.send("notifications", str(outcome.alert_id).encode(),
                                         outcome.to_json())
                    metrics.NOTIFICATIONS.labels(outcome.channel, outcome.status).inc()
            except EventFormatError as exc:
                await dead_letter(event, str(exc), "notify")
            except Exception as exc:
                log.exception("notify failed")
                await dead_letter(event, f"notify: {type(exc).__name__}: {exc}", "notify")

    stored_topics = [
        topics.name(t) for t in ("readings", "detections", "alerts", "notifications", "telemetry")
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
        delay = 0.5
        while events:
            try:
                writer = await runtime.writer()
                metrics.ROWS_STORED.inc(await writer.write(events))
                return
            except Exception as exc:
                metrics.STORE_FAILURES.inc()
                log.error("storing %d events failed (%s); retrying in %.1f s", len(events), exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, STORE_RETRY_MAX_S)

    async def reload_rules() -> None:
        """Hot reload: changed rule files apply without a restart; broken ones are refused."""
        try:
            # in the event loop, between events: a few small files, and no engine swap mid-event
            runtime.reload_rules()
        except Exception:
            log.exception("rule reload failed; the previous rules keep running")

    app.timer(settings.rules.reload_every_s)(reload_rules)

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
