"""Reading what landed on a topic, for integration tests."""

from __future__ import annotations

from aiokafka import AIOKafkaConsumer
from aiokafka.structs import ConsumerRecord

from citywatch.deadletter import DeadLetter
from citywatch.topics import Topics


async def drain_records(bootstrap: str, topic: str) -> list[ConsumerRecord[bytes, bytes]]:
    """Everything on `topic` from the beginning (whatever one 3 s fetch returns)."""
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest",
                                max_partition_fetch_bytes=4 << 20)
    await consumer.start()
    try:
        batches = await consumer.getmany(timeout_ms=3000)
        return [m for messages in batches.values() for m in messages]
    finally:
        await consumer.stop()


async def drain(bootstrap: str, topic: str) -> list[bytes]:
    return [m.value or b"" for m in await drain_records(bootstrap, topic)]


async def dead_letters(bootstrap: str, topics: Topics) -> list[DeadLetter]:
    records = await drain_records(bootstrap, topics.name("deadletter"))
    return [DeadLetter.from_message(m.value or b"", list(m.headers)) for m in records]
