"""Three corrections to faust-streaming 0.15.3, applied by build_app.

1. Never-committed partitions are read from their beginning.

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

2. No gap is committed over on a topic that is not compacted. Faust takes any jump in the
offsets it delivers for a gap left by log compaction, and marks the missing offsets (and,
off by one, the record that follows them) as done, so the next commit moves past them.
On a topic that is not compacted offsets have no gaps: a jump means records fetched and
never delivered, and committing past them loses them for good (a rolling restart lost 4
alert notifications this way: stored, never claimed, never sent). Here such a jump is
logged, the record after it is held back, and every partition is read again from its
committed offset (which is still before the missing records): delivered twice, never lost.

3. State before offsets: the producer is flushed before every offset commit. Faust commits
on its interval, and on a revoke, before it flushes the producer, so the offsets of
messages whose table writes were still buffered reached the broker first; the partition's
next owner then recovered a table without those writes and started after the messages that
made them, deciding again from older state (an alert resolved twice, at two event times,
after a rolling restart).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Collection, Mapping
from typing import Any

from faust.transport.consumer import Consumer
from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread

from citywatch.agents.progress import fetched_offset

log = logging.getLogger(__name__)


async def _seek_to_committed_or_beginning(self: Any) -> Mapping[Any, int]:
    consumer = self._ensure_consumer()
    committed: Mapping[Any, int] = await self.call_thread(consumer.seek_to_committed)
    never = [tp for tp, offset in committed.items() if offset is None or offset <= 0]
    if never:
        await self.call_thread(consumer.seek_to_beginning, *never)
    return committed


_faust_add_gap = Consumer._add_gap
_rereads: set[asyncio.Future[None]] = set()


def _gaps_only_where_compacted(compacted: Collection[str]) -> Any:
    read_again_from: dict[Any, int] = {}  # per partition: the jump already read again once

    async def add_gap(self: Any, tp: Any, offset_from: int, offset_to: int) -> None:
        if tp.topic in compacted:
            await _faust_add_gap(self, tp, offset_from, offset_to)
            return
        if read_again_from.get(tp) == offset_from:  # reading again did not fill it: no such records
            log.error("%s[%d]: offsets %d to %d are not in the log (removed by retention?); going on after "
                      "them", tp.topic, tp.partition, offset_from, offset_to - 1)
            await _faust_add_gap(self, tp, offset_from, offset_to)
            return
        read_again_from[tp] = offset_from
        log.warning("%s[%d]: offsets %d to %d were fetched but not delivered; reading again from the "
                    "committed offsets", tp.topic, tp.partition, offset_from, offset_to - 1)
        # Hold the record after the hole (its delivery waits on the flow control and is cancelled
        # when the fetcher sees the flow stopped), then seek back and let the flow go again.
        self.app.flow_control.suspend()
        self.stop_flow()
        _rereads.add(task := asyncio.ensure_future(_read_again(self, tp, offset_to)))
        task.add_done_callback(_rereads.discard)

    return add_gap


HELD_RECORD_WAIT_S = 5.0


async def _read_again(consumer: Any, tp: Any, held: int) -> None:
    """Once the fetcher has given up the held record (it then marks it read, which the seek
    must come after), seek every partition back to its committed offset."""
    loop = asyncio.get_running_loop()
    until = loop.time() + HELD_RECORD_WAIT_S
    while fetched_offset(consumer, tp.topic, tp.partition) != held and loop.time() < until:  # noqa: ASYNC110
        await asyncio.sleep(0.01)
    app = consumer.app
    if app.rebalancing:
        return  # the rebalance seeks every partition to its committed offset and resumes the flow
    try:
        await consumer.perform_seek()
    finally:
        app.flow_control.resume()
        consumer.resume_flow()


_faust_force_commit = Consumer.force_commit


async def _flush_then_commit(self: Any, *args: Any, **kwargs: Any) -> bool:
    try:
        await self.app.producer.flush()
    except Exception as exc:  # the state did not land: committing now would skip it
        log.warning("not committing offsets: the producer could not flush (%s: %s)", type(exc).__name__, exc)
        return False
    result: bool = await _faust_force_commit(self, *args, **kwargs)
    return result


def apply(compacted_topics: Collection[str]) -> None:
    """`compacted_topics`: the topics whose offsets may have gaps (log compaction)."""
    AIOKafkaConsumerThread.seek_to_committed = _seek_to_committed_or_beginning  # type: ignore[method-assign]
    Consumer._add_gap = _gaps_only_where_compacted(frozenset(compacted_topics))  # type: ignore[method-assign]
    Consumer.force_commit = _flush_then_commit  # type: ignore[method-assign]
