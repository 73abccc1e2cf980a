"""Topics, publisher and watcher against the real Tansu broker."""

import asyncio
import dataclasses
from uuid import uuid4

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from citywatch.deadletter import DeadLetter
from citywatch.publisher import KafkaPublisher, publish_dead_letter
from citywatch.topics import ALL_TOPICS, TopicLayoutError, Topics, ensure_topics, log_ends
from citywatch.watch import TopicWatcher

pytestmark = pytest.mark.integration

async def test_topics_publish_watch_and_dead_letters(bootstrap: str) -> None:
    topics = Topics(f"t{uuid4().hex[:8]}")
    created = await ensure_topics(bootstrap, topics, partitions=3)
    assert sorted(created) == sorted(topics.name(t) for t in ALL_TOPICS)
    assert await ensure_topics(bootstrap, topics, partitions=3) == []
    with pytest.raises(TopicLayoutError, match=r"broker\.partitions is 4 but .* has 3"):
        await ensure_topics(bootstrap, topics, partitions=4)  # settings and topics disagree: refused

    publisher = KafkaPublisher(bootstrap, topics, max_message_bytes=1 << 20)
    await publisher.start()
    await publisher.send("readings", b"old", b"before the watcher")
    watcher = TopicWatcher(bootstrap, topics, max_message_bytes=1 << 20)
    await watcher.start()
    try:
        for i in range(5):
            await publisher.send("frames", b"cam-1", bytes(100_000) + bytes([i]))
        letter = DeadLetter(origin_topic=topics.name("readings"), reason="bad time", raw=b"x,y",
                            consumer="test", source_id="aq-1")
        await publish_dead_letter(publisher, letter)
        consumer = AIOKafkaConsumer(topics.name("deadletter"), bootstrap_servers=bootstrap,
                                    auto_offset_reset="earliest")
        await consumer.start()
        try:
            message = await consumer.getone()
        finally:
            await consumer.stop()
        received = DeadLetter.from_message(message.value or b"", list(message.headers))
        assert received.rejected_at is not None  # stamped when it was sent
        assert dataclasses.replace(received, rejected_at=None) == letter
        assert message.key == topics.name("readings").encode()
        for _ in range(50):
            if watcher.counts["frames"] == 5 and watcher.counts["deadletter"] == 1:
                break
            await asyncio.sleep(0.1)
        assert watcher.counts["frames"] == 5 and watcher.counts["deadletter"] == 1
        assert watcher.counts["readings"] == 0  # produced before it started watching
    finally:
        await watcher.stop()
        await publisher.stop()


async def test_log_ends_count_the_records_of_the_last_batch(bootstrap: str) -> None:
    """Tansu answers ListOffsets with the last batch's base offset + 1; a table recovery that
    trusted it stopped before the rest of that batch (faust_fixes correction 5)."""
    topic = f"t{uuid4().hex[:8]}-ends"
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=50)
    await producer.start()
    try:
        for size in (1, 5, 7):  # one batch each: the sends are queued before any is awaited
            sent = [await producer.send(topic, b"v", key=b"k", partition=0) for _ in range(size)]
            last = (await sent[-1]).offset
    finally:
        await producer.stop()
    tp = TopicPartition(topic, 0)
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        assert last == 12
        assert (await log_ends(consumer, [tp]))[tp] == 13
        assert await log_ends(consumer, []) == {}
    finally:
        await consumer.stop()
