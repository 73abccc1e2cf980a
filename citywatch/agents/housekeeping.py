"""What keeps a worker's world current: the rules topic followed, rule files published, the
clock ticking, rule versions archived, old chunks dropped, and the in-worker sources run.

Timers and tasks never end on an error: each logs it and runs again on its next turn.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from datetime import UTC, datetime
from functools import partial
from typing import Any

from citywatch import metrics
from citywatch.agents.context import AgentContext
from citywatch.agents.policy import GaveWay, PermanentFailure, until_done
from citywatch.agents.progress import fetched_offset, log_end
from citywatch.clock import encode_tick
from citywatch.sources import SourceCounters, run_sources
from rules.library import (
    FolderSeed,
    RuleFileVersion,
    RulesMessageError,
    RulesTopicMessage,
    decode_rules_message,
)
from storage.retention import apply_retention, prune_files
from storage.rules_archive import record_rule_version, record_silence_change

log = logging.getLogger(__name__)

ARCHIVE = "archive-rules"
ARCHIVE_BATCH = 100
ARCHIVE_WITHIN_S = 0.5


def owned_partitions(assignment: Iterable[Any], topic: str) -> list[int]:
    """The partitions of `topic` in a consumer's assignment (Faust TPs), in order."""
    return sorted({tp.partition for tp in assignment if tp.topic == topic})


def register(ctx: AgentContext) -> None:
    app, settings, runtime = ctx.app, ctx.settings, ctx.runtime
    clock = ctx.topic("clock")
    clock_name = ctx.topics.name("clock")

    def leads() -> bool:
        """Cluster-wide jobs (publishing the rule folder, retention) run in one worker: the one
        that owns clock partition 0, whoever that is after the last rebalance."""
        return 0 in owned_partitions(app.consumer.assignment(), clock_name)

    rulebook = runtime.use_rulebook(ctx.publisher, leads)
    broker = settings.broker

    async def follow_rules() -> None:
        """Until the worker stops: a lost broker connection is retried, never given up."""
        delay = 1.0
        while True:
            try:
                await rulebook.follow(broker.bootstrap_servers, ctx.topics)
            except Exception:
                log.exception("following the rules topic failed; retrying in %.0f s", delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30.0)

    app.task(follow_rules)

    async def publish_rule_folder() -> None:
        """Hot reload: changed rule files go to the rules topic; broken ones are refused."""
        try:
            await rulebook.publish_folder()
        except Exception:
            log.exception("publishing the rule folder failed; the previous rules keep running")

    app.timer(settings.rules.reload_every_s)(publish_rule_folder)

    async def tick() -> None:
        """Time passes for the clock partitions this worker consumes (see citywatch.clock), so
        each partition gets one tick per interval however many workers run; while a
        rebalance moves them, a partition may miss one tick or get two, which is harmless."""
        now = encode_tick(datetime.now(UTC))
        try:
            for partition in owned_partitions(app.consumer.assignment(), clock_name):
                await clock.send(key=b"tick", value=now, partition=partition)
        except Exception:
            log.exception("sending clock ticks failed")

    app.timer(settings.rules.tick_every_s)(tick)

    exported: set[tuple[str, int]] = set()

    async def export_lag() -> None:
        """Consumer lag per assigned topic partition (log end minus what was fetched), so a
        stuck agent shows as a growing number, not as silence."""
        try:
            now_assigned = set()
            for tp in app.consumer.assignment():
                end = log_end(app.consumer, tp.topic, tp.partition)
                if end is None:
                    continue
                at = fetched_offset(app.consumer, tp.topic, tp.partition)
                lag = max(0, end - (at + 1 if at is not None else end))
                metrics.CONSUMER_LAG.labels(tp.topic, str(tp.partition)).set(lag)
                now_assigned.add((tp.topic, tp.partition))
            for topic, partition in exported - now_assigned:  # moved to another worker
                metrics.CONSUMER_LAG.remove(topic, str(partition))
            exported.clear()
            exported.update(now_assigned)
        except Exception:
            log.exception("exporting consumer lag failed")

    app.timer(5.0)(export_lag)

    async def archive(message: RulesTopicMessage) -> None:
        if isinstance(message, FolderSeed):
            return  # bookkeeping of the folder, not a version
        pool = await runtime.pool()
        if isinstance(message, RuleFileVersion):
            await record_rule_version(pool, message)
        else:
            await record_silence_change(pool, message)

    @app.agent(ctx.topic("rules"), name=ARCHIVE)
    async def archive_rules(stream: Any) -> None:
        """Every rule file version and silence change, kept in TimescaleDB (who, when, diff)."""
        # Acknowledged by hand: a rebalance or a stop while the database is away gives way
        # (GaveWay), and what is not archived yet is left to the partition's next owner.
        async for events in stream.noack_take(ARCHIVE_BATCH, within=ARCHIVE_WITHIN_S):
            for done, event in enumerate(events):
                try:
                    message = decode_rules_message(event.value or b"")
                    await until_done(partial(archive, message), ARCHIVE, "archiving", give_way=ctx.giving_way)
                except (RulesMessageError, PermanentFailure) as exc:
                    await ctx.dead_letter(event, str(exc), ARCHIVE)
                except GaveWay as reason:
                    ctx.release(events[done:], ARCHIVE, reason)
                    break
                await stream.ack(event)

    async def retention() -> None:
        """Old chunks go (drop_chunks on the Apache edition); old snapshot files with them.
        One worker does it for the cluster (snapshot folders are per host: see docs/storage.md)."""
        if not leads():
            return
        try:
            pool = await runtime.pool()
            async with pool.acquire() as connection:
                dropped = await apply_retention(connection, settings.storage.retention)
            removed = await asyncio.to_thread(prune_files, settings.snapshot_folder,
                                              settings.storage.retention["detections"])
            if any(dropped.values()) or removed:
                log.info("retention: dropped chunks %s, removed %d snapshot files", dropped, removed)
        except Exception:
            log.exception("the retention job failed; it runs again later")

    app.timer(settings.storage.retention_every_s)(retention)

    async def sources() -> None:
        # What a source sends before the producer runs is refused (NotReady). Faust offers no
        # event for it (the worker takes app.on_startup_finished for itself), so poll.
        while not app.producer.started:  # noqa: ASYNC110
            await asyncio.sleep(0.1)
        try:
            await run_sources(settings, ctx.publisher, SourceCounters())
        except Exception:
            log.exception("sources stopped")

    if settings.worker.run_sources:
        app.task(sources)
