"""Replay events through rules, as `citywatch rules test` does with stored history.

A fresh engine (no state) sees the events in time order; every decision about data is
taken in event time, so it fires and resolves what live processing did, at any lag the live
worker had: same alert ids, states, started_at and resolved_at. Events live found too late
to evaluate are marked in storage and left out here too (storage.history).

Absence alone can differ: live measures silence on arrival times and a clock that stops
while the worker lags; a replay has only event times, so it takes the event time as the
arrival and ticks every `tick_every` of it. A source whose data arrived in bursts (a
backlog, a reconnecting sensor) can be silent in a replay and not live, or the reverse.
`compare` tells two rule versions apart by the alerts only one of them produces.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from ingest.events import Event
from rules.base import SourceInfo
from rules.engine import RuleEngine
from rules.events import Alert
from rules.model import Rule
from rules.timekeeping import AllowedLateness


async def replay(
    rules: Sequence[Rule], events: AsyncIterable[Event], until: datetime | None = None,
    tick_every: timedelta = timedelta(seconds=10), sources: Mapping[str, SourceInfo] | None = None,
    lateness: AllowedLateness | None = None,
) -> list[Alert]:
    """Alerts the rules would have produced. The absence clock ticks every `tick_every` of
    event time between events (and up to `until`); no other decision needs it."""
    engine = RuleEngine(rules, sources=sources, lateness=lateness)
    if not any(rule.processing_time for rule in engine.rules):
        return [alert async for event in events for alert in engine.evaluate(event)]
    alerts: list[Alert] = []
    clock: datetime | None = None
    async for event in events:
        clock = clock or event.time
        while clock + tick_every <= event.time:
            clock += tick_every
            alerts.extend(engine.tick(clock))
        alerts.extend(engine.evaluate(event))
    if clock is not None and until is not None:
        while clock + tick_every <= until:
            clock += tick_every
            alerts.extend(engine.tick(clock))
    return alerts


def alert_key(alert: Alert) -> tuple[str, str, str, str]:
    return (alert.rule_id, alert.group_key, alert.state, alert.started_at.isoformat())


@dataclass(frozen=True)
class Comparison:
    only_new: list[Alert]
    only_live: list[Alert]
    both: int


def compare(new: Sequence[Alert], live: Sequence[Alert]) -> Comparison:
    new_keys, live_keys = {alert_key(a) for a in new}, {alert_key(a) for a in live}
    return Comparison(
        only_new=[a for a in new if alert_key(a) not in live_keys],
        only_live=[a for a in live if alert_key(a) not in new_keys],
        both=len(new_keys & live_keys),
    )
