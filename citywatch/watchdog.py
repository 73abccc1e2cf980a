"""The worker group watched from outside it: a frozen group must never go unnoticed.

Every worker can be stuck at once (a rebalance that never finishes, a bug that every worker
trips, the whole group gone), and then nothing a worker does can raise the alarm. The
console process watches the group through the broker instead: for every partition its
committed offset against the log end, and the group's state. A partition with work waiting
whose committed offset has not moved for `stalled_after_s`, a group that has not been
Stable (members rebalancing, or no member at all) for as long, or a broker that cannot be
asked, is a stalled group. The console's `/healthz/group` answers 503 then (for an external
dead-man's switch), and the watchdog's recipients get an email and an SMS sent through the
channels directly, not through the workers; they hear again when it recovers.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Iterable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Literal

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from citywatch.runtime import ConfigurationError, build_channels
from citywatch.settings import Settings
from citywatch.topics import TopicName, Topics
from notifier.channels import Channel, DeliveryError, Message
from notifier.people import Person

log = logging.getLogger(__name__)

Partition = tuple[str, int]

WATCHED: tuple[TopicName, ...] = ("frames", "readings", "telemetry", "detections", "alerts", "notifications",
                                  "clock", "correlate", "deadletter", "acks")
"""The topics the workers consume (all but the rules topic, which every worker also reads
whole outside the group)."""



@dataclass(frozen=True)
class GroupSample:
    """One look at the group: its state and, per partition, (committed offset, log end)."""

    at_s: float
    state: str
    offsets: Mapping[Partition, tuple[int, int]]


@dataclass(frozen=True)
class Verdict:
    status: Literal["ok", "stalled"]
    reasons: tuple[str, ...] = ()
    lag: int = 0
    state: str = "unknown"
    checked_at_s: float = 0.0

    def as_json(self) -> dict[str, object]:
        return {"status": self.status, "reasons": list(self.reasons), "lag": self.lag,
                "group_state": self.state, "checked_at": self.checked_at_s}


@dataclass
class ProgressJudge:
    """Whether the group makes progress, from successive samples (pure: the clock is the
    samples')."""

    stalled_after_s: float
    _committed: dict[Partition, int] = field(default_factory=dict)
    _moved_at: dict[Partition, float] = field(default_factory=dict)
    _unsettled_since: float | None = None
    _unreachable_since: float | None = None

    def judge(self, sample: GroupSample) -> Verdict:
        self._unreachable_since = None
        reasons: list[str] = []
        lag = 0
        for partition, (committed, end) in sorted(sample.offsets.items()):
            waiting = max(0, end - committed)
            lag += waiting
            if not waiting or committed > self._committed.get(partition, committed - 1):
                self._moved_at[partition] = sample.at_s
            self._committed[partition] = committed
            still_for = sample.at_s - self._moved_at[partition]
            if still_for >= self.stalled_after_s:
                reasons.append(f"{partition[0]}[{partition[1]}]: {waiting} records waiting, "
                               f"no progress for {still_for:.0f} s")
        if sample.state == "Stable":
            self._unsettled_since = None
        else:
            if self._unsettled_since is None:
                self._unsettled_since = sample.at_s
            unsettled_for = sample.at_s - self._unsettled_since
            if unsettled_for >= self.stalled_after_s:
                what = "has no worker" if sample.state in ("Empty", "Dead") else f"is {sample.state}"
                reasons.insert(0, f"the group {what} for {unsettled_for:.0f} s")
        return Verdict("stalled" if reasons else "ok", tuple(reasons), lag, sample.state, sample.at_s)

    def unreachable(self, at_s: float, error: str) -> Verdict:
        if self._unreachable_since is None:
            self._unreachable_since = at_s
        blind_for = at_s - self._unreachable_since
        if blind_for < self.stalled_after_s:
            return Verdict("ok", (f"the broker could not be asked ({error})",), checked_at_s=at_s)
        return Verdict("stalled", (f"the broker could not be asked for {blind_for:.0f} s ({error})",),
                       checked_at_s=at_s)


async def read_group(bootstrap: str, group: str, topics: Iterable[str]) -> GroupSample:
    """The group's state and committed offsets, and the log ends, as the broker has them now.
    A partition the group never committed counts from the log's start."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
    await admin.start()
    try:
        await consumer.start()  # never subscribes: it only asks the coordinator (OffsetFetch)
        try:
            [response] = await admin.describe_consumer_groups([group])
            state = str(response.groups[0][2]) if response.groups else "Dead"
            partitions = [TopicPartition(topic, p) for topic in topics
                          for p in sorted(consumer.partitions_for_topic(topic) or ())]
            ends = await consumer.end_offsets(partitions)
            starts = await consumer.beginning_offsets(partitions)
            offsets: dict[Partition, tuple[int, int]] = {}
            for tp in partitions:
                committed = await consumer.committed(tp)
                from_offset = committed if committed is not None else starts[tp]
                offsets[(tp.topic, tp.partition)] = (from_offset, ends[tp])
            return GroupSample(time.monotonic(), state, offsets)
        finally:
            await consumer.stop()
    finally:
        await admin.close()


class GroupWatchdog:
    """Looks at the group every `every_s` and tells `people` (by every channel they can be
    reached on) when it stalls and when it recovers. `verdict` is the latest look."""

    def __init__(self, bootstrap: str, topics: Topics, group: str, *, every_s: float, stalled_after_s: float,
                 channels: Mapping[str, Channel], people: Mapping[str, Person]) -> None:
        self.bootstrap, self.group = bootstrap, group
        self.watched = [topics.name(short) for short in WATCHED]
        self.every_s = every_s
        self.judge = ProgressJudge(stalled_after_s)
        self.channels, self.people = channels, people
        self.verdict = Verdict("ok", ("not checked yet",))
        self._told: str = "ok"  # what the people were last told
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="group-watchdog")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def check(self) -> Verdict:
        try:
            looking = read_group(self.bootstrap, self.group, self.watched)
            sample = await asyncio.wait_for(looking, self.every_s * 3)
        except Exception as exc:  # the broker away, or answering nonsense: both leave us blind
            self.verdict = self.judge.unreachable(time.monotonic(), f"{type(exc).__name__}: {exc}"[:300])
        else:
            self.verdict = self.judge.judge(sample)
        if self.verdict.status != self._told:
            await self._tell(self.verdict)
        return self.verdict

    async def _run(self) -> None:
        while True:
            try:
                await self.check()
            except Exception:
                log.exception("the group watchdog failed a check")
            await asyncio.sleep(self.every_s)

    async def _tell(self, verdict: Verdict) -> None:
        if verdict.status == "stalled":
            log.critical("worker group %s stalled: %s", self.group, "; ".join(verdict.reasons))
            message = Message(subject=f"[CRITICAL] CityWatch workers stalled ({self.group})",
                              text="The CityWatch worker group makes no progress: alerts may not be raised "
                                   "or sent.\n\n" + "\n".join(verdict.reasons))
        else:
            log.warning("worker group %s makes progress again", self.group)
            message = Message(subject=f"[RESOLVED] CityWatch workers recovered ({self.group})",
                              text="The CityWatch worker group makes progress again.")
        sent = not self.people  # nobody to tell: the log and /healthz/group say it
        for name, person in self.people.items():
            for channel_name, channel in self.channels.items():
                address = person.address(channel_name)
                if address is None:
                    continue
                try:
                    await channel.send(address, message)
                    sent = True
                except DeliveryError as exc:
                    log.error("the watchdog could not tell %s by %s: %s", name, channel_name, exc)
        if sent:
            self._told = verdict.status  # else tried again on the next look


@asynccontextmanager
async def watching(settings: Settings) -> AsyncIterator[GroupWatchdog | None]:
    """The watchdog for the console's lifetime (None when `watchdog.enabled` is off), with
    channels of its own: the workers' may be the ones stuck."""
    config = settings.watchdog
    if not config.enabled:
        yield None
        return
    channels: dict[str, Channel] = {}
    if config.notify:
        try:
            channels = build_channels(settings)
        except ConfigurationError as exc:
            log.error("the group watchdog cannot notify anyone: %s", exc)
    broker = settings.broker
    people = {name: settings.recipients[name] for name in config.notify}
    watchdog = GroupWatchdog(broker.bootstrap_servers, Topics(broker.topic_prefix), broker.app_id,
                             every_s=config.every_s, stalled_after_s=config.stalled_after_s,
                             channels=channels, people=people)
    watchdog.start()
    try:
        yield watchdog
    finally:
        await watchdog.stop()
        for channel in channels.values():
            close = getattr(channel, "close", None)
            if close is not None:
                await close()
