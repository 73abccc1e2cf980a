"""What every agent shares: the app, settings, topics, runtime, and the two ways out of a
message (publishing a result, dead-lettering the message) under the failure policy."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import faust

from citywatch import faust_fixes, metrics
from citywatch.agents.policy import GaveWay, describe, keep_dead_letter, until_done
from citywatch.deadletter import DeadLetter, Headers
from citywatch.runtime import Runtime
from citywatch.settings import Settings
from citywatch.topics import ALL_TOPICS, TopicName, Topics
from ingest.events import EventFormatError

log = logging.getLogger(__name__)

def raw_topic(app: faust.App, *names: str, partitions: int | None = None) -> Any:
    return app.topic(
        *names, key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw",
        partitions=partitions,
    )


class FaustPublisher:
    """Publisher over the app's raw topics (used by in-worker sources and agents)."""

    def __init__(self, app: faust.App, topics: Topics) -> None:
        self._topics = {short: raw_topic(app, topics.name(short)) for short in ALL_TOPICS}

    async def send(
        self, topic: TopicName, key: bytes, value: bytes, headers: Headers | None = None
    ) -> None:
        await self._topics[topic].send(key=key, value=value, headers=headers)


@dataclass
class AgentContext:
    app: faust.App
    settings: Settings
    topics: Topics
    runtime: Runtime
    publisher: FaustPublisher

    @property
    def partitions(self) -> int:
        return self.settings.broker.partitions

    def topic(self, *shorts: TopicName) -> Any:
        return raw_topic(self.app, *(self.topics.name(s) for s in shorts))

    def short(self, event: Any) -> str:
        return self.topics.short(event.message.topic)

    async def send(self, agent: str, topic: TopicName, key: bytes, value: bytes,
                   headers: Headers | None = None) -> None:
        """Publish a result; a broker that is briefly away is waited for, not given up on."""
        await until_done(lambda: self.publisher.send(topic, key, value, headers), agent,
                         f"publishing to {topic}")

    def giving_way(self) -> bool:
        """Whether the worker is handing its partitions over (a rebalance) or stopping: an
        agent that acknowledges by hand stops waiting out a transient failure then (GaveWay)."""
        return bool(self.app.rebalancing) or bool(self.app.should_stop)

    def release(self, events: Sequence[Any], agent: str, why: GaveWay) -> None:
        """Leave `events` unacknowledged without holding up a revoke. Faust's revoke (and its
        stop) waits until every agent a message was delivered to has acknowledged it; this
        agent's copies are released instead (faust_fixes.release), so the committed offset
        stays before them and the partition's next owner reads them again (at-least-once;
        the sinks are idempotent)."""
        consumer: Any = self.app.consumer
        for event in events:
            faust_fixes.release(consumer, event.message)
        log.warning("%s: %s; %d messages left unacknowledged for the partitions' next owner", agent, why,
                    len(events))

    async def dead_letter(self, event: Any, reason: str, consumer: str) -> None:
        message = event.message
        log.warning("dead letter from %s (%s): %s", consumer, message.topic, reason)
        metrics.DEAD_LETTERS.labels(consumer).inc()
        letter = DeadLetter(
            origin_topic=message.topic, reason=reason, raw=event.value or b"", consumer=consumer,
            origin_partition=message.partition, origin_offset=message.offset,
            source_id=(event.key or b"").decode(errors="replace") or None,
        )
        await keep_dead_letter(self.publisher, letter, consumer)

    async def guarded(self, consumer: str, event: Any, handle: Callable[[Any], Awaitable[None]]) -> None:
        """One message through `handle`; whatever it raises belongs to that message (results
        are published through `send`, which waits out the broker): dead-letter, carry on."""
        metrics.MESSAGES.labels(consumer).inc()
        try:
            await handle(event)
        except EventFormatError as exc:  # bad input: the reason says it all
            await self.dead_letter(event, str(exc), consumer)
        except Exception as exc:  # a bug this message trips: keep the traceback for whoever fixes it
            log.exception("%s failed on a message of %s", consumer, event.message.topic)
            await self.dead_letter(event, describe(exc, consumer), consumer)
