"""evaluate and correlate: events and clock ticks → the rule engine → alerts.

evaluate reads what sources and models produce, keyed by source, so a source's rule state
lives on one partition. Rules that join sources by distance get their events forwarded to
the correlate topic keyed by rule, so one partition sees every source such a rule needs.
"""

from __future__ import annotations

import logging
from typing import Any

from citywatch import metrics
from citywatch.agents.context import AgentContext
from citywatch.clock import decode_tick, owner_of
from citywatch.codecs import decode_event
from citywatch.topics import TopicName
from rules.engine import RuleEngine
from rules.events import Alert, ResolveRequest

log = logging.getLogger(__name__)

EVALUATED: tuple[TopicName, ...] = ("detections", "readings", "telemetry", "clock")


def register(ctx: AgentContext, rule_state: Any, correlation_state: Any) -> None:
    async def publish_alerts(consumer: str, alerts: list[Alert]) -> None:
        for alert in alerts:
            log.info("alert %s %s for %s%s", alert.rule_id, alert.state, alert.group_key,
                     f" (muted: {alert.muted})" if alert.muted else "")
            metrics.ALERTS.labels(alert.rule_id, alert.state).inc()
            await ctx.send(consumer, "alerts", alert.kafka_key.encode(), alert.to_json())

    async def forward(consumer: str, rule_id: str, raw: bytes, origin: str) -> None:
        await ctx.send(consumer, "correlate", rule_id.encode(), raw, [("origin", origin.encode())])

    async def evaluate_message(event: Any, engine: RuleEngine, consumer: str, forwards: bool) -> None:
        """A clock tick (time passes for the partition's keys) or an event (evaluated, and
        forwarded to the rules that join sources)."""
        short = ctx.short(event)
        raw = event.value or b""
        if short == "clock":
            owns = owner_of(event.message.partition, ctx.partitions)
            await publish_alerts(consumer, engine.tick(decode_tick(raw), owns))
            return
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
        await publish_alerts(consumer, engine.evaluate(decoded))
        if forwards:
            for rule_id in engine.across_rules_for(decoded):
                await forward(consumer, rule_id, raw, short)

    async def run_rules(stream: Any, engine: RuleEngine, consumer: str, forwards: bool) -> None:
        async def handle(event: Any) -> None:
            await evaluate_message(event, engine, consumer, forwards)

        async for event in stream.events():
            await ctx.guarded(consumer, event, handle)

    @ctx.app.agent(ctx.topic(*EVALUATED), name="evaluate")
    async def evaluate(stream: Any) -> None:
        await ctx.runtime.rules_ready()
        await run_rules(stream, ctx.runtime.rule_engine(rule_state, "per_source"), "evaluate", forwards=True)

    @ctx.app.agent(ctx.topic("correlate", "clock"), name="correlate")
    async def correlate(stream: Any) -> None:
        await ctx.runtime.rules_ready()
        engine = ctx.runtime.rule_engine(correlation_state, "across_sources")
        await run_rules(stream, engine, "correlate", forwards=False)
