"""The corrections to Faust's consumer (citywatch/faust_fixes.py), on a stand-in consumer:
a jump in delivered offsets is read again, not committed over, unless the topic is compacted
or reading again could not fill it; offsets are committed only after the producer flushed;
and a copy of a message that no agent will finish is released: it holds up no revoke and
nothing is committed past it. The churn tests (tests/scale) exercise them on real workers."""

from __future__ import annotations

import asyncio
import weakref
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import pytest
from faust.types.tuples import Message
from intervaltree import IntervalTree  # type: ignore[import-untyped]
from mode.utils.queues import FlowControlEvent, ThrowableQueue

from citywatch import faust_fixes

TP = ("city.readings", 3)


@dataclass
class FlowControl:
    suspended: bool = False

    def suspend(self) -> None:
        self.suspended = True

    def resume(self) -> None:
        self.suspended = False


@dataclass
class Producer:
    calls: list[str]
    fails: bool = False

    async def flush(self) -> None:
        if self.fails:
            raise ConnectionError("broker away")
        self.calls.append("flush")


@dataclass
class App:
    calls: list[str]
    rebalancing: bool = False
    flow_control: FlowControl = field(default_factory=FlowControl)
    producer: Producer = field(init=False)

    def __post_init__(self) -> None:
        self.producer = Producer(self.calls)


@dataclass
class FakeConsumer:
    calls: list[str] = field(default_factory=list)
    flow_active: bool = True
    _read_offset: dict[Any, int | None] = field(default_factory=dict)
    app: App = field(init=False)

    def __post_init__(self) -> None:
        self.app = App(self.calls)

    def stop_flow(self) -> None:
        self.flow_active = False

    def resume_flow(self) -> None:
        self.flow_active = True

    async def perform_seek(self) -> None:
        self.calls.append("seek")


class Topic(tuple[str, int]):
    @property
    def topic(self) -> str:
        return self[0]

    @property
    def partition(self) -> int:
        return self[1]


@pytest.fixture
def faust_gaps(monkeypatch: pytest.MonkeyPatch) -> list[tuple[Any, int, int]]:
    recorded: list[tuple[Any, int, int]] = []

    async def faust_add_gap(self: Any, tp: Any, offset_from: int, offset_to: int) -> None:
        recorded.append((tp, offset_from, offset_to))

    monkeypatch.setattr(faust_fixes, "_faust_add_gap", faust_add_gap)
    return recorded


async def settle() -> None:
    await asyncio.gather(*faust_fixes._rereads)


async def test_a_jump_on_a_log_is_read_again_not_committed_over(faust_gaps: list[Any]) -> None:
    add_gap = faust_fixes._gaps_only_where_compacted({"city.rules"})
    consumer, tp = FakeConsumer(), Topic(TP)
    await add_gap(consumer, tp, 97, 117)  # 97..116 never delivered; 117 is the record in hand
    assert consumer.app.flow_control.suspended and not consumer.flow_active  # 117 is held back
    consumer._read_offset[tp] = 117  # the fetcher gives it up
    await settle()
    assert consumer.calls == ["seek"] and consumer.flow_active and not consumer.app.flow_control.suspended
    assert faust_gaps == []  # nothing marked as done


async def test_a_jump_reading_again_cannot_fill_is_gone_past(faust_gaps: list[Any]) -> None:
    add_gap = faust_fixes._gaps_only_where_compacted(set())
    consumer, tp = FakeConsumer(), Topic(TP)
    await add_gap(consumer, tp, 97, 117)
    consumer._read_offset[tp] = 117
    await settle()
    await add_gap(consumer, tp, 97, 117)  # the same jump again: retention removed them
    assert faust_gaps == [(tp, 97, 117)] and consumer.calls == ["seek"]


async def test_gaps_on_a_compacted_topic_are_faust_s(faust_gaps: list[Any]) -> None:
    add_gap = faust_fixes._gaps_only_where_compacted({"city.rules"})
    consumer, tp = FakeConsumer(), Topic(("city.rules", 0))
    await add_gap(consumer, tp, 4, 9)
    assert faust_gaps == [(tp, 4, 9)] and consumer.flow_active and consumer.calls == []


async def test_a_rebalance_does_the_seek_itself(faust_gaps: list[Any]) -> None:
    add_gap = faust_fixes._gaps_only_where_compacted(set())
    consumer, tp = FakeConsumer(), Topic(TP)
    consumer.app.rebalancing = True
    await add_gap(consumer, tp, 10, 12)
    consumer._read_offset[tp] = 12
    await settle()
    assert consumer.calls == []  # the rebalance seeks to the committed offsets and resumes the flow


async def test_offsets_are_committed_only_after_the_producer_flushed(monkeypatch: pytest.MonkeyPatch) -> None:
    consumer = FakeConsumer()

    async def faust_force_commit(self: Any, *args: Any, **kwargs: Any) -> bool:
        self.calls.append("commit")
        return True

    monkeypatch.setattr(faust_fixes, "_faust_force_commit", faust_force_commit)
    assert await faust_fixes._flush_then_commit(consumer) is True
    assert consumer.calls == ["flush", "commit"]
    consumer.app.producer.fails = True
    assert await faust_fixes._flush_then_commit(consumer) is False  # no commit past unflushed state
    assert consumer.calls == ["flush", "commit"]


def message(offset: int, agents: int, consumer: Any) -> Any:
    """A delivered message, as the conductor leaves it: one reference per agent, tracked."""
    delivered = Message("city.alerts", 1, offset, 0.0, 0, None, b"k", b"v", None)
    delivered.incref(agents)
    delivered.tracked = True
    consumer._unacked_messages.add(delivered)
    return delivered


@dataclass
class CommittingConsumer:
    """What Faust's offset bookkeeping reads; `_new_offset` is Faust's own, as patched."""

    _unacked_messages: weakref.WeakSet[Any] = field(default_factory=weakref.WeakSet)
    _acked: defaultdict[Any, list[int]] = field(default_factory=lambda: defaultdict(list))
    _acked_index: defaultdict[Any, set[int]] = field(default_factory=lambda: defaultdict(set))
    _gap: defaultdict[Any, IntervalTree] = field(default_factory=lambda: defaultdict(IntervalTree))
    _committed_offset: defaultdict[Any, int | None] = field(default_factory=lambda: defaultdict(lambda: None))

    def __hash__(self) -> int:
        return id(self)

    def new_offset(self, tp: Any) -> int | None:
        result: int | None = faust_fixes._new_offset_below_released(self, tp)
        return result


def test_a_released_copy_waits_for_the_other_agents_then_frees_the_message() -> None:
    consumer = CommittingConsumer()
    held = message(5, agents=2, consumer=consumer)  # store and notify
    faust_fixes.release(consumer, held)  # store gives way
    assert held.refcount == 1 and not held.acked and held in consumer._unacked_messages  # notify still on it
    faust_fixes.release(consumer, held)  # a second copy that no agent will finish (a cleared queue)
    assert held.refcount == 0 and held.acked and held not in consumer._unacked_messages
    assert consumer._acked[held.tp] == []  # never recorded as acknowledged


def test_nothing_is_committed_past_a_released_offset_until_it_is_read_again() -> None:
    consumer = CommittingConsumer()
    held = message(5, agents=1, consumer=consumer)
    tp = held.tp
    faust_fixes.release(consumer, held)
    consumer._acked[tp] = [6, 7]  # later offsets that every agent finished (Faust's list after a revoke)
    assert consumer.new_offset(tp) == 5  # Faust alone would commit 8: offset 5 lost
    consumer._acked[tp], consumer._committed_offset[tp] = [6, 7], 5
    assert consumer.new_offset(tp) is None  # already committed up to it
    consumer._acked[tp] = [3, 4]
    consumer._committed_offset[tp] = 3
    assert consumer.new_offset(tp) == 5  # before the floor, Faust's answer


def test_the_record_at_the_committed_offset_is_waited_for() -> None:
    """Faust's commit took finished offsets starting one past the committed offset (the next
    record to read) for a run without a gap at its head, and committed past that record."""
    consumer = CommittingConsumer()
    tp = TP
    consumer._committed_offset[tp], consumer._acked[tp] = 5, [6, 7]  # 5 still with an agent
    assert consumer.new_offset(tp) is None  # Faust alone: 8
    consumer._acked[tp] = [5, 6, 7]
    assert consumer.new_offset(tp) == 8


def test_a_compaction_gap_at_the_committed_offset_is_passed() -> None:
    consumer = CommittingConsumer()
    tp = TP
    consumer._committed_offset[tp], consumer._acked[tp] = 5, [6, 7]
    consumer._gap[tp].addi(5, 6)  # offset 5 was compacted away
    assert consumer.new_offset(tp) == 8


async def test_a_seek_to_the_committed_offsets_lifts_the_floor(monkeypatch: pytest.MonkeyPatch) -> None:
    consumer = CommittingConsumer()
    held = message(5, agents=1, consumer=consumer)
    tp = held.tp
    faust_fixes.release(consumer, held)

    async def faust_perform_seek(self: Any) -> None:
        pass

    monkeypatch.setattr(faust_fixes, "_faust_perform_seek", faust_perform_seek)
    await faust_fixes._seek_forgets_released(consumer)
    consumer._acked[tp] = [5, 6, 7]  # offset 5 read again and finished
    assert consumer.new_offset(tp) == 8


@dataclass
class QueuedEvent:
    message: Any
    app: Any


@dataclass
class StreamingApp:
    consumer: Any
    flow_control: FlowControlEvent = field(
        default_factory=lambda: FlowControlEvent(initially_suspended=False))
    consumer_generation_id: int = 1


def agent_queue(app: StreamingApp, maxsize: int = 0) -> ThrowableQueue[Any]:
    return ThrowableQueue(maxsize=maxsize, flow_control=app.flow_control, clear_on_resume=True)


def finished_by_another_agent(offset: int, consumer: Any) -> Any:
    """Delivered to two agents (store and notify); notify acknowledged its copy."""
    held = message(offset, agents=2, consumer=consumer)
    held.generation_id = 1
    held.decref()
    return held


def test_clearing_an_agent_s_queue_releases_the_copies_it_drops() -> None:
    consumer = CommittingConsumer()
    app = StreamingApp(consumer)
    queue = agent_queue(app)
    held = finished_by_another_agent(3, consumer)
    queue.put_nowait(QueuedEvent(held, app))
    queue.put_nowait("a value that is not an event")
    faust_fixes._clear_releasing(queue)
    assert queue.empty()
    assert held.acked and held not in consumer._unacked_messages  # the revoke goes on
    consumer._acked[held.tp] = [4, 5]
    assert consumer.new_offset(held.tp) == 3  # and commits nothing past it


async def test_a_put_that_a_clear_cancels_releases_its_copy() -> None:
    consumer = CommittingConsumer()
    app = StreamingApp(consumer)
    queue = agent_queue(app, maxsize=1)
    queue.put_nowait("a full queue")
    held = finished_by_another_agent(3, consumer)
    waiting = asyncio.ensure_future(faust_fixes._put_releasing(queue, QueuedEvent(held, app)))
    await asyncio.sleep(0)  # waiting for room
    faust_fixes._clear_releasing(queue)
    with pytest.raises(asyncio.CancelledError):
        await waiting
    assert held.acked and held not in consumer._unacked_messages


async def test_what_a_stream_takes_while_the_flow_is_stopped_is_released() -> None:
    consumer = CommittingConsumer()
    app = StreamingApp(consumer)
    queue = agent_queue(app)
    current, stale, skipped = (finished_by_another_agent(offset, consumer) for offset in (3, 4, 5))
    stale.generation_id = 0  # from before the rebalance
    for held in (current, stale, skipped):
        queue.put_nowait(QueuedEvent(held, app))
    assert faust_fixes._get_nowait_releasing_skipped(queue).message is current
    assert not current.acked  # processed by this agent as usual
    assert (await faust_fixes._get_releasing_skipped(queue)).message is stale
    app.flow_control.suspend()
    assert faust_fixes._get_nowait_releasing_skipped(queue).message is skipped
    assert stale.acked and skipped.acked


@dataclass
class FetchingConsumer:
    """A consumer whose Faust getmany hands on one fetched batch; `seek_during` names the
    record after which a seek to the committed offsets completes (a rebalance's recovery)."""

    batch: list[int]
    seek_during: int | None = None
    flow_active: bool = True
    calls: list[str] = field(default_factory=list)
    app: App = field(init=False)

    def __post_init__(self) -> None:
        self.app = App(self.calls)

    def __hash__(self) -> int:
        return id(self)

    seeks_fail: int = 0

    async def perform_seek(self) -> None:
        self.calls.append("seek")
        if self.seeks_fail:
            self.seeks_fail -= 1
            raise ConnectionError("broker away")
        faust_fixes._seeks[self] = faust_fixes._seeks.get(self, 0) + 1
        faust_fixes._floors.pop(self, None)


@pytest.fixture
def faust_getmany(monkeypatch: pytest.MonkeyPatch) -> None:
    async def getmany(self: FetchingConsumer, timeout: float) -> Any:  # noqa: ASYNC109 (Faust's signature)
        for offset in self.batch:
            yield TP, offset
            if offset == self.seek_during:
                await self.perform_seek()

    monkeypatch.setattr(faust_fixes, "_faust_getmany", getmany)


async def handed_on(consumer: FetchingConsumer) -> list[int]:
    return [offset async for _, offset in faust_fixes._getmany_within_one_seek(consumer, 1.0)]


async def test_a_batch_fetched_before_a_seek_ends_at_it(faust_getmany: None) -> None:
    """Faust's fetch loop marks every record it hands on as read and drops what comes later
    below that mark: records of a batch fetched before a seek, handed on after it, made the
    records read again from the committed offset look read (the churn tests lost 25)."""
    consumer = FetchingConsumer(batch=[40, 41, 42, 43], seek_during=41)
    assert await handed_on(consumer) == [40, 41]
    assert consumer.calls == ["seek", "seek"]  # the recovery's, then ours: the read mark back at the commit


async def test_a_batch_without_a_seek_is_handed_on_whole(faust_getmany: None) -> None:
    consumer = FetchingConsumer(batch=[40, 41, 42])
    assert await handed_on(consumer) == [40, 41, 42]
    assert consumer.calls == []


async def test_released_copies_are_read_again_at_the_next_fetch(faust_getmany: None) -> None:
    """A rebalance's recovery clears the agents' queues after its seek: what they held was
    delivered and marked read, and was read again only at the next rebalance."""
    consumer = FetchingConsumer(batch=[44, 45])
    faust_fixes._floors[consumer] = {Topic(TP): 41}
    assert await handed_on(consumer) == [44, 45]
    assert consumer.calls == ["seek"] and consumer not in faust_fixes._floors


async def test_released_copies_wait_for_the_rebalance_s_own_seek(faust_getmany: None) -> None:
    consumer = FetchingConsumer(batch=[44])
    consumer.app.rebalancing = True
    faust_fixes._floors[consumer] = {Topic(TP): 41}
    assert await handed_on(consumer) == [44]
    assert consumer.calls == []


async def test_a_seek_that_fails_is_owed_and_nothing_is_fetched_until_it_is_done(
    faust_getmany: None, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Raised, it would stop Faust's fetch loop; fetching on would drop what it was for."""
    monkeypatch.setattr(faust_fixes, "SEEK_RETRY_S", 0.0)
    consumer = FetchingConsumer(batch=[40, 41, 42], seeks_fail=2)
    faust_fixes._floors[consumer] = {Topic(TP): 38}  # copies released: a seek back is due
    assert await handed_on(consumer) == []  # the seek failed: nothing fetched
    assert await handed_on(consumer) == []  # owed, and failed again
    assert await handed_on(consumer) == [40, 41, 42]  # done: fetching goes on
    assert consumer.calls == ["seek", "seek", "seek"] and consumer not in faust_fixes._owed
