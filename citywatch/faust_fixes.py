"""Six corrections to faust-streaming 0.15.3, applied by build_app.

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

4. A message an agent will never acknowledge holds back the commit, not the revoke. Faust
counts one reference per agent that a message is delivered to, and a revoke (or a stop)
waits until every delivered message has none left. A copy that no agent will finish
leaves a reference for ever: Faust's revoke clears the agents' queues (and cancels the
puts waiting for room in them) without counting the copies it drops, its streams skip
what they take while the flow is stopped without counting it either, and an agent that
gives way (agents/policy.py GaveWay) leaves its batch. Once another agent had finished the
same message (notify took an alert while store, behind it, still had it queued), the
revoke or the stop waited for ever: the worker never rejoined its group, or did not stop
(test_rebalance_during_outage, about 1 run in 4). Here such a copy is released:
its reference is dropped without acknowledging it, and the commit stays below the lowest
released offset of its partition until that partition is read again from its committed
offset, so what it held is read again by the next owner, never committed over.

5. Table recovery reads to the real end of each changelog. Faust reads a changelog until
the offset the broker's ListOffsets gives, and that answer can run behind: the local broker
(Tansu 0.6) answers the base offset of the partition's last batch plus one. Faust then ended
its recovery before the rest of that batch, and applied those records later, whenever its
buffer next filled or the next recovery flushed it: a worker that took over a partition
decided from state without the last writes of its previous owner (the same alert resolved
twice, at two event times), and the late flush could put older values over newer ones.
Here the highwaters come from a fetch (topics.log_ends), whose high watermark is right.

6. Nothing fetched before a seek is delivered after it, and released copies are read again
at once. Faust's fetch loop (Consumer._drain_messages) marks each record it hands on as
read, and drops any later record of the partition below that mark. A rebalance's recovery
resumes the fetch before it seeks the streams back to their committed offsets, and clears
the agents' queues after the seek: records fetched in that window were delivered, cleared
from the queues (released, correction 4), and, when the rest of their batch was handed on
after the seek, marked read past the committed offset, so reading again from it dropped
them. The churn tests lost whole ranges this way (25 readings never stored; 6 alert
transitions stored but never notified: store had taken its copies before the clear, notify
had not), and the floor of correction 4 only held the commit until the next seek. Here a
batch fetched before a seek ends at the seek, and the partitions are read again from their
committed offsets after it; and a fetch that finds released copies while the flow runs
first seeks back to the committed offsets, so what was released is read again now, not at
the next rebalance. Delivered twice, never dropped: the sinks are idempotent. Faust's
commit also passed an unfinished record at the committed offset itself (its check for a
gap at the head of the finished offsets was off by one); here it waits for it.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections.abc import Collection, Mapping
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from faust.transport.consumer import Consumer
from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread
from faust.types.tuples import ack_lock
from mode.utils.queues import ThrowableQueue

from citywatch.agents.progress import fetched_offset
from citywatch.topics import log_ends

log = logging.getLogger(__name__)


async def _seek_to_committed_or_beginning(self: Any) -> Mapping[Any, int]:
    consumer = self._ensure_consumer()
    committed: Mapping[Any, int] = await self.call_thread(consumer.seek_to_committed)
    never = [tp for tp, offset in committed.items() if offset is None or offset <= 0]
    if never:
        await self.call_thread(consumer.seek_to_beginning, *never)
    log.info("reading from the committed offsets: %s", ", ".join(
        f"{tp.topic}[{tp.partition}]={offset}" for tp, offset in sorted(committed.items())
        if offset is not None and offset > 0) or "none committed")
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
        app.flow_control.resume()  # clears the agents' queues: what they held is read again after the seek
        _floors.pop(consumer, None)
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


_floors: weakref.WeakKeyDictionary[Any, dict[Any, int]] = weakref.WeakKeyDictionary()
"""Per consumer and partition: the lowest offset released since the partition was last
read from its committed offset. Nothing at or after it is committed."""


def release(consumer: Any, message: Any) -> None:
    """One agent's copy of `message` will never be acknowledged: drop its reference without
    acknowledging, and keep the commit of its partition below it."""
    with ack_lock:
        if message.acked:
            return
        floors = _floors.setdefault(consumer, {})
        tp = message.tp
        floors[tp] = min(floors.get(tp, message.offset), message.offset)
        if message.decref() == 0:  # no other agent still holds it
            message.acked = True  # done with, never recorded as acknowledged: no commit past it
            consumer._unacked_messages.discard(message)


_faust_new_offset = Consumer._new_offset


def _new_offset_below_released(self: Any, tp: Any) -> int | None:
    committed = self._committed_offset[tp]
    acked = self._acked[tp]
    if committed is not None and acked and min(acked) > committed and not self._gap[tp].overlaps(committed):
        return None  # the record at the committed offset (the next to read) is not finished
    offset: int | None = _faust_new_offset(self, tp)
    floor = _floors.get(self, {}).get(tp)
    if offset is None or floor is None or offset <= floor:
        return offset
    return floor if committed is None or floor > committed else None


_faust_perform_seek = Consumer.perform_seek


_seeks: weakref.WeakKeyDictionary[Any, int] = weakref.WeakKeyDictionary()
"""Per consumer: how many seeks to the committed offsets have completed."""


async def _seek_forgets_released(self: Any) -> None:
    await _faust_perform_seek(self)
    _floors.pop(self, None)  # every partition is read again from its committed offset
    _seeks[self] = _seeks.get(self, 0) + 1


_faust_getmany = Consumer.getmany


_owed: weakref.WeakSet[Any] = weakref.WeakSet()
"""Consumers whose seek back to the committed offsets failed: they fetch nothing until it is done."""
SEEK_RETRY_S = 1.0


async def _seek_back(consumer: Any) -> bool:
    """Seek to the committed offsets; a failure (the broker away) is owed, not raised: raised,
    it would stop Faust's fetch loop, and fetching on would drop what the seek was for."""
    try:
        await consumer.perform_seek()
    except Exception as exc:
        _owed.add(consumer)
        log.warning("could not seek back to the committed offsets (%s: %s); fetching waits for it",
                    type(exc).__name__, exc)
        return False
    _owed.discard(consumer)
    return True


async def _getmany_within_one_seek(self: Any, timeout: float) -> Any:  # noqa: ASYNC109 (Faust's signature)
    """Faust's getmany (one fetched batch), ended at a seek (see correction 6)."""
    released = bool(_floors.get(self)) and self.flow_active and not self.app.rebalancing
    if released:
        log.info("reading again from the committed offsets: copies of %s were released",
                 ", ".join(f"{tp.topic}[{tp.partition}]" for tp in sorted(_floors[self])))
    if (released or self in _owed) and not await _seek_back(self):
        await asyncio.sleep(SEEK_RETRY_S)
        return
    fetched_after = _seeks.get(self, 0)
    async for tp, message in _faust_getmany(self, timeout):
        if _seeks.get(self, 0) != fetched_after:  # a seek came while this batch was fetched
            await _seek_back(self)
            return
        yield tp, message
        if _seeks.get(self, 0) != fetched_after:  # ... or while this record was handed on
            await _seek_back(self)
            return


def _delivered(item: Any) -> tuple[Any, Any] | None:
    """The message and app of an event in an agent's queue; None for anything else."""
    message, app = getattr(item, "message", None), getattr(item, "app", None)
    if message is None or app is None or not hasattr(message, "refcount"):
        return None
    return message, app


def _release_copy(item: Any) -> None:
    """`item`, taken from or meant for an agent's queue, will never be processed by it."""
    delivered = _delivered(item)
    if delivered is not None:
        message, app = delivered
        release(app.consumer, message)


def _release_if_skipped(item: Any) -> Any:
    """Faust's stream skips an event taken while the flow is stopped or from an older
    generation (faust/_cython/streams.pyx _prepare_event), without dropping its reference:
    release it. Returns `item`."""
    delivered = _delivered(item)
    if delivered is not None:
        message, app = delivered
        if not app.flow_control.is_active() or message.generation_id != app.consumer_generation_id:
            release(app.consumer, message)
    return item


_mode_clear = ThrowableQueue.clear
_mode_put = ThrowableQueue.put
_mode_get = ThrowableQueue.get
_mode_get_nowait = ThrowableQueue.get_nowait


def _clear_releasing(self: Any) -> None:
    dropped = list(self._queue)
    _mode_clear(self)  # also cancels the puts waiting for room: _put_releasing releases theirs
    for item in dropped:
        _release_copy(item)


async def _put_releasing(self: Any, item: Any) -> None:
    try:
        await _mode_put(self, item)
    except asyncio.CancelledError:
        _release_copy(item)
        raise


async def _get_releasing_skipped(self: Any) -> Any:
    return _release_if_skipped(await _mode_get(self))


def _get_nowait_releasing_skipped(self: Any) -> Any:
    return _release_if_skipped(_mode_get_nowait(self))


async def _highwaters_from_a_fetch(self: Any, partitions: list[Any]) -> Mapping[Any, int]:
    consumer = self._ensure_consumer()
    if self.consumer.in_transaction:
        return {tp: consumer.last_stable_offset(tp) for tp in partitions}
    probe = AIOKafkaConsumer(bootstrap_servers=consumer._client._bootstrap_servers, enable_auto_commit=False)
    await probe.start()
    try:
        ends = await log_ends(probe, [TopicPartition(tp.topic, tp.partition) for tp in partitions])
    finally:
        await probe.stop()
    return {tp: ends[TopicPartition(tp.topic, tp.partition)] for tp in partitions}


def apply(compacted_topics: Collection[str]) -> None:
    """`compacted_topics`: the topics whose offsets may have gaps (log compaction)."""
    AIOKafkaConsumerThread.seek_to_committed = _seek_to_committed_or_beginning  # type: ignore[method-assign]
    Consumer._add_gap = _gaps_only_where_compacted(frozenset(compacted_topics))  # type: ignore[method-assign]
    Consumer.force_commit = _flush_then_commit  # type: ignore[method-assign]
    Consumer._new_offset = _new_offset_below_released  # type: ignore[method-assign]
    Consumer.perform_seek = _seek_forgets_released  # type: ignore[method-assign]
    Consumer.getmany = _getmany_within_one_seek  # type: ignore[method-assign]
    ThrowableQueue.clear = _clear_releasing  # type: ignore[method-assign]
    ThrowableQueue.put = _put_releasing  # type: ignore[method-assign,assignment]
    ThrowableQueue.get = _get_releasing_skipped  # type: ignore[method-assign]
    ThrowableQueue.get_nowait = _get_nowait_releasing_skipped  # type: ignore[method-assign]
    AIOKafkaConsumerThread._highwaters = _highwaters_from_a_fetch  # type: ignore[method-assign]
