"""How far the evaluate agent has read its inputs: what the absence clock needs to be lag-aware.

Silence is inferred from what has arrived. A worker that is behind on a partition has not
seen what arrived there lately, so for that partition the clock stands at the arrival time
of the last record it processed (rules.timekeeping.absence_clock), and no sensor is called
silent because the worker itself is slow.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiokafka import TopicPartition

US = 1_000_000

Highwater = Callable[[str, int], int | None]
"""The log end offset of a topic partition as the consumer last fetched it (None: unknown)."""
Fetched = Callable[[str, int], int | None]
"""The offset of the last record the consumer fetched on a topic partition (None: none yet)."""


def fetched_offset(consumer: Any, topic: str, partition: int) -> int | None:
    """The offset of the last record a Faust consumer fetched on a topic partition: Faust
    keeps it per partition (reset on assignment) but has no public call for it."""
    read = getattr(consumer, "_read_offset", {})
    at = read.get(TopicPartition(topic, partition)) if hasattr(read, "get") else None
    return int(at) if at is not None else None


def log_end(consumer: Any, topic: str, partition: int) -> int | None:
    """The log end offset of a topic partition as the consumer last fetched it."""
    end = consumer.highwater(TopicPartition(topic, partition))
    return int(end) if end is not None else None


@dataclass
class InputProgress:
    """Per input topic partition: the offset and arrival time (µs) of the last record processed."""

    topics: tuple[str, ...]
    done: dict[tuple[str, int], tuple[int, int]] = field(default_factory=dict)

    def processed(self, topic: str, partition: int, offset: int, timestamp_s: float) -> None:
        if topic in self.topics:
            self.done[(topic, partition)] = (offset, int(timestamp_s * US))

    def forget(self) -> None:
        """Partitions moved (a rebalance): what was read of them is another worker's now."""
        self.done.clear()

    def behind(self, partition: int, highwater: Highwater, fetched: Fetched) -> list[int | None]:
        """For each input topic lagging on `partition`: the arrival time of its last processed
        record, or None when records were fetched but none processed yet. Nothing fetched
        and nothing processed since the assignment: nothing new in the log, not lagging.
        Synchronous on purpose: a tick never waits on the consumer (a rebalance may be on)."""
        lagging: list[int | None] = []
        for topic in self.topics:
            end = highwater(topic, partition)
            if not end:
                continue  # empty, or not fetched yet
            done = self.done.get((topic, partition))
            if done is not None:
                if done[0] + 1 < end:
                    lagging.append(done[1])
            elif fetched(topic, partition) is not None:
                lagging.append(None)
        return lagging
