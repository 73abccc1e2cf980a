"""Where producers send: one small interface over aiokafka (standalone) or Faust (in-worker).

Sources and agents publish through it, so the same source code runs inside a Faust
worker (laptop default) or as a separate ingest process (production).
"""

from __future__ import annotations

from typing import Protocol

from aiokafka import AIOKafkaProducer

from citywatch.deadletter import DeadLetter, Headers
from citywatch.topics import TopicName, Topics


class Publisher(Protocol):
    async def send(
        self, topic: TopicName, key: bytes, value: bytes, headers: Headers | None = None
    ) -> None: ...


async def publish_dead_letter(publisher: Publisher, letter: DeadLetter) -> None:
    await publisher.send("deadletter", letter.origin_topic.encode(), letter.raw, letter.headers())


class KafkaPublisher:
    """aiokafka producer with acks=all (no idempotent producer: Tansu lacks InitProducerId)."""

    def __init__(self, bootstrap_servers: str, topics: Topics, max_message_bytes: int) -> None:
        self.topics = topics
        self._producer = AIOKafkaProducer(
            bootstrap_servers=bootstrap_servers,
            acks="all",
            max_request_size=max_message_bytes,
            linger_ms=5,
        )

    async def start(self) -> None:
        await self._producer.start()

    async def stop(self) -> None:
        await self._producer.stop()

    async def send(
        self, topic: TopicName, key: bytes, value: bytes, headers: Headers | None = None
    ) -> None:
        await self._producer.send_and_wait(self.topics.name(topic), value=value, key=key, headers=headers)
