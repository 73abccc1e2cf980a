"""store: readings, detections, alerts, notifications, telemetry and acks → TimescaleDB.

A database that is down is waited out: the agent stops consuming (back-pressure), loses
nothing and dead-letters nothing, then catches up. A message the database can never hold
(a value out of range for its column, a NUL in text) is found by splitting the batch and
dead-lettered alone; every other row of the batch is stored. A rebalance or a stop while
the database is away does not wait for it: the batch is left to the partition's next owner.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from citywatch import metrics
from citywatch.agents.context import AgentContext
from citywatch.agents.policy import GaveWay, isolating
from citywatch.codecs import decode_event
from citywatch.topics import TopicName
from ingest.events import Event, EventFormatError

NAME = "store"
STORED: tuple[TopicName, ...] = ("readings", "detections", "alerts", "notifications", "telemetry", "acks")


def register(ctx: AgentContext) -> None:
    storage = ctx.settings.storage

    async def write(items: Sequence[tuple[Any, Event]]) -> None:
        writer = await ctx.runtime.writer()
        metrics.ROWS_STORED.inc(await writer.write([event for _, event in items]))

    async def reject(item: tuple[Any, Event], reason: str) -> None:
        await ctx.dead_letter(item[0], reason, NAME)

    @ctx.app.agent(ctx.topic(*STORED), name=NAME)
    async def store(stream: Any) -> None:
        # noack_take, acknowledged by hand once the batch is stored: Faust's take_events
        # acknowledges its batch in a `finally`, so a worker stopped mid-write (SIGTERM, a
        # rebalance) committed rows it never wrote.
        async for events in stream.noack_take(storage.batch_size, within=storage.batch_window_s):
            metrics.MESSAGES.labels(NAME).inc(len(events))
            decoded: list[tuple[Any, Event]] = []
            for event in events:
                try:
                    decoded.append((event, decode_event(ctx.short(event), event.value or b"")))
                except EventFormatError as exc:
                    await ctx.dead_letter(event, str(exc), NAME)
            try:
                await isolating(decoded, write, reject, NAME, "storing", give_way=ctx.giving_way)
            except GaveWay as reason:  # a rebalance or a stop while the database is away
                ctx.release(events, NAME, reason)
                continue
            for event in events:  # stored or dead-lettered, each one
                await stream.ack(event)
