"""Replay events through rules, as `citywatch rules test` does with stored history.

A fresh engine (no state) sees the events in time order; what it fires and resolves is
what the rules would have done. `compare` tells two rule versions apart by the alerts
only one of them produces.
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


async def replay(
    rules: Sequence[Rule], events: AsyncIterable[Event], until: datetime | None = None,
    tick_every: timedelta = timedelta(seconds=10), sources: Mapping[str, SourceInfo] | None = None,
) -> list[Alert]:
    """Alerts the rules would have produced. The clock ticks every `tick_every` of event
    time between events (and up to `until`), as a live worker's clock would, so `for`,
    absence and reminders fire when they would have."""
    engine = RuleEngine(rules, sources=sources)
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
