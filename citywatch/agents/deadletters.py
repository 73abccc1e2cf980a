"""store-deadletters: the dead-letter topic → TimescaleDB, so rejections are visible in the
console and `citywatch deadletter`, and requeueable once their cause is fixed.

A dead letter the database cannot hold is logged and left on the topic (dead-lettering a
dead letter would loop); a database outage is waited out like the store agent's.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from citywatch import metrics
from citywatch.agents.context import AgentContext
from citywatch.agents.policy import GaveWay, isolating
from citywatch.deadletter import DeadLetter
from storage.dead_letters import DeadLetterRow, store_dead_letters

log = logging.getLogger(__name__)

NAME = "store-deadletters"


def row_of(letter: DeadLetter) -> DeadLetterRow:
    return DeadLetterRow(
        rejected_at=letter.rejected_at or datetime.now(UTC), origin_topic=letter.origin_topic,
        consumer=letter.consumer, reason=letter.reason, payload=letter.raw,
        origin_partition=letter.origin_partition, origin_offset=letter.origin_offset,
        source_id=letter.source_id)


def register(ctx: AgentContext) -> None:
    storage = ctx.settings.storage

    async def write(rows: Sequence[DeadLetterRow]) -> None:
        pool = await ctx.runtime.pool()
        await store_dead_letters(pool, list(rows))

    async def unstorable(row: DeadLetterRow, reason: str) -> None:
        log.error("a dead letter from %s (%s) cannot be stored and stays on the topic only: %s",
                  row.consumer, row.origin_topic, reason)

    @ctx.app.agent(ctx.topic("deadletter"), name=NAME)
    async def store_deadletters(stream: Any) -> None:
        # Acknowledged by hand after the batch (see store.py: take_events acks on cancellation).
        async for events in stream.noack_take(storage.batch_size, within=storage.batch_window_s):
            metrics.MESSAGES.labels(NAME).inc(len(events))
            rows = [row_of(DeadLetter.from_message(e.value or b"", list(dict(e.headers or {}).items())))
                    for e in events]
            try:
                await isolating(rows, write, unstorable, NAME, "storing dead letters",
                                give_way=ctx.giving_way)
            except GaveWay as reason:  # see store.py
                ctx.release(events, NAME, reason)
                continue
            for event in events:
                await stream.ack(event)
