"""The corrections to Faust's consumer (citywatch/faust_fixes.py), on a stand-in consumer:
a jump in delivered offsets is read again, not committed over, unless the topic is compacted
or reading again could not fill it; and offsets are committed only after the producer
flushed. The churn tests (tests/scale) exercise them on real workers."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

import pytest

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
