"""evaluate and correlate: events and clock ticks → the rule engine → alerts.

evaluate reads what sources and models produce, keyed by source, so a source's rule state
lives on one partition. Rules that join sources by distance get their events forwarded to
the correlate topic keyed by rule, so one partition sees every source such a rule needs.

Data decides in its own event time. The record's timestamp (when it entered Kafka) is the
arrival time absence measures silence by, and a clock tick moves absence only as far as the
agent has read its inputs (see progress.py). An event too late to be evaluated is marked:
a `late` data-quality report beside it, and citywatch_late_events_total.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from functools import partial
from typing import Any

from citywatch import metrics
from citywatch.agents.context import AgentContext
from citywatch.agents.progress import InputProgress, fetched_offset, log_end
from citywatch.clock import decode_tick, owner_of
from citywatch.codecs import decode_event
from citywatch.topics import TopicName
from rules.engine import RuleEngine, Scope, from_us, source_kind, to_us
from rules.events import Alert, ResolveRequest
from rules.timekeeping import absence_clock, late_mark

log = logging.getLogger(__name__)

EVALUATED: tuple[TopicName, ...] = ("detections", "readings", "telemetry", "clock")
DATA_INPUTS: tuple[TopicName, ...] = ("detections", "readings", "telemetry")
RESCAN_EVERY_TICKS = 60  # absence keys recovered into the table behind the engine's back are found


def register(ctx: AgentContext, rule_state: Any, correlation_state: Any) -> None:
    async def publish_alerts(consumer: str, alerts: list[Alert]) -> None:
        for alert in alerts:
            log.info("alert %s %s for %s%s", alert.rule_id, alert.state, alert.group_key,
                     f" (muted: {alert.muted})" if alert.muted else "")
            metrics.ALERTS.labels(alert.rule_id, alert.state).inc()
            await ctx.send(consumer, "alerts", alert.kafka_key.encode(), alert.to_json())

    async def forward(consumer: str, rule_id: str, raw: bytes, origin: str) -> None:
        await ctx.send(consumer, "correlate", rule_id.encode(), raw, [("origin", origin.encode())])

    def clock_for(progress: InputProgress, partition: int, tick_time: datetime) -> datetime | None:
        """The absence clock of a partition: the tick's time, held back while inputs lag."""
        consumer = ctx.app.consumer
        behind = progress.behind(partition, partial(log_end, consumer), partial(fetched_offset, consumer))
        clock = absence_clock(to_us(tick_time), behind)
        if clock is None or behind:
            metrics.ABSENCE_CLOCK_HELD.inc()
        return None if clock is None else from_us(clock)

    async def mark_late(consumer: str, engine: RuleEngine, decoded: Any) -> None:
        kind = source_kind(decoded) or "unknown"
        metrics.LATE_EVENTS.labels(kind).inc()
        mark = late_mark(decoded, engine.late_behind_us, engine.late_allowed_us)
        log.warning("late event: %s", mark.detail)
        await ctx.send(consumer, "telemetry", mark.source_id.encode(), mark.to_json())

    async def evaluate_message(event: Any, engine: RuleEngine, consumer: str, forwards: bool,
                               progress: InputProgress, ticks: list[Any]) -> None:
        """A clock tick (absence time passes for the partition's keys) or an event (evaluated,
        and forwarded to the rules that join sources)."""
        short = ctx.short(event)
        raw = event.value or b""
        message = event.message
        if short == "clock":
            assignment = frozenset(ctx.app.consumer.assignment())
            ticks[0] += 1
            if assignment != ticks[1] or ticks[0] % RESCAN_EVERY_TICKS == 0:
                if assignment != ticks[1]:
                    progress.forget()
                ticks[1] = assignment
                engine.forget_timers()
            clock = clock_for(progress, message.partition, decode_tick(raw))
            if clock is not None:
                owns = owner_of(message.partition, ctx.partitions)
                await publish_alerts(consumer, engine.tick(clock, owns))
            return
        progress.processed(message.topic, message.partition, message.offset, message.timestamp)
        if short == "correlate":
            short = dict(event.headers or {}).get("origin", b"").decode()
        decoded = decode_event(short, raw)
        if isinstance(decoded, ResolveRequest):
            if forwards and engine.joins_sources(decoded.rule_id):  # its state is the correlate agent's
                await forward(consumer, decoded.rule_id, raw, short)
                return
            await publish_alerts(consumer, engine.force_resolve(
                decoded.rule_id, decoded.group_key, str(decoded.alert_id), decoded.time, decoded.by))
            return
        arrived = datetime.fromtimestamp(message.timestamp, UTC) if (message.timestamp or 0) > 0 else None
        position = (f"{message.topic}:{message.partition}", message.offset)
        await publish_alerts(consumer, engine.evaluate(decoded, arrived, position))
        if engine.was_late and forwards:
            await mark_late(consumer, engine, decoded)
        if forwards:
            for rule_id in engine.across_rules_for(decoded):
                await forward(consumer, rule_id, raw, short)

    async def run_rules(stream: Any, state: Any, scope: Scope, consumer: str, forwards: bool,
                        inputs: tuple[TopicName, ...]) -> None:
        """The stream is iterated at once and the rules are waited for inside: Faust gives an
        agent the partitions assigned after its stream is first iterated. An agent that
        waited for the rules topic before iterating, while the group's assignment landed,
        got none of its topics' records (the store agent beside it acknowledged them, so
        they were never evaluated, even after a restart)."""
        progress = InputProgress(tuple(ctx.topics.name(t) for t in inputs))
        ticks: list[Any] = [0, frozenset()]  # ticks seen, the assignment they were seen under
        engines: list[RuleEngine] = []

        async def handle(event: Any) -> None:
            await evaluate_message(event, engines[0], consumer, forwards, progress, ticks)

        async for event in stream.events():
            if not engines:
                await ctx.runtime.rules_ready()
                engines.append(ctx.runtime.rule_engine(state, scope))
            await ctx.guarded(consumer, event, handle)

    @ctx.app.agent(ctx.topic(*EVALUATED), name="evaluate")
    async def evaluate(stream: Any) -> None:
        await run_rules(stream, rule_state, "per_source", "evaluate", forwards=True, inputs=DATA_INPUTS)

    @ctx.app.agent(ctx.topic("correlate"), name="correlate")  # event time only: no clock to follow
    async def correlate(stream: Any) -> None:
        await run_rules(stream, correlation_state, "across_sources", "correlate", forwards=False,
                        inputs=("correlate",))
