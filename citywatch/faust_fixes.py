"""One correction to faust-streaming 0.15.3, applied by build_app.

A partition the group never committed (a new topic, or a worker that died within the
commit interval) must be read from its beginning (`consumer_auto_offset_reset="earliest"`).
Faust's recovery resumes fetching while it reads the changelogs, so records of such a
partition are fetched, and some delivered, before its "seek stream partitions to committed
offsets"; aiokafka's seek_to_committed leaves a partition without a committed offset where
its fetch position already is, and the records fetched but not delivered were never seen
by the agents: a restarted worker evaluated one reading of a sensor and none after
(test_rules_live failed about 1 run in 10 this way). Here the seek puts such partitions
back at their beginning; what was delivered twice is recognised downstream (offsets in
the rule state, idempotent sinks).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread


async def _seek_to_committed_or_beginning(self: Any) -> Mapping[Any, int]:
    consumer = self._ensure_consumer()
    committed: Mapping[Any, int] = await self.call_thread(consumer.seek_to_committed)
    never = [tp for tp, offset in committed.items() if offset is None or offset <= 0]
    if never:
        await self.call_thread(consumer.seek_to_beginning, *never)
    return committed


def apply() -> None:
    AIOKafkaConsumerThread.seek_to_committed = _seek_to_committed_or_beginning  # type: ignore[method-assign]
