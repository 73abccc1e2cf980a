"""The live feed: the console follows the `alerts` and `acks` topics from their end and
fans each message out to every browser connected by Server-Sent Events, so a new alert or
an acknowledgement shows in every open feed within a second."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections import OrderedDict
from collections.abc import AsyncIterator
from typing import Any

from aiokafka import AIOKafkaConsumer

from citywatch.acks import AlertRef
from citywatch.codecs import decode_event
from citywatch.topics import Topics, follow_from_end
from ingest.events import EventFormatError
from notifier.events import AlertAck, AlertComment
from rules.events import Alert

log = logging.getLogger(__name__)
QUEUE_SIZE = 256
RECENT_ALERTS = 10_000
TOPIC_RETRY_S = 2.0


def feed_item(event: Alert | AlertAck | AlertComment) -> dict[str, Any]:
    """What a browser needs to draw or update one row."""
    if isinstance(event, AlertComment):
        return {"type": "comment", "alert_id": str(event.alert_id), "by": event.by, "text": event.text,
                "time": event.time.isoformat()}
    if isinstance(event, AlertAck):
        return {"type": "ack", "alert_id": str(event.alert_id), "by": event.by, "via": event.via,
                "time": event.time.isoformat()}
    return {"type": "alert", "event_id": str(event.event_id), "alert_id": str(event.alert_id),
            "rule_id": event.rule_id, "state": event.state,
            "severity": event.severity, "title": event.title, "group_key": event.group_key,
            "source_id": event.source_id, "time": event.time.isoformat(), "reminder": event.reminder,
            "muted": event.muted, "labels": event.labels}


class LiveFeed:
    def __init__(self, bootstrap_servers: str, topics: Topics) -> None:
        self.bootstrap_servers = bootstrap_servers
        self.topics = topics
        self._subscribers: set[asyncio.Queue[dict[str, Any]]] = set()
        self.recent: OrderedDict[str, AlertRef] = OrderedDict()  # alerts seen, for acknowledging at once
        self._task: asyncio.Task[None] | None = None
        self.ready = asyncio.Event()

    def start(self) -> None:
        self._task = asyncio.create_task(self._follow())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def _remember(self, alert: Alert) -> None:
        """An operator may acknowledge an alert the moment it shows, before the store agent
        has written it: the feed knows where to send the acknowledgement."""
        self.recent[str(alert.alert_id)] = AlertRef(alert.rule_id, alert.group_key, alert.source_id)
        self.recent.move_to_end(str(alert.alert_id))
        while len(self.recent) > RECENT_ALERTS:
            self.recent.popitem(last=False)

    def publish(self, item: dict[str, Any]) -> None:
        for queue in list(self._subscribers):
            if queue.full():  # a stalled browser loses its oldest rows, not the others' feed
                queue.get_nowait()
            queue.put_nowait(item)

    async def subscribe(self) -> AsyncIterator[dict[str, Any]]:
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(QUEUE_SIZE)
        self._subscribers.add(queue)
        try:
            while True:
                yield await queue.get()
        finally:
            self._subscribers.discard(queue)

    async def _follow(self) -> None:
        names = [self.topics.name("alerts"), self.topics.name("acks")]
        while True:
            consumer = AIOKafkaConsumer(bootstrap_servers=self.bootstrap_servers, enable_auto_commit=False)
            try:
                await consumer.start()
                await follow_from_end(consumer, names, wait_for_topics_s=TOPIC_RETRY_S)
                self.ready.set()
                async for message in consumer:
                    try:
                        event = decode_event(self.topics.short(message.topic), message.value or b"")
                    except EventFormatError:
                        continue  # the store agent dead-letters it; the feed just skips it
                    if isinstance(event, Alert):
                        self._remember(event)
                    if isinstance(event, Alert | AlertAck | AlertComment):
                        self.publish(feed_item(event))
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("the live feed lost the broker; following again shortly")
                await asyncio.sleep(TOPIC_RETRY_S)
            finally:
                await consumer.stop()


def sse(item: dict[str, Any]) -> str:
    return f"event: {item['type']}\ndata: {json.dumps(item, default=str)}\n\n"
