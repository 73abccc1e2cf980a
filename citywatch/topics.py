"""Topic names (prefix configurable) and their creation with the right partitioning."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

TopicName = Literal[
    "frames", "telemetry", "readings", "detections", "alerts", "notifications", "rules", "deadletter",
    "control", "clock", "correlate", "acks",
]
ALL_TOPICS: tuple[TopicName, ...] = (
    "frames", "telemetry", "readings", "detections", "alerts", "notifications", "rules", "deadletter",
    "control", "clock", "correlate", "acks",
)
COMPACTED: frozenset[TopicName] = frozenset({"rules"})
UNPARTITIONED: frozenset[TopicName] = frozenset({"rules"})  # read whole by every worker, no keys hashed


@dataclass(frozen=True)
class Topics:
    prefix: str = "citywatch"

    def name(self, short: TopicName) -> str:
        return f"{self.prefix}.{short}"

    def short(self, full: str) -> str:
        return full.removeprefix(f"{self.prefix}.")

    @property
    def all(self) -> list[str]:
        return [self.name(t) for t in ALL_TOPICS]


async def ensure_topics(
    bootstrap_servers: str, topics: Topics, partitions: int, replication_factor: int = 1
) -> list[str]:
    """Create the topics that do not exist yet; returns the names created now."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers, request_timeout_ms=10_000)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        wanted = [
            NewTopic(
                name=topics.name(short),
                num_partitions=partitions,
                replication_factor=replication_factor,
                topic_configs={"cleanup.policy": "compact"} if short in COMPACTED else {},
            )
            for short in ALL_TOPICS
            if topics.name(short) not in existing
        ]
        if wanted:
            # another process may create them between list and create
            with contextlib.suppress(TopicAlreadyExistsError):
                await admin.create_topics(wanted)
        await _check_partitions(admin, topics, partitions)
        return [t.name for t in wanted]
    finally:
        await admin.close()


class TopicLayoutError(RuntimeError):
    """Existing topics do not have the partition count the settings say: refuse to start."""


async def _check_partitions(admin: AIOKafkaAdminClient, topics: Topics, partitions: int) -> None:
    """Every partitioned topic must have exactly `broker.partitions`: the clock, the
    co-partitioned agents and every key-to-partition computation assume one count."""
    names = [topics.name(short) for short in ALL_TOPICS if short not in UNPARTITIONED]
    counts = {str(d["topic"]): len(d["partitions"]) for d in await admin.describe_topics(names)}
    wrong = {name: count for name, count in counts.items() if count != partitions}
    if wrong:
        listed = ", ".join(f"{name} has {count}" for name, count in sorted(wrong.items()))
        raise TopicLayoutError(
            f"broker.partitions is {partitions} but {listed} partitions. Every topic must have the "
            f"same count: set broker.partitions to the topics' count, or give the topics one count "
            f"(kafka-topics --alter --partitions N on each, then restart every worker: keys move), "
            f"or start afresh under a new broker.topic_prefix.")


async def _partitions(
    consumer: AIOKafkaConsumer, names: Sequence[str], wait_for_topics_s: float | None
) -> list[TopicPartition]:
    assigned: list[TopicPartition] = []
    for name in names:
        partitions = consumer.partitions_for_topic(name)
        while not partitions:
            await consumer._client.force_metadata_update()  # aiokafka has no public call for this
            partitions = consumer.partitions_for_topic(name)
            if partitions or wait_for_topics_s is None:
                break
            await asyncio.sleep(wait_for_topics_s)
        assigned += [TopicPartition(name, p) for p in partitions or ()]
    return assigned


async def log_ends(consumer: AIOKafkaConsumer, partitions: Sequence[TopicPartition],
                   wait_s: float = 5.0) -> dict[TopicPartition, int]:
    """Each partition's log end offset (the offset the next record will get), for a started,
    group-less consumer (it is reassigned). A broker's ListOffsets answer can run behind:
    Tansu 0.6 answers the base offset of the partition's last batch plus one, so a changelog
    whose last batch held seven records looks six records short, and whoever reads "up to
    the end" stops before them. A fetch from just before that answer returns the partition's
    high watermark, which is right on every broker; the larger of the two is taken."""
    ends = dict(await consumer.end_offsets(list(partitions))) if partitions else {}
    pending = {tp for tp, end in ends.items() if end > 0}
    if pending:
        consumer.assign(sorted(pending))
        for tp in pending:
            consumer.seek(tp, ends[tp] - 1)
        deadline = time.monotonic() + wait_s
        while pending and time.monotonic() < deadline:
            await consumer.getmany(*pending, timeout_ms=500, max_records=1)
            for tp in list(pending):
                if (high := consumer.highwater(tp)) is not None:
                    ends[tp] = max(ends[tp], high)
                    pending.discard(tp)
    return ends


async def follow_from_beginning(
    consumer: AIOKafkaConsumer, names: Sequence[str], wait_for_topics_s: float | None = None
) -> dict[TopicPartition, int]:
    """Assign every partition of `names` to a started, group-less consumer at the beginning;
    returns the end offsets as of now, so the caller knows when it has caught up."""
    assigned = await _partitions(consumer, names, wait_for_topics_s)
    consumer.assign(assigned)
    await consumer.seek_to_beginning(*assigned)
    return dict(await consumer.end_offsets(assigned)) if assigned else {}


async def follow_from_end(
    consumer: AIOKafkaConsumer, names: Sequence[str], wait_for_topics_s: float | None = None
) -> None:
    """Assign every partition of `names` to a started, group-less consumer and position it at
    the end now (not lazily on the first fetch), so it sees exactly what is produced from here.
    With `wait_for_topics_s`, a topic that does not exist yet is looked up again until it does;
    without, it is skipped."""
    assigned = await _partitions(consumer, names, wait_for_topics_s)
    consumer.assign(assigned)
    await consumer.seek_to_end(*assigned)
    for partition in assigned:
        await consumer.position(partition)
