"""Count what flows through the topics, from now on: the demo's independent view.

A plain consumer (no group) assigned to every partition and positioned at the end
when it starts, so it counts exactly the messages produced while it watches,
without disturbing the workers' consumer group.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter

from aiokafka import AIOKafkaConsumer

from citywatch.codecs import decode_event
from citywatch.topics import TopicName, Topics, follow_from_end
from rules.events import Alert

WATCHED: tuple[TopicName, ...] = (
    "frames", "readings", "detections", "alerts", "notifications", "deadletter"
)


class TopicWatcher:
    def __init__(self, bootstrap_servers: str, topics: Topics, max_message_bytes: int) -> None:
        self.topics = topics
        self.counts: Counter[str] = Counter()
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap_servers, enable_auto_commit=False,
            max_partition_fetch_bytes=max_message_bytes, fetch_max_bytes=max_message_bytes * 4,
        )
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self._consumer.start()
        await follow_from_end(self._consumer, [self.topics.name(short) for short in WATCHED])
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        async for message in self._consumer:
            short = self.topics.short(message.topic)
            self.counts[short] += 1
            if short == "alerts" and message.value:
                with contextlib.suppress(ValueError):
                    alert = decode_event("alerts", message.value)
                    if isinstance(alert, Alert):
                        self.counts[f"alerts_{alert.state}"] += 1

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self._consumer.stop()
